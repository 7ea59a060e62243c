"""Resampling a seamless texture to any size, with wrap-around, so that it stays seamless.

The network makes sides that are whole latent cells (its stride). A texture of another size is
rendered at the next such size up and resampled: each axis is read as one period of a periodic
signal, and each output pixel is a Catmull-Rom cubic over its neighbours, indices taken modulo
the side, so the last column blends into the first exactly as any two neighbours do. Shrinking
stretches the kernel by the ratio (from 33 px up to 48 it is 1.5x; a `scale` below 1 renders
more and shrinks further), which filters what the smaller grid cannot hold instead of aliasing
it. The `scale` param renders fewer or more cells than the asked size holds and resamples the
same way. A texture that does not tile is resampled with its edge pixels held instead of
wrapped.
"""

from __future__ import annotations

import math

import numpy as np

RADIUS = 2.0  # Catmull-Rom's support, in input pixels at scale 1


def catmull_rom(x: np.ndarray) -> np.ndarray:
    """Keys' cubic with a = -0.5: interpolating (1 at 0, 0 at other whole numbers), C1-smooth."""
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def cubic_taps(size_in: int, size_out: int, wrap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (size_out, taps): output pixel i is sum over t of
    weights[i, t] * input[indices[i, t]], indices wrapped into 0..size_in-1 (or, with `wrap`
    off, held at the edge pixels, for an image that does not tile) and each row's weights
    summing to 1."""
    scale = size_in / size_out
    stretch = max(1.0, scale)  # shrinking: a wider kernel, so the result is filtered, not aliased
    support = RADIUS * stretch
    centres = (np.arange(size_out) + 0.5) * scale - 0.5  # pixel centres on the same period
    first = np.floor(centres - support).astype(np.int64) + 1
    taps = math.ceil(2 * support) + 1
    positions = first[:, None] + np.arange(taps)[None, :]
    weights = catmull_rom((positions - centres[:, None]) / stretch)
    weights /= weights.sum(axis=1, keepdims=True)
    indices = positions % size_in if wrap else np.clip(positions, 0, size_in - 1)
    return indices, weights.astype(np.float32)


def _resample_axis(pixels: np.ndarray, size_out: int, axis: int, wrap: bool = True) -> np.ndarray:
    moved = np.moveaxis(pixels, axis, 0)
    indices, weights = cubic_taps(moved.shape[0], size_out, wrap)
    out = np.zeros((size_out, *moved.shape[1:]), np.float32)
    extra = (slice(None),) + (None,) * (moved.ndim - 1)
    for t in range(indices.shape[1]):  # a few taps: each one whole-array step, not a pixel loop
        out += weights[:, t][extra] * moved[indices[:, t]]
    return np.moveaxis(out, 0, axis)


def resize(pixels: np.ndarray, height: int, width: int, wrap: bool = True) -> np.ndarray:
    """A seamless (H, W, C) uint8 image resampled to (height, width, C), still seamless. The
    same size comes back unchanged. With `wrap` off, the same cubic for an image that does not
    tile: its edges are not blended into each other."""
    if pixels.shape[:2] == (height, width):
        return pixels
    out = pixels.astype(np.float32)
    if out.shape[0] != height:
        out = _resample_axis(out, height, 0, wrap)
    if out.shape[1] != width:
        out = _resample_axis(out, width, 1, wrap)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
