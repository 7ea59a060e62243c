"""The plugins' pure-Python parts, in plain Python: schema -> controls, recipe storage, pixel bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plugins.client import ganbridge_schema as gs
from tests.plugins.krita_support import krita_module

pixels = krita_module("pixels")
recipes = krita_module("recipes")


# --- schema -> controls ---------------------------------------------------------------------------


def test_texture_schema_becomes_controls(shared_core):
    schema = shared_core.generators["texture"].info()["params_schema"]
    controls, skipped = gs.controls_from_schema(schema)
    by_name = {c.name: c for c in controls}
    assert not skipped
    assert [c.name for c in controls] == list(schema["properties"])
    assert by_name["model"].kind == gs.CHOICE and by_name["model"].choices == schema["properties"]["model"]["enum"]
    width = by_name["width"]
    assert (width.kind, width.minimum, width.maximum, width.step, width.default) == (gs.INT, 32, 2048, 1, 512)
    assert by_name["temperature"].kind == gs.FLOAT and by_name["tileable"].kind == gs.BOOL
    assert by_name["maps"].kind == gs.MULTI and by_name["maps"].choices == ["height", "normal", "roughness", "ao"]
    seed = by_name["seed"]
    assert seed.kind == gs.INT and seed.nullable and not seed.default_set


def test_params_from_values_round_clamp_and_order(shared_core):
    schema = shared_core.generators["texture"].info()["params_schema"]
    controls, _ = gs.controls_from_schema(schema)
    values = {"model": "grass", "width": 1001, "height": 5000, "seed": None, "tileable": 1, "temperature": 9.0,
              "maps": {"normal", "height", "bogus"}}  # fmt: skip
    params = gs.params_from_values(controls, values)
    assert params == {"model": "grass", "width": 1001, "height": 2048, "seed": None, "tileable": True,
                      "temperature": 2.0, "maps": ["height", "normal"]}  # fmt: skip
    # What the controls produce, the bridge accepts.
    shared_core.generators["texture"].params_model.model_validate(params)


def test_a_one_value_literal_is_a_choice():
    controls, _ = gs.controls_from_schema(
        {"properties": {"model": {"const": "emoji", "default": "emoji", "type": "string"}}}
    )
    assert controls[0].kind == gs.CHOICE and controls[0].choices == ["emoji"]


def test_unknown_schema_shapes_are_skipped_not_guessed():
    schema = {"properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}, "blob": {"type": "object"}}}
    controls, skipped = gs.controls_from_schema(schema)
    assert [c.name for c in controls] == ["n"] and skipped == ["blob"]
    assert gs.params_from_values(controls, {"n": 0, "blob": {}}) == {"n": 1}


def test_fit_size_snaps_canvas_sizes_to_the_generator():
    controls, _ = gs.controls_from_schema(
        {"properties": {"width": {"type": "integer", "minimum": 32, "maximum": 2048, "multipleOf": 16},
                        "height": {"type": "integer", "minimum": 32, "maximum": 2048, "multipleOf": 16}}}
    )  # fmt: skip
    assert gs.fit_size(controls, 1920, 1080) == {"width": 1920, "height": 1088}
    assert gs.fit_size(controls, 5000, 10) == {"width": 2048, "height": 32}


# --- recipes stored in a Krita document --------------------------------------------------------------


def test_recipe_annotation_round_trip():
    stored = {"{abc}": {"item": "i1", "generator": "texture", "seed": 3, "params": {"model": "brick"}}}
    data = recipes.encode(stored)
    assert json.loads(data)["format"] == "ganbridge-recipes" and json.loads(data)["version"] == 1
    assert recipes.decode(data) == stored


def test_the_document_session_rides_along_with_the_recipes():
    stored = {"{abc}": {"item": "i1", "generator": "texture"}}
    data = recipes.encode(stored, "doc-session")
    assert recipes.decode(data) == stored and recipes.decode_session(data) == "doc-session"
    assert recipes.decode_session(recipes.encode(stored)) is None  # a document from before sessions
    assert recipes.decode_session(recipes.encode({}, "s")) == "s"  # a session before any layer
    too_long = json.dumps({"format": "ganbridge-recipes", "layers": {}, "session": "x" * 129}).encode()
    assert recipes.decode_session(too_long) is None


@pytest.mark.parametrize("data", [None, b"", b"not json", b"[1,2]", b'{"format": "other", "layers": {}}', b"\xff\xfe"])
def test_foreign_or_broken_annotations_read_as_empty(data):
    assert recipes.decode(data) == {} and recipes.decode_session(data) is None


def test_layer_names_say_what_made_them():
    assert (
        recipes.layer_name({"generator": "texture", "seed": 7, "params": {"model": "brick"}})
        == "GAN texture brick seed 7"
    )
    assert recipes.layer_name({"generator": "texture", "seed": None, "origin": "interpolate"}) == "GAN texture blend"
    two = {"generator": "texture", "seed": None, "origin": "interpolate", "parents": ["a" * 16, "b" * 16]}
    assert recipes.layer_name(two) == "GAN texture blend of aaaaaaaa + bbbbbbbb"
    # a variation's or a steered result's seed drew the change: it does not make the result
    varied = {"generator": "image", "seed": 3, "origin": "variations", "parents": ["c" * 16]}
    assert recipes.layer_name(varied) == "GAN image variation of cccccccc"
    assert recipes.layer_name({"generator": "image", "seed": 3, "origin": "steer"}) == "GAN image steered"
    assert recipes.layer_name({"generator": "image", "seed": 3, "origin": "fill"}) == "GAN image seed 3"


# --- pixel bytes ----------------------------------------------------------------------------------------


def test_tile_lines_up_with_the_canvas_grid():
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    out = pixels.tile(texture.tobytes(), 7, 5, 23, 11, x0=9, y0=3)
    got = np.frombuffer(out, dtype=np.uint8).reshape(11, 23, 4)
    for y in range(11):
        for x in range(23):
            assert (got[y, x] == texture[(y + 3) % 5, (x + 9) % 7]).all()


def test_a_mask_becomes_the_alpha_of_opaque_pixels_with_its_soft_edges():
    opaque = bytes([10, 20, 30, 255]) * 3
    assert pixels.is_opaque(opaque) and not pixels.is_opaque(bytes([1, 1, 1, 100]))
    masked = pixels.mask_as_alpha(opaque, bytes([0, 128, 255]))
    assert masked == bytes([10, 20, 30, 0, 10, 20, 30, 128, 10, 20, 30, 255])
    with pytest.raises(ValueError):
        pixels.mask_as_alpha(opaque, b"\x00")
