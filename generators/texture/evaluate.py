"""How good is a texture model: patch SWD of generated textures against the exemplar.

The sliced Wasserstein distance between the distributions of 7x7 patches (4096 of each, 128
directions; gan/metrics.py's patch_swd), in units of the exemplar's pixel standard deviation, given
next to its floor (the exemplar against itself: what sampling noise alone gives) and its ceiling
(an untrained generator of the same config). Beside it, the cell-edge contrast: how much more
neighbouring pixels differ across a latent cell's edge than elsewhere (1.0: no block pattern), and
the appearance gap: how far the textures' shift-invariant statistics (the adapter's `appearance`:
colour, sharpness by direction, feature size, lightness histogram) lie from the exemplar's, a figure
that no training loss here optimises (training may match patch distributions directly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ganbridge.generators.base import draw_latent
from ganbridge.generators.gan.metrics import patch_swd, random_crops
from ganbridge.generators.texture.adapter import appearance
from ganbridge.generators.texture.model import TextureNetwork

NOTE = (
    "sliced Wasserstein distance of 7x7 patches (4096 each, 128 directions) vs the exemplar, in exemplar std "
    "units; floor = exemplar vs itself, untrained = random weights"
)


def cell_edge_contrast(images: Sequence[np.ndarray], stride: int) -> float:
    """Mean absolute difference of neighbouring pixels across latent cells' edges (every `stride`
    pixels, both axes) over that of all other neighbours, in the images' lightness."""
    across, within = [], []
    for img in images:
        grey = np.asarray(img, np.float64).mean(axis=-1)
        for d in (np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0)).T):
            edge = (np.arange(1, d.shape[1] + 1) % stride) == 0
            across.append(d[:, edge].ravel())
            within.append(d[:, ~edge].ravel())
    return float(np.concatenate(across).mean() / max(np.concatenate(within).mean(), 1e-12))


def appearance_of(images: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 (H, W, 3) images -> their appearance statistics, one row each. `appearance` shifts
    with wrap-around (a texture tiles); a crop of a photo does not, and its seam would add edges a
    texture never has, so each image is first mirrored into a 2 x 2 tile, which wraps for any image."""
    tiles = [np.concatenate([m, m[::-1]], axis=0) for m in (np.concatenate([i, i[:, ::-1]], axis=1) for i in images)]
    batch = torch.from_numpy(np.stack(tiles).astype(np.float32)).permute(0, 3, 1, 2)
    return appearance(batch / 127.5 - 1).numpy().astype(np.float64)


def appearance_gap(images: Sequence[np.ndarray], exemplars: Sequence[np.ndarray], seed: int = 0) -> dict:
    """How far the mean appearance of `images` lies from that of as many crops of the exemplars of
    their size: the RMS difference of the mean statistics (each a mean, spread, correlation or
    histogram share, of order 0.1-1, so they are compared as they are). Beside it the floor, another
    set of crops against the first: what sampling the exemplar alone gives."""
    rng = np.random.default_rng(seed)
    # Crops of at most half the exemplar, so that they differ (a tiled pattern may be just one size).
    side = min(*(min(i.shape[:2]) for i in images), *(min(e.shape[:2]) // 2 for e in exemplars))
    crops = random_crops(list(exemplars), 2 * len(images), side, rng)
    ref, other = appearance_of(crops[: len(images)]).mean(0), appearance_of(crops[len(images) :]).mean(0)
    generated = appearance_of([i[:side, :side] for i in images]).mean(0)

    def gap(x: np.ndarray) -> float:
        return round(float(np.sqrt(np.mean((x - ref) ** 2))), 4)

    return {"appearance_gap_generated": gap(generated), "appearance_gap_real_floor": gap(other)}


def evaluate(
    net: TextureNetwork,
    exemplars: Sequence[np.ndarray],
    side: int,
    grayscale: bool = False,
    samples: int = 16,
    seed: int = 99,
    keep: list[np.ndarray] | None = None,
) -> dict:
    """The card's figures for `samples` textures of side x side pixels against the exemplars (H, W,
    3 pixel values); the textures are appended to `keep` when given. The untrained generator's
    weights are drawn from torch's RNG seeded with `seed`, leaving the global stream as it was."""
    shapes = net.latent_shapes(side, side)
    rng = np.random.default_rng(seed)
    latents = [draw_latent(shapes, rng) for _ in range(samples)]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        untrained = TextureNetwork(net.config).eval().to(next(net.parameters()).device)
    reference = list(exemplars)
    ones = [1.0] * len(latents)
    generated = list(net.sample(latents, ones, grayscale))
    if keep is not None:
        keep.extend(generated)
    return {
        "patch_swd_generated": round(patch_swd(generated, reference), 4),
        "patch_swd_real_floor": round(patch_swd(reference, reference, seed=1), 4),
        "patch_swd_untrained": round(patch_swd(list(untrained.sample(latents, ones, grayscale)), reference), 4),
        "patch_swd_note": NOTE,
        "cell_edge_contrast": round(cell_edge_contrast(generated, net.config.stride), 3),
        "cell_edge_contrast_exemplar": round(cell_edge_contrast(reference, net.config.stride), 3),
        **appearance_gap(generated, reference),
    }
