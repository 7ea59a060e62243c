"""What every generator offers the bridge (generators/base.py): torch-free to import, typed params
per kind, settings the bridge hands on, and latents drawn the same way everywhere."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ganbridge.core.registry import load_generators
from ganbridge.generators.base import draw_latent, seeded_rng
from ganbridge.generators.image.adapter import ImageParams
from ganbridge.generators.music.adapter import MusicGenerator, MusicParams
from ganbridge.generators.texture.adapter import TextureParams


@pytest.fixture(scope="module")
def generators():
    return load_generators(None, "cpu")


def test_the_bridge_side_of_generators_imports_without_torch():
    code = (
        "import sys, ganbridge.generators.base, ganbridge.generators.latent, ganbridge.generators.checkpoint\n"
        "assert 'torch' not in sys.modules and 'safetensors.torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("kind", "static", "fixed"),
    [
        ("texture", TextureParams, ["model", "width", "height", "seed", "tileable", "temperature", "maps"]),
        ("image", ImageParams, ["model", "seed", "truncation", "size", "upscale", "background"]),
        ("music", MusicParams, ["model", "bars", "tempo", "key", "seed", "temperature", "density", "tracks",
                                "program", "format"]),
    ],
)  # fmt: skip
def test_each_kinds_params_are_its_static_class_with_the_installed_models_added(generators, kind, static, fixed):
    model = generators[kind].params_model
    assert issubclass(model, static)
    assert list(model.model_fields)[: len(fixed)] == fixed  # the installed-model fields keep their places
    schema = model.model_json_schema()
    choice = schema["properties"]["model"]  # one installed model is a const, several an enum
    assert choice.get("enum", [choice.get("const")]) == [c.name for c in generators[kind].checkpoints()]
    assert schema["additionalProperties"] is False and "description" not in schema


def test_music_validators_of_the_static_class_apply_to_the_installed_voices(generators):
    params = generators["music"].params_model
    with pytest.raises(ValueError, match="each track may be named once"):
        params.model_validate({"tracks": ["bass", "bass"]})
    with pytest.raises(ValueError, match="0-127"):
        params.model_validate({"program": [0, 0, 0, 128]})


def test_configure_hands_the_soundfont_to_the_generators_that_use_it(generators, tmp_path):
    font = tmp_path / "gm.sf2"
    for gen in generators.values():
        gen.configure(soundfont=font)  # every kind takes it; only music keeps it
    music = generators["music"]
    assert isinstance(music, MusicGenerator) and music.soundfont == font
    music.configure()
    assert music.soundfont is None


def test_random_latent_is_drawn_part_by_part_in_sorted_order(generators):
    gen = generators["music"]
    params = gen.params_model.model_validate({"bars": 2})
    shapes = gen.latent_shapes(params)
    assert list(shapes) != sorted(shapes)  # listed unsorted, drawn sorted
    latent = gen.random_latent(params, 17, draw=1)
    expected = draw_latent(dict(sorted(shapes.items())), seeded_rng(17))
    assert list(latent) == sorted(shapes)
    assert all(np.array_equal(latent[k], expected[k]) and latent[k].dtype == np.float32 for k in shapes)
    # draw 2 (today's) draws the same numbers, then moves each discrete part into equal bins
    now, discrete = gen.random_latent(params, 17), gen.discrete_parts(params)
    assert set(discrete) == {"mode", "tonic"}
    for k in shapes:
        want = discrete[k].uniform(expected[k]) if k in discrete else expected[k]
        assert np.array_equal(now[k], want) and now[k].dtype == np.float32, k
