"""The pieces every kind's training and evaluation share (generators/gan/): each must give the
figures its callers computed with their own copies before, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganbridge.generators.gan.critic import minibatch_spread
from ganbridge.generators.gan.losses import mode_seeking_penalty
from ganbridge.generators.gan.metrics import patch_swd, sliced_wasserstein
from ganbridge.generators.image.evaluate import pyramid_swd

# --- sliced Wasserstein distance ---------------------------------------------------------------


def one_draw_swd(a: np.ndarray, b: np.ndarray, projections: int, rng: np.random.Generator) -> float:
    """The texture metric's own SWD before it was shared: one draw of directions."""
    dirs = rng.standard_normal((a.shape[1], projections))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    return float(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)).mean())


def repeated_swd(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """The image evaluation's own SWD before it was shared: 4 draws of 256 directions, averaged."""
    return sum(one_draw_swd(a, b, 256, rng) for _ in range(4)) / 4


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.standard_normal((500, 49)), rng.standard_normal((500, 49)) * 1.5 + 0.2


def test_sliced_wasserstein_gives_each_former_copy_its_figures(samples):
    a, b = samples
    shared = sliced_wasserstein(a, b, 128, np.random.default_rng(1))
    assert shared == one_draw_swd(a, b, 128, np.random.default_rng(1))
    shared = sliced_wasserstein(a, b, 256, np.random.default_rng(2), repeats=4)
    assert shared == repeated_swd(a, b, np.random.default_rng(2))


def test_sliced_wasserstein_is_zero_for_the_same_sample_and_grows_with_a_shift(samples):
    a, _ = samples
    assert sliced_wasserstein(a, a, 64, np.random.default_rng(0)) == 0.0
    near = sliced_wasserstein(a, a + 0.1, 64, np.random.default_rng(0))
    far = sliced_wasserstein(a, a + 1.0, 64, np.random.default_rng(0))
    assert 0 < near < far


def test_patch_and_pyramid_swd_tell_alike_from_unlike_sets():
    rng = np.random.default_rng(42)
    a = rng.integers(0, 256, (24, 64, 64, 4), dtype=np.uint8)
    b = a.copy()
    b[..., :3] //= 4  # much darker
    assert pyramid_swd(a, a, patches=2048)["mean"] < pyramid_swd(a, b, patches=2048)["mean"]
    rgb = [img[..., :3].astype(np.float64) for img in a[:3]]
    dark = [img[..., :3].astype(np.float64) for img in b[:3]]
    assert patch_swd(rgb, rgb, count=1024) < patch_swd(dark, rgb, count=1024)


# --- the mode-seeking term ---------------------------------------------------------------------


def image_term(fake: torch.Tensor, z: torch.Tensor, offset: int) -> torch.Tensor:
    """The image trainer's term as it was first written: the mean of each pair's ratio."""
    images = (fake[:-offset] - fake[offset:]).abs().mean(dim=(1, 2, 3))
    latents = (z[:-offset] - z[offset:]).abs().mean(dim=1)
    return 1.0 / ((images / latents).mean() + 1e-5)


def music_term(z: dict[str, torch.Tensor], probs: torch.Tensor, half: int) -> torch.Tensor:
    """The music trainer's own copy: the ratio of distances pooled over every pair."""
    out = (probs[:half] - probs[half : 2 * half]).abs().mean()
    lat = sum((v[:half] - v[half : 2 * half]).abs().mean() for v in z.values()) / len(z)
    return 1.0 / (out / lat + 1e-5)


def music_latent(n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "shared": torch.randn(n, 32, generator=gen),
        "track": torch.randn(n, 4, 16, generator=gen),
        "bar": torch.randn(n, 4, 32, generator=gen),
    }


def test_mode_seeking_per_pair_is_the_image_trainers_term_values_and_gradients():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(16, 8, generator=gen)
    # channels_last, as the image trainer's generator makes its batches
    x = torch.rand(16, 4, 8, 8, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = x.detach().clone().requires_grad_(True)
    shared, own = mode_seeking_penalty(x * 2 - 1, z, 4), image_term(y * 2 - 1, z, 4)
    assert torch.equal(shared, own)
    shared.backward()
    own.backward()
    assert x.grad is not None and y.grad is not None and torch.equal(x.grad, y.grad)


def test_mode_seeking_pooled_is_the_music_trainers_term_values_and_gradients():
    gen = torch.Generator().manual_seed(4)
    z = music_latent(8, gen)
    logits = torch.randn(8, 8, 64, 56, generator=gen)
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    shared, own = mode_seeking_penalty(torch.sigmoid(a), z, 4, pooled=True), music_term(z, torch.sigmoid(b), 4)
    assert torch.equal(shared, own)
    shared.backward()
    own.backward()
    assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("pooled", [False, True])
def test_mode_seeking_punishes_a_generator_that_ignores_z(pooled):
    gen = torch.Generator().manual_seed(0)
    z = music_latent(8, gen)
    varied = torch.rand(8, 8, 16, 12, generator=gen)
    ignores_z = varied[:1].expand(8, -1, -1, -1)
    collapsed, healthy = mode_seeking_penalty(ignores_z, z, 4, pooled), mode_seeking_penalty(varied, z, 4, pooled)
    assert collapsed == pytest.approx(1e5) and collapsed > 1000 * healthy


# --- the critics' minibatch spread -------------------------------------------------------------


def test_minibatch_spread_is_what_each_critic_computed_before():
    gen = torch.Generator().manual_seed(6)
    maps = torch.randn(8, 5, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)
    own = maps.view(4, -1, 5, 4, 4).std(dim=0, unbiased=False).mean(dim=(1, 2, 3)).repeat(4)  # the image critic's
    assert torch.equal(minibatch_spread(maps, 4), own)
    features = torch.randn(8, 7, generator=gen)
    own = features.view(4, -1, 7).std(dim=0, unbiased=False).mean(dim=1).repeat(4)  # the music critic's
    assert torch.equal(minibatch_spread(features, 4), own)


def test_minibatch_spread_groups_samples_i_apart_and_shrinks_the_group_to_divide_the_batch():
    # 4 does not divide 6, so the groups have 3 samples: 0, 2, 4 and 1, 3, 5
    same_in_groups = torch.tensor([0.0, 1.0]).repeat(3)[:, None].expand(6, 5)
    assert torch.equal(minibatch_spread(same_in_groups, 4), torch.zeros(6))
    varied = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    assert (minibatch_spread(varied, 4) > 0).all()
    assert torch.equal(minibatch_spread(varied, 1), torch.zeros(6))
