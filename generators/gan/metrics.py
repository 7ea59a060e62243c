"""Quality figures that need no downloaded network: sliced Wasserstein distance on patches.

`sliced_wasserstein` is the distance every kind's evaluation uses (image/evaluate.py on Laplacian
pyramid levels); `patch_swd` compares the distribution of small patches at one scale, as
texture/evaluate.py does against the exemplar.
"""

from __future__ import annotations

import numpy as np


def random_crops(images: list[np.ndarray], count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` size x size crops at random places of random images (each at least size a side)."""
    out = []
    for _ in range(count):
        img = images[int(rng.integers(len(images)))]
        y = int(rng.integers(img.shape[0] - size + 1))
        x = int(rng.integers(img.shape[1] - size + 1))
        out.append(img[y : y + size, x : x + size])
    return out


def random_patches(images: list[np.ndarray], count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random size x size patches, flattened, one a row."""
    return np.asarray([p.reshape(-1) for p in random_crops(images, count, size, rng)], dtype=np.float64)


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, projections: int, rng: np.random.Generator, repeats: int = 1
) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance of the projections of two
    equally large samples (rows); `repeats` draws of `projections` directions each, averaged."""
    total = 0.0
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], projections))
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        total += float(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)).mean())
    return total / repeats


def patch_swd(
    images: list[np.ndarray], reference: list[np.ndarray], patch: int = 7, count: int = 4096, seed: int = 0
) -> float:
    """SWD between patch distributions, in units of the reference's pixel standard deviation."""
    rng = np.random.default_rng(seed)
    ref = [r.astype(np.float64) for r in reference]
    mean = np.mean([r.mean() for r in ref])
    std = np.mean([r.std() for r in ref]) or 1.0
    a = (random_patches([i.astype(np.float64) for i in images], count, patch, rng) - mean) / std
    b = (random_patches(ref, count, patch, rng) - mean) / std
    return sliced_wasserstein(a, b, 128, rng)
