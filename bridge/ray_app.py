"""The Ray Serve side of `--backend ray`: one deployment per generator checkpoint.

A replica receives the checkpoint's weights and model card as bytes (so worker nodes need the
ganbridge package but not the bridge's models folder), loads them with the same loader the
bridge uses, and renders (params, latent) pairs. Serve's dynamic batching gathers single
requests from every bridge into one call; the replica splits that batch by the generator's
batch key (e.g. output size) and renders each group together. Only rendering happens here: the
latents come from the bridge, so a recipe gives the same output whichever backend ran it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from generators.base import Latent, Output


@dataclass
class RenderRequest:
    params: dict[str, Any]
    latent: Latent


@dataclass
class RenderFailure:
    """A request the replica could not render; the bridge raises it for that request alone."""

    message: str


@serve.deployment(name="generator")
class GeneratorReplica:
    def __init__(self, kind: str, checkpoint: str, weights: bytes, card: bytes, device: str, options: dict):
        import torch

        from bridge.registry import build_generator, load_model_file

        # Ray sets a replica's thread count from its CPU reservation (a fraction here, so 1);
        # rendering is given the node's cores like an in-process bridge has, unless set.
        torch.set_num_threads(options.get("torch_threads") or os.cpu_count() or 1)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self._dir = tempfile.TemporaryDirectory(prefix="ganbridge-replica-")
        path = Path(self._dir.name) / f"{checkpoint}.safetensors"
        path.write_bytes(weights)
        path.with_suffix(".json").write_bytes(card)
        self.generator = build_generator(kind, [load_model_file(kind, path, device)], device)
        if options.get("soundfont"):
            self.generator.soundfont = Path(options["soundfont"])
        self.batch_sizes: Counter[int] = Counter()

    def reconfigure(self, config: dict) -> None:
        """Serve's user_config: batching knobs can change without restarting replicas."""
        self.render.set_max_batch_size(int(config["max_batch_size"]))
        self.render.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def render(self, requests: list[RenderRequest]) -> list[Output | RenderFailure]:
        self.batch_sizes[len(requests)] += 1
        return await asyncio.to_thread(self._render_all, requests)

    def _render_all(self, requests: list[RenderRequest]) -> list[Output | RenderFailure]:
        results: list[Output | RenderFailure | None] = [None] * len(requests)
        groups: dict[Any, list[int]] = {}
        parsed = []
        for i, request in enumerate(requests):
            try:
                params = self.generator.params_model.model_validate(request.params)
                groups.setdefault(self.generator.batch_key(params), []).append(i)
            except Exception as e:  # the bridge validated it; a version mismatch lands here
                results[i] = RenderFailure(f"the replica refused the params: {e}")
                params = None
            parsed.append(params)
        for indices in groups.values():
            try:
                outputs = self.generator.render([parsed[i] for i in indices], [requests[i].latent for i in indices])
                for i, out in zip(indices, outputs):
                    results[i] = out
            except Exception as e:  # one failing group must not fail the others
                for i in indices:
                    results[i] = RenderFailure(f"{type(e).__name__}: {e}")
        return results  # type: ignore[return-value]

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "checkpoint": self.generator.checkpoints()[0].as_dict(),
            "batch_sizes": dict(self.batch_sizes),
        }
