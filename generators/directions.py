"""Directions that mean something: each model's main ways of varying, found in the spirit of
GANSpace (Härkönen et al. 2020), ordered by how much they change what a person sees or hears.

A direction is a latent move: one array per continuous latent part, broadcast onto that part, so
that one direction works at every output size or length (a texture's local grid gets the same
shift in every cell, a piece's bars the same shift in every bar). `shifted` moves a latent along
any number of them at once; a live slider is one value per direction.

Finding them (`find_directions`): draw seeded latents at one small render setting, describe each
output by a feature vector (the kind's `output_features`), standardize each feature, reduce each
latent to the directions' shapes (the mean over the broadcast axes), and fit the features as a
linear function of the reduced latent by least squares. The directions are the top left singular
vectors of the fitted map, i.e. the latent moves whose unit step changes the features most, and
each singular value is that direction's `change`. `check_directions` then measures, on held-out
latents, how much moving along each direction really changes the features against random
directions of the same shapes.

The file of a checkpoint's directions lies beside it (`<stem>.directions.safetensors`), with the
names, changes and how they were found in the safetensors header. This module is torch-free
(numpy and safetensors.numpy only): the bridge's core imports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganbridge.generators.checkpoint import CheckpointError, check_safetensors, read_numpy_file, write_numpy_file

# base.Latent; base imports this module, so this module cannot import base.
Latent = dict[str, np.ndarray]
Shapes = Mapping[str, tuple[int, ...]]
Features = Callable[[list[Latent]], np.ndarray]  # latents -> (N, F) features of their outputs
Tick = Callable[[int], object]  # told how many outputs were just rendered (a progress bar's update)

SUFFIX = ".directions.safetensors"
FORMAT = "ganbridge-directions/1"
METHOD_ABOUT = (
    "least squares of the standardized output features on the latent reduced to the direction shapes "
    "(the broadcast parts spread by a random offset per sample), with an intercept; directions: the top "
    "left singular vectors of the fitted map, change: their singular values (after GANSpace, Härkönen et al. 2020)"
)
UNIT_TOLERANCE = 1e-3
CONSTANT_FEATURE = 1e-6  # a feature spreading less than this over the samples is constant (kept at 0)
STEP = 2.0  # the held-out check moves +/- this far along each direction
BATCH = 64
RANDOM = 16  # random directions the check compares with
RANDOM_REST = 8  # and random directions orthogonal to direction 1


@dataclass(frozen=True)
class Direction:
    """One named latent move. `parts`: float32, each broadcastable onto the latent part of the
    same key, unit norm over all values together. `change`: how much the output features move
    per unit along it, in the features' standardized units; a model's list descends by it."""

    name: str
    parts: dict[str, np.ndarray]
    change: float


def shifted(latent: Latent, directions: Sequence[Direction], values: Sequence[float]) -> Latent:
    """A new latent: each part plus sum_i values[i] * directions[i].parts[key], broadcast; parts
    no direction names (discrete parts) are copied unchanged; float32; the input is not modified.
    Fewer values than directions leave the rest at 0 (sliders a client did not send)."""
    if len(values) > len(directions):
        raise ValueError(f"{len(values)} values for {len(directions)} directions")
    out = {key: np.array(part, dtype=np.float32) for key, part in latent.items()}
    for direction, value in zip(directions, values):
        for key, part in direction.parts.items():
            if key not in out:
                raise ValueError(f"{direction.name} moves latent part {key!r}, which this latent lacks")
            if not fits(part.shape, out[key].shape):
                raise ValueError(
                    f"{direction.name}'s part {key!r} of shape {part.shape} does not broadcast onto {out[key].shape}"
                )
            out[key] += np.float32(value) * part
    return out


def fits(shape: tuple[int, ...], onto: tuple[int, ...]) -> bool:
    """Whether an array of `shape` broadcasts onto one of shape `onto` without changing it."""
    if len(shape) > len(onto):
        return False
    return all(n in (1, m) for n, m in zip(shape[::-1], onto[::-1]))


# --- the file beside the checkpoint -------------------------------------------------------------


def directions_path(weights: Path) -> Path:
    """Where the directions of checkpoint `weights` (NAME.safetensors) lie: NAME.directions.safetensors."""
    return weights.with_name(Path(weights).stem + SUFFIX)


def is_directions_file(path: Path) -> bool:
    """A directions file, which lies among the weights but is not a checkpoint."""
    return path.name.endswith(SUFFIX)


def save_directions(path: Path, directions: Sequence[Direction], found: Mapping[str, Any]) -> None:
    """Write `directions` to `path`; `found` (JSON-able: method, feature, settings) goes into the
    header beside their names and changes. Written to a temporary file first, so a reader never
    sees half a file."""
    tensors = {
        f"{i}:{key}": np.ascontiguousarray(part, np.float32)
        for i, d in enumerate(directions)
        for key, part in d.parts.items()
    }
    metadata = {
        "format": FORMAT,
        "names": json.dumps([d.name for d in directions]),
        "changes": json.dumps([float(d.change) for d in directions]),
        "found": json.dumps(dict(found)),
    }
    write_numpy_file(path, tensors, metadata)


def load_directions(path: Path, shapes: Shapes | None = None) -> list[Direction]:
    """The directions in `path`, their arrays read-only (a generator hands the same ones to every
    request). With `shapes` (the model's direction shapes), each part must have its declared shape.
    Raises CheckpointError, naming the file and the fault, for anything malformed."""
    metadata, tensors = read_numpy_file(path, "directions")
    return _directions_from(path.name, metadata, tensors, shapes)


def load_found(path: Path) -> dict[str, Any]:
    """How the directions in `path` were found (the header's `found`)."""
    from safetensors import safe_open

    check_safetensors(path)
    with safe_open(str(path), framework="numpy") as f:
        return json.loads((f.metadata() or {}).get("found", "{}"))


def _directions_from(
    name: str, metadata: Mapping[str, str], tensors: Mapping[str, np.ndarray], shapes: Shapes | None
) -> list[Direction]:
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{name}: not a usable directions file: {why}")

    if metadata.get("format") != FORMAT:
        raise bad(f"its header's format is {metadata.get('format')!r}, not {FORMAT!r}")
    try:
        names, changes = json.loads(metadata["names"]), json.loads(metadata["changes"])
    except (KeyError, json.JSONDecodeError) as e:
        raise bad(f"its header lacks valid names and changes ({e})") from None
    if not (isinstance(names, list) and isinstance(changes, list) and len(names) == len(changes)):
        raise bad("its header's names and changes are not two lists of one length")
    if not all(isinstance(c, int | float) and math.isfinite(c) and c >= 0 for c in changes):
        raise bad("a change is not a finite number >= 0")
    if any(a < b for a, b in zip(changes, changes[1:])):
        raise bad("its directions are not in descending order of change")
    parts: list[dict[str, np.ndarray]] = [{} for _ in names]
    for key, array in tensors.items():
        index, _, part = key.partition(":")
        if not (index.isdigit() and int(index) < len(names) and part):
            raise bad(f"tensor {key!r} names no direction of its {len(names)}")
        parts[int(index)][part] = array
    return [_direction(bad, str(n), p, float(c), shapes) for n, p, c in zip(names, parts, changes)]


def _direction(
    bad: Callable[[str], CheckpointError], name: str, parts: dict[str, np.ndarray], change: float, shapes: Shapes | None
) -> Direction:
    if not parts:
        raise bad(f"{name} has no parts")
    if any(a.dtype != np.float32 or not np.isfinite(a).all() for a in parts.values()):
        raise bad(f"{name} is not finite float32")
    norm = math.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in parts.values()))
    if abs(norm - 1) > UNIT_TOLERANCE:
        raise bad(f"{name} has norm {norm:.4f}, not 1")
    if shapes is not None:
        for key, a in parts.items():
            if key not in shapes or a.shape != tuple(shapes[key]):
                want = f"shape {tuple(shapes[key])}" if key in shapes else f"one of the parts {', '.join(shapes)}"
                raise bad(f"{name}'s part {key!r} has shape {a.shape}; this model's directions have {want}")
    for a in parts.values():
        a.setflags(write=False)
    return Direction(name, parts, change)


