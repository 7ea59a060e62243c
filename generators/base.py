"""What every generator offers the bridge.

A generator turns (params, latent) pairs into encoded outputs. Latents are dicts of named
standard-normal numpy arrays, so the latent operations (perturb, slerp, steering) work on
every generator without knowing what the parts mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from ganbridge.generators.checkpoint import CheckpointError, CheckpointRef

Latent = dict[str, np.ndarray]


@dataclass
class Output:
    """One encoded result. `extra` holds format-specific fields (width/height, maps, notes)."""

    data: bytes
    format: str
    mime: str
    extra: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, bytes] = field(default_factory=dict)  # name -> encoded bytes (same format)


@dataclass(frozen=True)
class Cost:
    """What one item of a request costs, counted in the unit the bridge's budgets use for its
    kind: "pixels" (images and textures, maps included) or "bars" (music)."""

    unit: str
    amount: int
    what: str  # for error messages: "2048x2048 with 2 maps"


class Unavailable(RuntimeError):
    """A valid request this machine cannot serve (e.g. WAV output without FluidSynth)."""


def seeded_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def each_alone(
    sample: Callable[..., np.ndarray], latents: Sequence[Latent], *per_item: Sequence, **shared: Any
) -> np.ndarray:
    """`sample(latents, *per_item, **shared)` run on one item at a time, results stacked.

    Batched kernels (oneDNN on a CPU, cuDNN/cuBLAS on a GPU) choose their blocking and summation
    order by batch size, so in a batched forward pass an item's floats move in the last bits with
    whatever else shares its batch, and rounding to pixels or thresholding notes sometimes turns
    that into different bytes. A recipe must regenerate exactly, so the bridge's generators pay
    for one forward pass per item: measured on 2 CPU cores in batches of 8, +4-13% per image and
    +1.5-2.3 ms (+23-41%) per music item; a request rendered alone costs the same as before."""
    parts = [sample([z], *[[column[i]] for column in per_item], **shared) for i, z in enumerate(latents)]
    return np.concatenate(parts)


class Generator(ABC):
    name: str
    kind: str
    description: str
    outputs: list[str]
    params_model: type[BaseModel]

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRef]:
        """Installed checkpoints; the first is the default."""

    @abstractmethod
    def checkpoint_for(self, params: BaseModel) -> CheckpointRef: ...

    @abstractmethod
    def latent_shapes(self, params: BaseModel) -> dict[str, tuple[int, ...]]: ...

    def random_latent(self, params: BaseModel, seed: int) -> Latent:
        rng = seeded_rng(seed)
        return {
            key: rng.standard_normal(shape).astype(np.float32)
            for key, shape in sorted(self.latent_shapes(params).items())
        }

    @abstractmethod
    def batch_key(self, params: BaseModel) -> Hashable:
        """Requests whose keys are equal may run as one device call."""

    @abstractmethod
    def render(self, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        """Run one batch (all with the same batch_key) and encode the outputs."""

    def max_batch(self, params: BaseModel) -> int:
        return 16

    def cost(self, params: BaseModel) -> Cost:
        """One item's cost; a generator without a budgeted unit costs one item."""
        return Cost("items", 1, "one item")

    def preflight(self, params: BaseModel) -> None:
        """Raise Unavailable when these (valid) params need something this machine lacks, so the
        request fails at once with a clear message instead of in the worker."""
        return None

    @property
    def device(self) -> str:
        return "cpu"

    def info(self) -> dict[str, Any]:
        refs = self.checkpoints()
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "checkpoint": refs[0].as_dict(),
            "checkpoints": [r.as_dict() for r in refs],
            "device": self.device,
            "params_schema": self.params_model.model_json_schema(),
            "outputs": list(self.outputs),
        }


class ModelSetGenerator(Generator):
    """A generator over one or more trained models (`LoadedX` records with `ref` and `net`), one
    of which each request picks with its `model` param."""

    def _set_models(self, models: Sequence[Any], device: str) -> None:
        if not models:
            raise CheckpointError(f"no {self.kind} weights installed")
        self._device = device
        self.models = {m.ref.name: m for m in models}

    @property
    def device(self) -> str:
        return self._device

    def checkpoints(self) -> list[CheckpointRef]:
        return [m.ref for m in self.models.values()]

    def checkpoint_for(self, params: BaseModel) -> CheckpointRef:
        return self.models[params.model].ref
