"""Height, normal, roughness and ambient-occlusion maps derived from a generated colour texture.

Every neighbourhood wraps around (np.roll, and box means over a circularly extended image), so
the maps of a seamless texture are seamless too. They are derived, not learned: height is
luminance (light is raised), and the others follow from height as a material artist's first
pass would (crevices are rougher and darker, raised smooth parts glossier).
"""

from __future__ import annotations

import numpy as np


def height_map(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 HxW in [0, 1]: luminance, lightly smoothed, stretched to full range."""
    lum = rgb[..., :3].astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32) / 255.0
    smooth = lum.copy()
    for axis in (0, 1):  # 1-2-1 binomial blur with wrap-around, once per axis
        smooth = 0.25 * np.roll(smooth, 1, axis) + 0.5 * smooth + 0.25 * np.roll(smooth, -1, axis)
    lo, hi = float(smooth.min()), float(smooth.max())
    return (smooth - lo) / (hi - lo) if hi > lo else np.zeros_like(smooth)


def normal_map(height: np.ndarray, strength: float = 4.0) -> np.ndarray:
    """float HxW height -> uint8 HxWx3 tangent-space normal map (OpenGL convention, +Y up)."""
    dx = (np.roll(height, -1, 1) - np.roll(height, 1, 1)) * 0.5 * strength
    dy = (np.roll(height, -1, 0) - np.roll(height, 1, 0)) * 0.5 * strength
    n = np.stack([-dx, dy, np.ones_like(height)], axis=-1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.clip((n * 0.5 + 0.5) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def wrap_box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """The mean over a (2r+1)^2 box around each pixel of a 2-D float image, wrapping around."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        r = min(radius, (n - 1) // 2)  # a box never wider than the image
        padded = np.concatenate([np.take(out, range(n - r, n), axis), out, np.take(out, range(r), axis)], axis)
        sums = np.cumsum(padded, axis=axis)
        zero = np.zeros_like(np.take(sums, [0], axis))
        sums = np.concatenate([zero, sums], axis)
        out = (np.take(sums, range(2 * r + 1, n + 2 * r + 1), axis) - np.take(sums, range(n), axis)) / (2 * r + 1)
    return out.astype(np.float32)


AO_RADII = (2, 4, 8, 16)  # pixels: creases, then larger hollows


def ambient_occlusion_map(height: np.ndarray) -> np.ndarray:
    """float HxW height in [0, 1] -> float32 HxW in [0, 1], 1 unoccluded: how far a pixel lies
    below the mean of its surroundings, at several radii (a hollow sees less of the sky)."""
    depth = sum(np.maximum(wrap_box_mean(height, r) - height, 0.0) for r in AO_RADII) / len(AO_RADII)
    scale = float(np.percentile(depth, 99)) or 1.0  # the deepest hollows come out nearly black
    return np.clip(1.0 - 0.85 * depth / scale, 0.0, 1.0).astype(np.float32)


def roughness_map(height: np.ndarray, occlusion: np.ndarray) -> np.ndarray:
    """float HxW height and occlusion -> float32 HxW roughness in [0.35, 0.95]: rough in hollows
    and where the surface is busy (fine relief), smoother on raised, even parts."""
    detail = np.abs(height - wrap_box_mean(height, 2))
    detail = detail / (float(np.percentile(detail, 99)) or 1.0)
    rough = 0.4 * (1.0 - height) + 0.3 * np.clip(detail, 0.0, 1.0) + 0.3 * (1.0 - occlusion)
    lo, hi = float(rough.min()), float(rough.max())
    unit = (rough - lo) / (hi - lo) if hi > lo else np.full_like(rough, 0.5)
    return (0.35 + 0.6 * unit).astype(np.float32)


def unit_to_uint8(values: np.ndarray) -> np.ndarray:
    """float values in [0, 1] -> uint8 greyscale."""
    return np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