# --- finding them -------------------------------------------------------------------------------


def reduce_part(part: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A latent part reduced to a direction's `shape`: its mean over the axes that `shape`
    broadcasts along (a texture's grid, a piece's bars)."""
    padded = (1,) * (part.ndim - len(shape)) + tuple(shape)
    axes = tuple(i for i, (n, m) in enumerate(zip(part.shape, padded)) if m == 1 and n != 1)
    return part.mean(axis=axes, keepdims=True).reshape(shape)


def reduced(latents: Sequence[Latent], shapes: Shapes) -> np.ndarray:
    """(N, D): each latent reduced to the direction shapes, flattened in the order of `shapes`."""
    return np.stack([np.concatenate([reduce_part(z[k], s).ravel() for k, s in shapes.items()]) for z in latents])


def unflatten(vector: np.ndarray, shapes: Shapes) -> dict[str, np.ndarray]:
    parts, at = {}, 0
    for key, shape in shapes.items():
        size = math.prod(shape)
        parts[key] = vector[at : at + size].reshape(shape).astype(np.float32)
        at += size
    return parts


def reduced_size(shapes: Shapes) -> int:
    return sum(math.prod(s) for s in shapes.values())


def min_samples(shapes: Shapes) -> int:
    """The fewest samples the fit takes: twice its unknowns per feature (the reduced latent and an
    intercept), so that the fit is overdetermined rather than an exact, meaningless match."""
    return 2 * (reduced_size(shapes) + 1)


def draw_latents(shapes: Shapes, count: int, rng: np.random.Generator) -> list[Latent]:
    """`count` standard-normal latents, parts in sorted order (as base.draw_latent draws them)."""
    ordered = sorted(shapes.items())
    return [{k: rng.standard_normal(s).astype(np.float32) for k, s in ordered} for _ in range(count)]


def spread_out(latents: list[Latent], shapes: Shapes, rng: np.random.Generator) -> list[Latent]:
    """The latents, each part that a direction broadcasts over (a texture's grid, a piece's bars)
    moved by a random offset of the direction's shape, so that its reduced coordinates spread with
    unit variance, as a slider moves them, instead of 1/sqrt(cells) (1/8 for a 128x128 texture's
    8x8 grid): fitted on the narrow spread, the changes of brick's 2nd-4th directions came out 3-5
    times what moving +/-2 along them measured; fitted on the wide one, the shipped textures' came
    out 0.5-1.2 times it."""
    out = []
    for z in latents:
        moved = dict(z)
        for key, shape in sorted(shapes.items()):
            cells = math.prod(z[key].shape) // math.prod(shape)
            if cells > 1:
                offset = rng.standard_normal(shape) * math.sqrt(1 - 1 / cells)
                moved[key] = (z[key] + offset).astype(np.float32)
        out.append(moved)
    return out


@dataclass(frozen=True)
class Probe:
    """A model at the render setting its directions are found at: its latent and direction
    shapes, and `features` (a batch of latents -> (N, F) features of their outputs)."""

    features: Features
    latent_shapes: Shapes
    direction_shapes: Shapes

    def features_of(self, latents: Sequence[Latent], tick: Tick) -> np.ndarray:
        """The features of `latents`, computed BATCH at a time; `tick(n)` after each batch."""
        rows = []
        for start in range(0, len(latents), BATCH):
            batch = list(latents[start : start + BATCH])
            rows.append(np.asarray(self.features(batch), np.float64))
            tick(len(batch))
        return np.concatenate(rows)


@dataclass(frozen=True)
class Standard:
    """Each feature's mean and spread over the fit's samples: standardized units are these."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> Standard:
        spread = features.std(axis=0)
        # A constant feature (a grey model's chroma, a pixel no sample inks) stays 0, not noise blown up.
        return cls(features.mean(axis=0), np.where(spread > CONSTANT_FEATURE, spread, np.inf))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale


def fit_directions(reduced_latents: np.ndarray, standardized: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) unit directions and their (K,) changes: the top left singular vectors of B in the
    least-squares fit F ~ c + R B, each signed so that its largest-magnitude component is positive."""
    design = np.hstack([np.ones((len(reduced_latents), 1)), reduced_latents])
    coefficients, *_ = np.linalg.lstsq(design, standardized, rcond=None)
    u, s, _ = np.linalg.svd(coefficients[1:], full_matrices=False)
    vectors = u[:, :count].T
    signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
    return vectors * signs[:, None], s[:count]


def find_directions(
    probe: Probe, *, samples: int = 1024, count: int = 8, seed: int = 0, tick: Tick = lambda n: None
) -> tuple[list[Direction], Standard]:
    """The model's directions, best first (at most `count`, and no more than the reduced latent
    or the features have numbers), and the standardization their changes are in."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if samples < min_samples(probe.direction_shapes):
        raise ValueError(
            f"{samples} samples are too few: this latent reduces to {reduced_size(probe.direction_shapes)} numbers, "
            f"so finding its directions takes at least {min_samples(probe.direction_shapes)} samples"
        )
    rng = np.random.Generator(np.random.PCG64(seed))
    latents = spread_out(draw_latents(probe.latent_shapes, samples, rng), probe.direction_shapes, rng)
    raw = probe.features_of(latents, tick)
    standard = Standard.of(raw)
    vectors, changes = fit_directions(reduced(latents, probe.direction_shapes), standard(raw), count)
    directions = [
        Direction(f"direction {i + 1}", unflatten(v, probe.direction_shapes), float(c))
        for i, (v, c) in enumerate(zip(vectors, changes))
    ]
    return directions, standard


