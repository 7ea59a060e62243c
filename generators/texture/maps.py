"""Height and normal maps derived from a generated colour texture.

Gradients use wrap-around differences (np.roll), so maps of a seamless texture stay seamless.
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


def height_to_uint8(height: np.ndarray) -> np.ndarray:
    return np.clip(height * 255.0 + 0.5, 0, 255).astype(np.uint8)
