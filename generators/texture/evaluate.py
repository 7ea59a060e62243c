"""How good is a texture model: patch SWD of generated textures against the exemplar.

The sliced Wasserstein distance between the distributions of 7x7 patches (4096 of each, 128
directions; gan/metrics.py's patch_swd), in units of the exemplar's pixel standard deviation, given
next to its floor (the exemplar against itself: what sampling noise alone gives) and its ceiling
(an untrained generator of the same config). Beside it, the cell-edge contrast: how much more
neighbouring pixels differ across a latent cell's edge than elsewhere (1.0: no block pattern).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ganbridge.generators.base import draw_latent
from ganbridge.generators.gan.metrics import patch_swd
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


def evaluate(
    net: TextureNetwork, exemplars: Sequence[np.ndarray], side: int, grayscale: bool = False, samples: int = 16
) -> dict:
    """The card's patch-SWD figures for `samples` textures of side x side pixels against the
    exemplars (H, W, 3 pixel values). The untrained generator's weights come from torch's global
    RNG, as any new network's do."""
    shapes = net.latent_shapes(side, side)
    rng = np.random.default_rng(99)
    latents = [draw_latent(shapes, rng) for _ in range(samples)]
    untrained = TextureNetwork(net.config).eval().to(next(net.parameters()).device)
    reference = list(exemplars)
    ones = [1.0] * len(latents)
    generated = list(net.sample(latents, ones, grayscale))
    return {
        "patch_swd_generated": round(patch_swd(generated, reference), 4),
        "patch_swd_real_floor": round(patch_swd(reference, reference, seed=1), 4),
        "patch_swd_untrained": round(patch_swd(list(untrained.sample(latents, ones, grayscale)), reference), 4),
        "patch_swd_note": NOTE,
        "cell_edge_contrast": round(cell_edge_contrast(generated, net.config.stride), 3),
        "cell_edge_contrast_exemplar": round(cell_edge_contrast(reference, net.config.stride), 3),
    }