def random_directions(
    shapes: Shapes, count: int, rng: np.random.Generator, away_from: Direction | None = None
) -> list[Direction]:
    """Unit directions of `shapes` drawn uniformly (orthogonal to `away_from`, if given): the
    baselines the check compares with."""
    size = reduced_size(shapes)
    avoid = None if away_from is None else np.concatenate([away_from.parts[k].ravel() for k in shapes])
    out = []
    for i in range(count):
        v = rng.standard_normal(size)
        if avoid is not None:
            v -= (v @ avoid) * avoid
        out.append(Direction(f"random {i + 1}", unflatten(v / np.linalg.norm(v), shapes), 0.0))
    return out


def measured_changes(
    probe: Probe, standard: Standard, latents: Sequence[Latent], directions: Sequence[Direction],
    tick: Tick,
) -> tuple[list[float], list[float]]:  # fmt: skip
    """Per direction, the features' change per unit along it, measured over `latents` from
    z - STEP d to z + STEP d in standardized units: (its consistent part, the norm of the mean
    change, which is what `change` predicts and what a slider does to every output alike; the
    mean norm of the change, which also counts how much each output is redrawn)."""
    consistent, total = [], []
    for d in directions:
        ahead = probe.features_of([shifted(z, [d], [STEP]) for z in latents], tick)
        behind = probe.features_of([shifted(z, [d], [-STEP]) for z in latents], tick)
        moved = (standard(ahead) - standard(behind)) / (2 * STEP)
        consistent.append(float(np.linalg.norm(moved.mean(axis=0))))
        total.append(float(np.linalg.norm(moved, axis=1).mean()))
    return consistent, total


