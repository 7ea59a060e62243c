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
import ipaddress
import os
import socket
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve

from ganbridge.generators.base import Latent, Output


@dataclass
class RenderRequest:
    params: dict[str, Any]
    latent: Latent


@dataclass
class RenderFailure:
    """A request the replica could not render; the bridge raises it for that request alone."""

    message: str


def _item_count(calls: list[list[RenderRequest]]) -> int:
    return sum(len(call) for call in calls)


def bind_serve_grpc_to_loopback() -> bool:
    """On a loopback-only node (the one-machine mode's private Ray), bind this replica's
    inter-deployment gRPC server to loopback too; returns whether it did.

    Ray 2.60 binds every other listener of such a node to 127.0.0.1, but Serve hardcodes this
    one to "[::]:0", every interface (ray/serve/_private/replica.py, `_on_initialized`, with no
    setting to change it). That runs after the user class's __init__, in the same process, and
    looks the helper up in its module at call time, so swapping the helper there rebinds it.
    Elsewhere (a studio's nodes) it stays as Serve made it: callers on other nodes need it."""
    import ray
    from ray.serve._private import replica as serve_replica

    node_ip = ray.util.get_node_ip_address()
    original = getattr(serve_replica, "add_port_to_grpc_server", None)
    if original is None or not ipaddress.ip_address(node_ip).is_loopback:
        return False
    host = f"[{node_ip}]" if ":" in node_ip else node_ip

    def add_port(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = f"{host}:{address.removeprefix('[::]:')}"
        return original(server, address)

    serve_replica.add_port_to_grpc_server = add_port  # pyright: ignore[reportPrivateImportUsage]  (a private Ray API, see above)
    return True


@serve.deployment(name="generator")
class GeneratorReplica:
    def __init__(self, kind: str, checkpoint: str, weights: bytes, card: bytes, device: str, options: dict):
        import torch

        from ganbridge.core.registry import build_generator, load_model_file

        self.loopback_only = bind_serve_grpc_to_loopback()
        # Ray sets OMP_NUM_THREADS from a replica's CPU reservation (a fraction here, so 1), and
        # OpenMP's thread count is per thread: rendering sets it in the thread that renders,
        # giving it the node's cores as an in-process bridge has, unless set. (Measured here:
        # 13.6 ms per 128x128 texture with 1 thread vs 7.6 ms in-process with 2.)
        self.threads = int(options.get("torch_threads") or os.cpu_count() or 1)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        # The files live only while they load (the loader reads them whole and hashes them): a
        # replica is killed, not stopped, when its cluster goes, so a folder kept for its life
        # would be left in /tmp every time.
        with tempfile.TemporaryDirectory(prefix="ganbridge-replica-", ignore_cleanup_errors=True) as folder:
            path = Path(folder) / f"{checkpoint}.safetensors"
            path.write_bytes(weights)
            path.with_suffix(".json").write_bytes(card)
            self.generator = build_generator(kind, [load_model_file(kind, path, device)], device)
        if options.get("soundfont"):
            self.generator.configure(soundfont=Path(options["soundfont"]))
        self.batch_sizes: Counter[int] = Counter()
        self.render_seconds = 0.0

    def reconfigure(self, config: dict) -> None:
        """Serve's user_config: batching knobs can change without restarting replicas."""
        # serve.batch adds these setters to the method at run time; its type does not show them
        self.render.set_max_batch_size(int(config["max_batch_size"]))  # pyright: ignore[reportAttributeAccessIssue]
        self.render.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))  # pyright: ignore[reportAttributeAccessIssue]

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005, batch_size_fn=_item_count)
    async def render(self, calls: list[list[RenderRequest]]) -> list[list[Output | RenderFailure]]:
        """Each call is one bridge's micro-batch; Serve gathers calls from every bridge up to
        `max_batch_size` items, and the results go back split as they came."""
        flat = [request for call in calls for request in call]
        self.batch_sizes[len(flat)] += 1
        t0 = time.perf_counter()
        results = await asyncio.to_thread(self._render_all, flat)
        self.render_seconds += time.perf_counter() - t0
        out, at = [], 0
        for call in calls:
            out.append(results[at : at + len(call)])
            at += len(call)
        return out

    def _render_all(self, requests: list[RenderRequest]) -> list[Output | RenderFailure]:
        import torch

        torch.set_num_threads(self.threads)
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
            # At most what this replica's device takes at once (CPU lanes, a GPU pixel budget).
            size = max(1, self.generator.max_batch(parsed[indices[0]]))
            for chunk in (indices[i : i + size] for i in range(0, len(indices), size)):
                self._render_group(chunk, parsed, requests, results)
        return results  # type: ignore[return-value]

    def _render_group(self, indices: list[int], parsed: list, requests: list[RenderRequest], results: list) -> None:
        try:
            outputs = self.generator.render([parsed[i] for i in indices], [requests[i].latent for i in indices])
            for i, out in zip(indices, outputs):
                results[i] = out
        except Exception as e:  # one failing group must not fail the others
            for i in indices:
                results[i] = RenderFailure(f"{type(e).__name__}: {e}")

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "checkpoint": self.generator.checkpoints()[0].as_dict(),
            "batch_sizes": dict(self.batch_sizes),
            "render_seconds": round(self.render_seconds, 3),
            "torch_threads": self.threads,
            "loopback_only": self.loopback_only,
        }
