"""A model's gallery: many seeded outputs, made once, described by how they look (or sound), from
which steering picks what a session's ratings point at.

Why: a rating says how an output looks to the artist, not which way its latent should move. A
preference fitted over latents has to learn which of a latent's many numbers matter, and 80 items
cannot teach it that: on glyphs (128 numbers and 62 characters) steering by latent steps did no
better than random batches. Fitted over looks (`Output.look`, the kind's description of what a
person sees or hears), the same ratings rank a gallery of 2,048 outputs, whose looks are known
without rendering them again, so the pick costs a matrix product.

A gallery is only the seeds and their looks: item i of a gallery is the model's seeded latent
`random_latent(params, seeds[i])` at the gallery's latent shapes, so the file stays small and a
steered item's recipe holds its latent as any other's does. The file lies beside its checkpoint
(`<stem>.gallery.safetensors`); `ganbridge gallery KIND` makes it. Torch-free: the core reads it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganbridge.generators.checkpoint import CheckpointError, read_numpy_file, write_numpy_file

SUFFIX = ".gallery.safetensors"
FORMAT = "ganbridge-gallery/1"
SEED_BASE = 1 << 40  # gallery seeds: far from the small seeds requests use, so its items are new to a session
COMPONENTS = 64  # steering compares looks in the gallery's top principal components (see Gallery.compact)


@dataclass(frozen=True)
class Gallery:
    """Seeded outputs of one checkpoint at one setting: each one's seed and look, the looks'
    centre, the latent shapes the seeds are drawn at and the discrete parts that were free (a
    request that fixes one, a glyph's category or a piece's key, would render a gallery latent
    otherwise than it looks here)."""

    seeds: np.ndarray  # (N,) int64
    looks: np.ndarray  # (N, F) float32
    centre: np.ndarray  # (F,) the looks' mean
    scale: np.ndarray  # (F,) what each number of a look is divided by once centred (see make_gallery)
    shapes: dict[str, tuple[int, ...]]
    discrete: tuple[str, ...]
    made: dict[str, Any]  # how: the params, count, command

    @functools.cached_property
    def _components(self) -> tuple[np.ndarray, np.ndarray]:
        """(basis (F, k), the gallery's looks in it (N, k)): the top COMPONENTS principal axes of
        the standardized looks, made once, on the first steer (about 0.3 s for 2,048 glyphs)."""
        standard = (self.looks - self.centre) / self.scale
        _, _, axes = np.linalg.svd(standard, full_matrices=False)
        basis = np.ascontiguousarray(axes[:COMPONENTS].T, np.float32)
        return basis, standard @ basis

    @property
    def compact_looks(self) -> np.ndarray:
        """The gallery's own looks as `compact` makes them."""
        return self._components[1]

    def compact(self, looks: np.ndarray) -> np.ndarray:
        """Looks (rows) centred on the gallery's, scaled as its numbers are, and in its top
        principal components: inner products as of the whole looks, to what the rest holds (for
        glyphs, 64 of 1,024 numbers), at a sixteenth of the cost."""
        return ((looks - self.centre) / self.scale) @ self._components[0]

    def fits(
        self, shapes: Mapping[str, tuple[int, ...]], discrete: Sequence[str], look_size: int | None = None
    ) -> bool:
        """Whether its items stand for what a request with these latent shapes and discrete parts
        makes (and, given `look_size`, compare with looks of that size)."""
        return (
            {k: tuple(v) for k, v in shapes.items()} == self.shapes
            and tuple(sorted(discrete)) == self.discrete
            and look_size in (None, self.looks.shape[1])
        )


def gallery_path(weights: Path) -> Path:
    """Where the gallery of checkpoint `weights` (NAME.safetensors) lies: NAME.gallery.safetensors."""
    return weights.with_name(Path(weights).stem + SUFFIX)


def is_gallery_file(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def make_gallery(
    looks_of: Callable[[list[int]], np.ndarray],
    count: int,
    shapes: Mapping[str, tuple[int, ...]],
    discrete: Sequence[str],
    made: Mapping[str, Any],
    standardize: bool,
    batch: int = 64,
    tick: Callable[[int], object] = lambda n: None,
) -> Gallery:
    """`count` seeded outputs' looks (`looks_of(seeds)`: the looks of those seeds' outputs, rows).
    With `standardize` (a look of numbers in different units: a piece's pitches, counts and
    fractions) each number is scaled by its spread plus the mean spread (so a nearly constant one
    is not blown up); without (a look of like numbers: an image's pixels), by 1, so that the
    numbers that vary most count most, as they do to the eye (measured on glyphs: 0.96 best
    cosine with scale 1, 0.91 with spreads floored so, 0.85 with spreads alone)."""
    if count < 1:
        raise ValueError(f"a gallery needs at least 1 item, not {count}")
    seeds = SEED_BASE + np.arange(count, dtype=np.int64)
    rows = []
    for start in range(0, count, batch):
        chunk = [int(s) for s in seeds[start : start + batch]]
        rows.append(np.asarray(looks_of(chunk), np.float32))
        tick(len(chunk))
    looks = np.concatenate(rows)
    spread = looks.std(0)
    scale = spread + spread.mean() + 1e-6 if standardize else np.ones_like(spread)
    shapes_ = {k: tuple(v) for k, v in shapes.items()}
    return Gallery(seeds, looks, looks.mean(0), scale.astype(np.float32), shapes_, tuple(sorted(discrete)), dict(made))


def save_gallery(path: Path, gallery: Gallery) -> None:
    """Write `gallery` to `path`."""
    metadata = {
        "format": FORMAT,
        "shapes": json.dumps({k: list(v) for k, v in gallery.shapes.items()}),
        "discrete": json.dumps(list(gallery.discrete)),
        "made": json.dumps(gallery.made),
    }
    tensors = {
        "seeds": gallery.seeds.astype(np.int64),
        "looks": np.ascontiguousarray(gallery.looks, np.float16),  # half the file; rounding far below a look's spread
        "scale": np.ascontiguousarray(gallery.scale, np.float32),
    }
    write_numpy_file(path, tensors, metadata)


def load_gallery(path: Path) -> Gallery:
    """The gallery in `path`. Raises CheckpointError, naming the file and the fault, for anything malformed."""
    metadata, tensors = read_numpy_file(path, "gallery")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: not a gallery file of format {FORMAT}")
    seeds, looks, scale = tensors.get("seeds"), tensors.get("looks"), tensors.get("scale")
    if (
        seeds is None
        or looks is None
        or scale is None
        or seeds.ndim != 1
        or looks.ndim != 2
        or len(seeds) != len(looks)
    ):
        raise CheckpointError(f"{path.name}: a gallery holds 'seeds' (N), 'looks' (N, F) and 'scale' (F)")
    if scale.shape != looks.shape[1:] or len(seeds) == 0:
        raise CheckpointError(f"{path.name}: a gallery needs at least one item and a scale per number of a look")
    if not (np.isfinite(looks).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise CheckpointError(f"{path.name}: a gallery's looks must be finite and its scale positive")
    try:
        shapes = {k: tuple(int(n) for n in v) for k, v in json.loads(metadata["shapes"]).items()}
        discrete = tuple(sorted(str(k) for k in json.loads(metadata["discrete"])))
        made = dict(json.loads(metadata.get("made", "{}")))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path.name}: a malformed gallery header: {e}") from None
    seeds, looks, scale = seeds.astype(np.int64), looks.astype(np.float32), scale.astype(np.float32)
    for array in (seeds, looks, scale):
        array.setflags(write=False)
    return Gallery(seeds, looks, looks.mean(0), scale, shapes, discrete, made)
