"""Latent operations: variations, spherical interpolation, preference steering."""

from __future__ import annotations

import numpy as np
import pytest

from ganbridge.generators.latent import interpolate, perturb, slerp, steer

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


def test_steer_moves_towards_likes_and_away_from_dislikes():
    rng = np.random.default_rng(2)
    liked = [latent(rng) for _ in range(3)]
    disliked = [latent(rng) for _ in range(3)]
    drawn = steer(liked, disliked, SHAPES, count=12, explore=0.25, rng=rng)
    hows = [h for h, _ in drawn]
    assert len(drawn) == 12 and hows.count("fresh") == 3 and hows.count("crossover") == 3
    liked_mean = np.mean([flat(z) for z in liked], axis=0)
    disliked_mean = np.mean([flat(z) for z in disliked], axis=0)
    for how, z in drawn:
        assert {k: v.shape for k, v in z.items()} == SHAPES
        if how == "around":
            assert cos(flat(z), liked_mean) > 0.3 > cos(flat(z), disliked_mean)


def test_steer_step_shrinks_as_ratings_accumulate():
    rng = np.random.default_rng(3)
    target = latent(rng)

    def spread(n_ratings: int) -> float:
        liked = [target] * n_ratings
        drawn = steer(liked, [], SHAPES, count=8, explore=0.0, rng=np.random.default_rng(4))
        return float(np.mean([1 - cos(flat(z), flat(target)) for how, z in drawn if how == "around"]))

    assert spread(1) > spread(6) > spread(30)


def test_steer_without_ratings_is_fresh_and_mismatched_parts_are_fresh():
    rng = np.random.default_rng(5)
    assert {h for h, _ in steer([], [], SHAPES, 4, 0.0, rng)} == {"fresh"}
    other_size = {"global": rng.standard_normal(16).astype(np.float32), "local": np.ones((16, 4, 4), np.float32)}
    drawn = steer([other_size], [], SHAPES, 2, 0.0, rng)
    for _, z in drawn:
        assert z["local"].shape == (16, 8, 8) and cos(z["global"], other_size["global"]) > 0.3
