"""Latent operations shared by every generator: variations and interpolation (steering is in
steering.py).

Latents are dicts of standard-normal arrays. Each operation keeps its outputs standard-normal in
distribution (a GAN generator only knows that region). Discrete parts (a one-value part that picks
a choice, see base.DiscretePart) are never blended: a blend of two characters' values is a third
character.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ganbridge.generators.base import Latent

REDRAW_STRENGTH = 0.5  # variations at least this strong redraw the discrete parts


def perturb(latent: Latent, strength: float, rng: np.random.Generator, discrete: Collection[str] = ()) -> Latent:
    """strength 0 -> the same latent, 1 -> an unrelated one; in between, a variation. Discrete
    parts are kept below REDRAW_STRENGTH and drawn afresh from it on."""
    a = np.float32(np.sqrt(1.0 - strength**2))
    b = np.float32(strength)
    out = {}
    # Noise is drawn part by part in sorted order: a latent loaded from the store comes back in
    # arbitrary key order (safetensors), and the same seed must give the same variations.
    for k in sorted(latent):
        noise = rng.standard_normal(latent[k].shape).astype(np.float32)
        if k in discrete:
            out[k] = latent[k].copy() if strength < REDRAW_STRENGTH else noise
        else:
            out[k] = a * latent[k] + b * noise
    return out


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    fa, fb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    cos = np.dot(fa, fb) / (np.linalg.norm(fa) * np.linalg.norm(fb) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        out = (1 - t) * fa + t * fb
    else:
        out = (np.sin((1 - t) * omega) * fa + np.sin(t * omega) * fb) / np.sin(omega)
    return out.reshape(a.shape).astype(np.float32)


def interpolate(start: Latent, end: Latent, steps: int, discrete: Collection[str] = ()) -> list[Latent]:
    """`steps` latents from start to end inclusive, spherical in each part; a discrete part is
    start's for the first half of the way and end's for the rest."""
    if start.keys() != end.keys() or any(start[k].shape != end[k].shape for k in start):
        raise ValueError("the two items have latents of different shapes (e.g. different sizes)")
    return [mix(start, end, float(t), discrete) for t in np.linspace(0.0, 1.0, steps)]


def mix(start: Latent, end: Latent, t: float, discrete: Collection[str] = ()) -> Latent:
    """The latent a fraction `t` of the way from start to end (latents of the same shapes),
    spherical in each part; a discrete part is start's for the first half of the way and end's
    for the rest."""

    def part(k: str) -> np.ndarray:
        if k in discrete:
            return (start if t < 0.5 else end)[k].copy()
        return slerp(start[k], end[k], t)

    return {k: part(k) for k in start}
