"""Latent operations shared by every generator: variations, interpolation and preference steering.

Latents are dicts of standard-normal arrays. Each operation keeps its outputs standard-normal
in distribution (a GAN generator only knows that region), so a mean of several latents is
rescaled to the norm of a typical sample before use.
"""

from __future__ import annotations

import numpy as np

from ganbridge.generators.base import Latent, draw_latent


def _typical(v: np.ndarray) -> np.ndarray:
    """Rescale to the norm a standard-normal sample of this size has (sqrt of its size)."""
    norm = float(np.linalg.norm(v))
    return v * (np.sqrt(v.size) / norm) if norm > 1e-8 else v


def perturb(latent: Latent, strength: float, rng: np.random.Generator) -> Latent:
    """strength 0 -> the same latent, 1 -> an unrelated one; in between, a variation."""
    a = np.float32(np.sqrt(1.0 - strength**2))
    b = np.float32(strength)
    # Noise is drawn part by part in sorted order: a latent loaded from the store comes back in
    # arbitrary key order (safetensors), and the same seed must give the same variations.
    return {k: (a * latent[k] + b * rng.standard_normal(latent[k].shape).astype(np.float32)) for k in sorted(latent)}


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    fa, fb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    cos = np.dot(fa, fb) / (np.linalg.norm(fa) * np.linalg.norm(fb) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        out = (1 - t) * fa + t * fb
    else:
        out = (np.sin((1 - t) * omega) * fa + np.sin(t * omega) * fb) / np.sin(omega)
    return out.reshape(a.shape).astype(np.float32)


def interpolate(start: Latent, end: Latent, steps: int) -> list[Latent]:
    """`steps` latents from start to end inclusive, spherical in each part."""
    if start.keys() != end.keys() or any(start[k].shape != end[k].shape for k in start):
        raise ValueError("the two items have latents of different shapes (e.g. different sizes)")
    ts = np.linspace(0.0, 1.0, steps)
    return [{k: slerp(start[k], end[k], float(t)) for k in start} for t in ts]


def steer(
    liked: list[Latent],
    disliked: list[Latent],
    shapes: dict[str, tuple[int, ...]],
    count: int,
    explore: float,
    rng: np.random.Generator,
) -> list[tuple[str, Latent]]:
    """New latents biased by ratings; returns (how, latent) pairs, how in {around, crossover, fresh}.

    Around: drawn near mean(liked) - 1/2 mean(disliked), with a step size that shrinks as
    ratings accumulate (1/sqrt(1 + n/2), at least 0.2). Crossover: a mix of two liked latents.
    Fresh: plain random samples, `explore` of the count (at least one when there are no likes).
    Parts whose shapes do not match the target (e.g. another output size) are drawn fresh.
    """
    n = len(liked) + len(disliked)
    step = max(0.2, 1.0 / np.sqrt(1.0 + n / 2.0))
    n_fresh = int(round(explore * count)) if liked or disliked else count
    n_cross = min(count - n_fresh, count // 4) if len(liked) >= 2 else 0
    n_around = count - n_fresh - n_cross

    def fresh() -> Latent:
        return draw_latent(shapes, rng)

    def centre(key: str, shape: tuple[int, ...]) -> np.ndarray | None:
        good = [z[key] for z in liked if z[key].shape == shape]
        bad = [z[key] for z in disliked if z[key].shape == shape]
        if not good and not bad:
            return None
        c = np.zeros(shape, np.float64)
        if good:
            c += np.mean(good, axis=0)
        if bad:
            c -= 0.5 * np.mean(bad, axis=0)
        return _typical(c)

    centres = {k: centre(k, s) for k, s in shapes.items()}
    out: list[tuple[str, Latent]] = []
    for _ in range(n_around):
        z = fresh()
        for k, c in centres.items():
            if c is not None:
                z[k] = (np.sqrt(1 - step**2) * c + step * z[k]).astype(np.float32)
        out.append(("around", z))
    for _ in range(n_cross):
        i, j = rng.choice(len(liked), size=2, replace=False)
        z = fresh()
        for k, s in shapes.items():
            if liked[i][k].shape == s and liked[j][k].shape == s:
                mask = rng.random(s) < 0.5
                z[k] = np.where(mask, liked[i][k], liked[j][k]).astype(np.float32)
        out.append(("crossover", z))
    out += [("fresh", fresh()) for _ in range(n_fresh)]
    return out
