"""The alpha field an image's edge is drawn from: alpha blurred a little, read as a smooth field
whose level line (one half) is the edge. The smooth upscale (adapter.smooth_upscale), the `weight`
param (adapter.weighted) and the SVG outline (vector.py) all draw the same edge from it."""

from __future__ import annotations

import math

import numpy as np

EDGE_BLUR = 0.5  # native pixels: the blur of the alpha field, which smooths the network's pixel-scale raggedness


def blurred(plane: np.ndarray, sigma: float) -> np.ndarray:
    """`plane` blurred by a Gaussian of `sigma` pixels (nothing beyond the edges)."""
    x = np.arange(-math.ceil(3 * sigma), math.ceil(3 * sigma) + 1, dtype=np.float32)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    r, (h, w) = len(x) // 2, plane.shape
    padded = np.pad(plane.astype(np.float32), r)
    rows = np.zeros((h + 2 * r, w), np.float32)
    out = np.zeros((h, w), np.float32)
    for i, k in enumerate(kernel):  # separable: along x, then along y
        rows += k * padded[:, i : i + w]
    for i, k in enumerate(kernel):
        out += k * rows[i : i + h]
    return out
