"""What every generator offers the bridge.

A generator turns (params, latent) pairs into encoded outputs. Latents are dicts of named
standard-normal numpy arrays, so the latent operations (perturb, slerp, steering) work on
every generator without knowing what the parts mean.

This module and what it imports are torch-free: the bridge's core imports it to describe
generators, and only loading a model imports torch.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel

from ganbridge.generators.checkpoint import CheckpointError, CheckpointRef, LoadedNetwork
from ganbridge.generators.directions import Direction, Probe, directions_path, load_directions
from ganbridge.generators.gallery import Gallery, gallery_path, load_gallery

if TYPE_CHECKING:
    import torch

log = logging.getLogger("ganbridge.generators")

Latent = dict[str, np.ndarray]


@dataclass
class Output:
    """One encoded result. `extra` holds format-specific fields (width/height, maps, notes)."""

    data: bytes
    format: str
    mime: str
    extra: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, bytes] = field(default_factory=dict)  # name -> encoded bytes (same format)
    # How it looks (or sounds), as a vector, for kinds that describe it: what steering over a
    # gallery compares (generators/gallery.py). Not sent to clients.
    look: np.ndarray | None = None


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


# How seeded latents are drawn; a seeded recipe records it (`latent_draw`), so that a remake draws
# as its item was drawn. 1 (recipes without `latent_draw`): every part a standard normal. 2: the
# discrete parts then moved to equal bins (DiscretePart.uniform), so `any` picks each choice as often.
LATENT_DRAW = 2


def draw_latent(shapes: Mapping[str, tuple[int, ...]], rng: np.random.Generator) -> Latent:
    """A latent of standard-normal float32 parts, drawn from `rng` in the order of `shapes`."""
    return {key: rng.standard_normal(shape).astype(np.float32) for key, shape in shapes.items()}


@dataclass(frozen=True)
class DiscretePart:
    """A one-value latent part that picks one of `count` choices (a glyph's character, a piece's
    mode): the value v falls in bin floor(u * count) of u = (1 + tanh(0.8 v)) / 2, a smooth map of
    a standard normal to (0, 1). Such a part is a choice, not a direction: the latent operations
    inherit or redraw it, never average or rescale it (an average of two characters' values is a
    third character)."""

    count: int

    def index(self, value: np.ndarray) -> int:
        # In the value's own precision (float32), as the image adapter has always computed it:
        # a recipe's choice must not move at a bin edge.
        u = 0.5 * (1 + float(np.tanh(np.asarray(value).ravel()[0] * 0.8)))
        return min(self.count - 1, int(u * self.count))

    def uniform(self, value: np.ndarray) -> np.ndarray:
        """A standard normal `value` moved to choice floor(Phi(value) * count), at the same place
        inside that choice's bin as it has in Phi's (kept off the bin's edges, as `draw` does):
        seeded choices equally often. The bins of `index` are unequal for a normal value (in
        seeds 0-3,099, 14 to 70 of a glyph's 62 characters), and `index` itself cannot change:
        stored latents hold such values."""
        u = 0.5 * (1 + math.erf(float(np.asarray(value, np.float64).ravel()[0]) / math.sqrt(2))) * self.count
        index = min(self.count - 1, int(u))
        where = (index + 0.1 + 0.8 * min(1.0, u - index)) / self.count
        return np.array([np.arctanh(2 * where - 1) / 0.8], np.float32)

    def draw(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A value in choice `index`'s bin, away from its edges (so float32 rounding keeps it there)."""
        u = (index + rng.uniform(0.1, 0.9)) / self.count
        return np.array([np.arctanh(2 * u - 1) / 0.8], np.float32)


@dataclass(frozen=True)
class Control:
    """A param that steering moves beside the latent (a piece's density, its temperature): the
    range it moves in, over which its values are scaled to -1..1 for the fit (see steering.py),
    and the other params that fix it when a request gives them (a mood sets arousal)."""

    low: float
    high: float
    fixed_by: tuple[str, ...] = ()

    def scaled(self, value: float) -> float:
        # min/max, not np.clip: a steer scales every item's every control (np.clip on a scalar
        # costs 4 us here, 1.6 ms of a 64-rating music steer; min/max 0.2 ms)
        return _clipped(2.0 * (float(value) - self.low) / (self.high - self.low) - 1.0)

    def value(self, scaled: float) -> float:
        """The param's value at `scaled` (clipped to -1..1), rounded to 3 decimals for the recipe."""
        return round(self.low + (_clipped(float(scaled)) + 1.0) / 2.0 * (self.high - self.low), 3)


def _clipped(x: float) -> float:
    return min(1.0, max(-1.0, x))


def one_of(values: Sequence[str]) -> Any:
    """The type of a params field whose values are known only at run time (the installed models,
    their categories or voices): a Literal of them, so the schema lists them as an enum. Typed Any
    because a static checker can only spell a Literal of values written in the source."""
    return Literal[tuple(values)]


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


class ModelParams(BaseModel):
    """Params of a generator over several trained models: `model` names the one to use. Each
    adapter narrows it, in the schema it builds, to an enum of the installed models."""

    model: str


Params = TypeVar("Params", bound=BaseModel)
ModelSetParams = TypeVar("ModelSetParams", bound=ModelParams)
Network = TypeVar("Network", bound="torch.nn.Module")


class Generator(ABC, Generic[Params]):
    """A kind's bridge adapter. `Params` is the static params class; `params_model` is the (often
    dynamic) subclass of it that validates requests and gives clients their schema."""

    name: str
    kind: str
    description: str
    outputs: list[str]
    params_model: type[Params]
    # The small fixed render setting (params besides `model`) that directions are found and
    # checked at: small, so that finding them takes minutes on a CPU.
    direction_settings: ClassVar[dict[str, Any]] = {}
    direction_features: ClassVar[str] = ""  # what output_features describes, for model cards
    # Params added after recipes were first written, with the value that gives what the bridge
    # made before they existed: a recipe stores every param, so one without such a param was
    # made that way (remaking it must give the same bytes).
    params_before: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def checkpoints(self) -> list[CheckpointRef]:
        """Installed checkpoints; the first is the default."""

    @abstractmethod
    def checkpoint_for(self, params: Params) -> CheckpointRef: ...

    @abstractmethod
    def latent_shapes(self, params: Params) -> dict[str, tuple[int, ...]]: ...

    def random_latent(self, params: Params, seed: int, draw: int = LATENT_DRAW) -> Latent:
        """The latent of `seed`, as latents are drawn now, or as draw 1 drew them (a recipe says
        which: see LATENT_DRAW)."""
        # Parts in sorted order: the same seed gives the same latent whatever order a kind lists them.
        latent = draw_latent(dict(sorted(self.latent_shapes(params).items())), seeded_rng(seed))
        if draw >= 2:
            for name, part in self.discrete_parts(params).items():
                latent[name] = part.uniform(latent[name])
        return latent

    def discrete_parts(self, params: Params) -> dict[str, DiscretePart]:
        """The latent parts that choose (see DiscretePart) and matter for these params: a choice
        the params fix (a requested category or key) is not one."""
        return {}

    def with_overrides(self, stored: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """An item's stored params with a request's `overrides` (a variation or steer that sets
        some params): each given param replaces the stored one."""
        return {**stored, **overrides}

    def steered_controls(self, params: Params) -> dict[str, Control]:
        """The params that steering moves beside the latent at `params`, by name: what an
        artist would turn by hand to get more of what they like. {} for none."""
        return {}

    def control_value(self, params: Mapping[str, Any], name: str) -> float:
        """Control `name`'s value in an item's stored params (a mood's arousal when the item
        left it empty, say); a recipe older than the param was made at its default."""
        value = params.get(name)
        return float(self.params_model.model_fields[name].default if value is None else value)

    def direction_shapes(self, params: Params) -> dict[str, tuple[int, ...]]:
        """Per continuous latent part, the shape of a direction for it, broadcast onto the part.
        A kind whose parts grow with the output (a grid, bars) gives them 1 along those axes, so
        that one direction works at every size."""
        discrete = self.discrete_parts(params)
        return {k: s for k, s in self.latent_shapes(params).items() if k not in discrete}

    def output_features(self, params: Params, latents: Sequence[Latent]) -> np.ndarray:
        """(N, F): what a person sees or hears of each latent's output at `params`, as a vector,
        for finding directions (see directions.py)."""
        raise NotImplementedError(f"the {self.kind} generator describes no output features")

    def directions(self, params: Params) -> list[Direction]:
        """The directions of the checkpoint `params` selects, best first; [] when it has none."""
        return []

    # Whether a look (Output.look) mixes units, so that a gallery standardizes its numbers (see
    # gallery.make_gallery); kinds whose outputs have no look never make a gallery.
    look_standardized = False

    def gallery(self, params: Params) -> Gallery | None:
        """The gallery of the checkpoint `params` selects (see gallery.py), or None."""
        return None

    def direction_probe(self, params: Params) -> Probe:
        """This generator at `params`, as finding and checking directions sees it."""
        return Probe(
            features=lambda latents: self.output_features(params, latents),
            latent_shapes=self.latent_shapes(params),
            direction_shapes=self.direction_shapes(params),
        )

    @abstractmethod
    def batch_key(self, params: Params) -> Hashable:
        """Requests whose keys are equal may run as one device call."""

    @abstractmethod
    def render(self, params: Sequence[Params], latents: Sequence[Latent]) -> list[Output]:
        """Run one batch (all with the same batch_key) and encode the outputs."""

    def max_batch(self, params: Params) -> int:
        return 16

    def cost(self, params: Params) -> Cost:
        """One item's cost; a generator without a budgeted unit costs one item."""
        return Cost("items", 1, "one item")

    def preflight(self, params: Params) -> None:
        """Raise Unavailable when these (valid) params need something this machine lacks, so the
        request fails at once with a clear message instead of in the worker."""
        return None

    def configure(self, *, soundfont: Path | None = None) -> None:
        """Take the bridge's settings that concern rendering (the General MIDI soundfont for WAV
        output); each generator keeps those it uses, and the default uses none."""
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
            "checkpoint": refs[0].describe(),
            "checkpoints": [r.describe() for r in refs],
            "device": self.device,
            "params_schema": self.params_model.model_json_schema(),
            "outputs": list(self.outputs),
        }


class ModelSetGenerator(Generator[ModelSetParams], Generic[ModelSetParams, Network]):
    """A generator over one or more trained models of one network class, one of which each
    request picks with its `model` param."""

    models: dict[str, LoadedNetwork[Network]]

    def _set_models(self, models: Sequence[LoadedNetwork[Network]], device: str) -> None:
        if not models:
            raise CheckpointError(f"no {self.kind} weights installed")
        self._device = device
        self.models = {m.ref.name: m for m in models}
        self._directions: dict[str, list[Direction]] = {}  # filled by _load_directions
        self._galleries: dict[str, Gallery | None] = {}  # filled by gallery(), once a model

    @property
    def device(self) -> str:
        return self._device

    def checkpoints(self) -> list[CheckpointRef]:
        return [m.ref for m in self.models.values()]

    def checkpoint_for(self, params: ModelSetParams) -> CheckpointRef:
        return self.models[params.model].ref

    def direction_params(self, model: str) -> ModelSetParams:
        """The params that `model`'s directions are found and checked at."""
        return self.params_model.model_validate({"model": model, **self.direction_settings})

    def _load_directions(self) -> None:
        """Read each model's directions file, if it has one, once: each adapter calls this last in
        its constructor, when `direction_shapes` can be asked. A malformed file is logged with its
        fault and leaves its model serving without directions: they are an extra, not a reason to
        stop serving the model (or, raised here, every model of the kind)."""
        for name, model in self.models.items():
            path = directions_path(model.ref.path)
            if not path.is_file():
                continue
            try:
                self._directions[name] = load_directions(path, self.direction_shapes(self.direction_params(name)))
            except CheckpointError as e:
                log.warning("%s model %s serves without directions: %s", self.kind, name, e)

    def directions(self, params: ModelSetParams) -> list[Direction]:
        return list(self._directions.get(params.model, []))

    def gallery(self, params: ModelSetParams) -> Gallery | None:
        """Read once, on the first steer of the model: a malformed file is logged and the model
        steers without one (as with directions, an extra, never a reason to stop serving)."""
        name = params.model
        if name not in self._galleries:
            path = gallery_path(self.models[name].ref.path)
            self._galleries[name] = None
            if path.is_file():
                try:
                    self._galleries[name] = load_gallery(path)
                except CheckpointError as e:
                    log.warning("%s model %s steers without a gallery: %s", self.kind, name, e)
        return self._galleries[name]
