"""Resampling a seamless texture to any size with wrap-around (generators/texture/resample.py)."""

from __future__ import annotations

import numpy as np
import pytest

from ganbridge.generators.texture.resample import _resample_axis, cubic_taps, resize


def test_the_same_size_comes_back_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert resize(image, 48, 64) is image


@pytest.mark.parametrize(("n", "m"), [(48, 33), (304, 300), (784, 777), (32, 47)])
def test_each_output_pixel_is_a_normalised_mix_of_its_wrapped_neighbours(n, m):
    indices, weights = cubic_taps(n, m)
    assert indices.min() >= 0 and indices.max() < n
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    # the first and last output pixels reach across the wrap, as any neighbours do
    assert (n - 1) in indices[0] and 0 in indices[-1]


def test_a_flat_image_stays_flat_and_a_wave_keeps_its_shape():
    flat = np.full((48, 64, 3), 77, np.uint8)
    assert (resize(flat, 33, 47) == 77).all()
    n, m = 48, 33
    wave = 127.5 + 100 * np.sin(2 * np.pi * 3 * np.arange(n) / n)
    out = _resample_axis(wave[:, None].astype(np.float32), m, 0)[:, 0]
    centres = (np.arange(m) + 0.5) * n / m - 0.5
    assert np.abs(out - (127.5 + 100 * np.sin(2 * np.pi * 3 * centres / n))).max() < 3


def test_rolling_the_input_by_a_period_of_the_ratio_rolls_the_output():
    """784 -> 777 is 112 -> 111: a roll by 112 input pixels is one by 111 output pixels, wrap
    included (a resampler that clamped or mirrored at the edges would break this)."""
    signal = np.random.default_rng(1).normal(size=(784, 5)).astype(np.float32)
    out = _resample_axis(signal, 777, 0)
    rolled = _resample_axis(np.roll(signal, 112, axis=0), 777, 0)
    assert np.allclose(np.roll(out, 111, axis=0), rolled, atol=1e-4)


def test_shrinking_filters_instead_of_aliasing():
    """A pattern finer than the smaller grid can hold (2 px stripes, shrunk 1.45x) is mostly
    averaged away rather than turned into a coarse false pattern."""
    stripes = np.tile(np.array([0, 255], np.uint8).repeat(1), 24)[:, None, None].repeat(4, 1).repeat(3, 2)
    out = resize(stripes, 33, 4).astype(float)
    assert out.std() < 0.25 * stripes.astype(float).std()


def test_without_wrap_the_edges_are_not_blended_into_each_other():
    """A texture that does not tile: its left edge must not take colour from its right edge."""
    halves = np.zeros((8, 64, 3), np.uint8)
    halves[:, 32:] = 255
    wrapped, held = resize(halves, 8, 100), resize(halves, 8, 100, wrap=False)
    assert wrapped[:, 0].mean() > 0 and wrapped[:, -1].mean() < 255  # the wrap reaches across
    assert (held[:, :40] == 0).all() and (held[:, -40:] == 255).all()
    indices, _ = cubic_taps(64, 100, wrap=False)
    assert indices.min() == 0 and indices.max() == 63 and 63 not in indices[0]
