"""The alpha field an image's edge is drawn from: alpha blurred a little, read as a smooth field
whose level line (one half) is the edge. The smooth upscale (adapter.smooth_upscale), the `weight`
param (adapter.weighted) and the SVG outline (vector.py) all draw the same edge from it."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

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


def upscaled(plane: np.ndarray, side: int) -> np.ndarray:
    """A native plane (0-1) blurred by EDGE_BLUR and resampled (Lanczos) to `side` x `side`, float32."""
    field = Image.fromarray(blurred(plane, EDGE_BLUR), "F")
    return np.asarray(field.resize((side, side), Image.Resampling.LANCZOS), np.float32)


def edge_alpha(field: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Each pixel's alpha from its distance to the field's `level` line, (field - level) /
    |gradient| + 1/2, clipped to 0-1: an edge one pixel wide that follows the line, as
    distance-field text is drawn."""
    gy, gx = np.gradient(field)
    return np.clip(0.5 + (field - level) / np.maximum(np.hypot(gx, gy), 1e-6), 0.0, 1.0)
