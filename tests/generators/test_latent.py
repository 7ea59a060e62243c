"""Latent operations: variations and spherical interpolation, discrete parts kept whole."""

from __future__ import annotations

import numpy as np
import pytest

from ganbridge.generators.base import DiscretePart
from ganbridge.generators.latent import REDRAW_STRENGTH, interpolate, perturb, slerp

SHAPES = {"global": (16,), "local": (16, 8, 8)}


def latent(rng) -> dict:
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}


def flat(z) -> np.ndarray:
    return np.concatenate([z[k].ravel() for k in sorted(z)])


def cos(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_same_seed_same_variations_whatever_the_key_order():
    # The store gives a latent back in arbitrary key order (safetensors.numpy.load), and a seeded
    # variations request must still make the same variations.
    z = latent(np.random.default_rng(0))
    reordered = {k: z[k] for k in reversed(list(z))}
    a = perturb(z, 0.3, np.random.default_rng(5))
    b = perturb(reordered, 0.3, np.random.default_rng(5))
    assert np.array_equal(flat(a), flat(b))


def test_perturb_strength_controls_distance():
    rng = np.random.default_rng(0)
    z = latent(rng)
    assert np.array_equal(flat(perturb(z, 0.0, rng)), flat(z))
    near = [cos(flat(perturb(z, 0.1, rng)), flat(z)) for _ in range(20)]
    far = [cos(flat(perturb(z, 0.8, rng)), flat(z)) for _ in range(20)]
    assert min(near) > 0.95 and max(far) < 0.8
    # variations keep the norm of a typical latent (the generator's training distribution)
    norms = [np.linalg.norm(flat(perturb(z, s, rng))) / np.sqrt(flat(z).size) for s in (0.3, 0.7, 1.0)]
    assert all(0.9 < n < 1.1 for n in norms)


def test_slerp_endpoints_and_norm():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(1000), rng.standard_normal(1000)
    assert np.allclose(slerp(a, b, 0.0), a, atol=1e-5) and np.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(mid) - np.linalg.norm(a)) / np.linalg.norm(a) < 0.1  # a lerp would shrink it ~30%
    path = interpolate(latent(rng), latent(rng), 8)
    assert len(path) == 8 and set(path[0]) == set(SHAPES)
    with pytest.raises(ValueError, match="different shapes"):
        interpolate({"local": np.zeros((1, 2, 2))}, {"local": np.zeros((1, 4, 4))}, 3)


def test_variations_keep_a_discrete_part_below_the_redraw_strength_and_redraw_it_above():
    rng = np.random.default_rng(6)
    z = latent(rng) | {"class": np.array([0.4], np.float32)}
    kept = [perturb(z, s, rng, {"class"}) for s in (0.1, 0.3, REDRAW_STRENGTH - 0.01)]
    assert all(v["class"] == z["class"] for v in kept)
    assert all(cos(v["global"], z["global"]) < 0.9999 for v in kept)  # the rest still varies
    redrawn = [perturb(z, 0.8, rng, {"class"})["class"][0] for _ in range(20)]
    assert len(set(redrawn)) == 20
    # without the part named discrete, it is blended like the others (as before)
    assert perturb(z, 0.3, np.random.default_rng(1))["class"] != z["class"]


def test_interpolation_switches_a_discrete_part_halfway_instead_of_blending_it():
    rng = np.random.default_rng(7)
    a = latent(rng) | {"class": np.array([-1.5], np.float32)}
    b = latent(rng) | {"class": np.array([1.5], np.float32)}
    path = interpolate(a, b, 5, {"class"})
    assert [float(p["class"][0]) for p in path] == [-1.5, -1.5, 1.5, 1.5, 1.5]
    assert 0 < cos(path[2]["global"], a["global"]) < 0.9999


def test_a_discrete_part_maps_values_to_choices_and_draws_inside_a_choice():
    part = DiscretePart(62)
    rng = np.random.default_rng(8)
    counts = np.bincount([part.index(rng.standard_normal(1).astype(np.float32)) for _ in range(4000)], minlength=62)
    assert counts.min() > 0  # every character is reachable from a standard normal
    for index in (0, 1, 30, 61):
        assert all(part.index(part.draw(index, rng)) == index for _ in range(50))
    assert DiscretePart(2).index(np.array([0.3], np.float32)) == 1 and DiscretePart(2).index(np.array([-0.3])) == 0


def test_uniform_moves_a_normal_value_into_equal_bins_keeping_its_order():
    """Seeded choices come out equally often (a normal value's own bins are unequal: 62 choices
    from 4,000 draws range about 3.5x), and a value's rank among others is kept."""
    part = DiscretePart(62)
    values = np.random.default_rng(9).standard_normal(6200).astype(np.float32)
    raw = np.bincount([part.index(v[None]) for v in values], minlength=62)
    moved = [part.uniform(v[None]) for v in values]
    counts = np.bincount([part.index(m) for m in moved], minlength=62)
    assert raw.max() / raw.min() > 2.5 and counts.max() / counts.min() < 1.8
    chi2 = float((((counts - 100) ** 2) / 100).sum())
    assert chi2 < 100  # 61 degrees of freedom: p > 0.001 for equal bins
    order = np.argsort(values)
    assert (np.diff(np.array([m[0] for m in moved])[order]) >= 0).all()
    assert all(m.dtype == np.float32 and m.shape == (1,) for m in moved[:5])
    two = DiscretePart(2)
    assert all(two.index(two.uniform(np.array([v], np.float32))) == int(v > 0) for v in (-2.0, -0.01, 0.01, 2.0))