def check_directions(
    probe: Probe,
    standard: Standard,
    directions: Sequence[Direction],
    *,
    held_out: int = 64,
    seed: int = 0,
    tick: Tick = lambda n: None,
) -> dict[str, Any]:
    """How well `directions` work, on `held_out` latents the fit never saw: each one's measured
    change per unit (see `measured_changes`) against RANDOM random unit directions of the same
    shapes (`ratio_first`: direction 1's consistent change over theirs, `ratio_mean`: the
    directions' mean over theirs), and how the measured change compares with the predicted one.

    A random direction's consistent change is mostly its share of direction 1 (a shipped
    texture's random directions changed their features 0.47 per unit, those orthogonal to
    direction 1 0.23), while directions 2 on are orthogonal to it: so they are also compared with
    RANDOM_REST random directions orthogonal to direction 1 (`ratio_rest`, one per direction 2 on)."""
    rng = np.random.Generator(np.random.PCG64([seed, 1]))  # a stream apart from the fit's
    latents = draw_latents(probe.latent_shapes, held_out, rng)
    shapes = probe.direction_shapes
    found, found_total = measured_changes(probe, standard, latents, directions, tick)
    randoms = random_directions(shapes, RANDOM, rng)
    baseline, baseline_total = (float(np.mean(m)) for m in measured_changes(probe, standard, latents, randoms, tick))
    baseline_rest = None
    if len(directions) > 1:
        rest = random_directions(shapes, RANDOM_REST, rng, away_from=directions[0])
        baseline_rest = float(np.mean(measured_changes(probe, standard, latents, rest, tick)[0]))
    return {
        "held_out": held_out,
        "step": STEP,
        "measured": [round(c, 4) for c in found],
        "random": round(baseline, 4),
        "ratio_first": round(found[0] / baseline, 2),
        "ratio_mean": round(float(np.mean(found)) / baseline, 2),
        "random_rest": None if baseline_rest is None else round(baseline_rest, 4),
        "ratio_rest": [] if baseline_rest is None else [round(c / baseline_rest, 2) for c in found[1:]],
        "measured_over_change": [round(m / d.change, 2) for m, d in zip(found, directions)],
        "measured_total": [round(c, 4) for c in found_total],
        "random_total": round(baseline_total, 4),
    }


def check_cost(held_out: int, count: int) -> int:
    """The outputs `check_directions` renders for `count` directions (for a progress bar)."""
    return held_out * (count + RANDOM + (RANDOM_REST if count > 1 else 0)) * 2
