"""Parameter presets, shared by the plugins: saved, loaded against the bridge's current schema."""

from __future__ import annotations

import pytest

from plugins.client import ganbridge_presets as gp
from plugins.client import ganbridge_schema as gs

SCHEMA = {
    "properties": {
        "model": {"enum": ["brick", "grass"], "default": "brick", "title": "Model"},
        "width": {"type": "integer", "minimum": 16, "maximum": 2048, "multipleOf": 16, "default": 256},
        "seed": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, {"type": "null"}], "default": None},
        "temperature": {"type": "number", "minimum": 0.1, "maximum": 2.0, "default": 1.0},
        "tileable": {"type": "boolean", "default": True},
        "maps": {"type": "array", "items": {"enum": ["height", "normal"]}, "default": []},
    }
}


def controls() -> list[gs.Control]:
    return gs.controls_from_schema(SCHEMA)[0]


def test_presets_round_trip_per_generator_and_sorted_by_name():
    values = {"model": "grass", "width": 512, "seed": None, "temperature": 0.7, "tileable": False, "maps": ["normal"]}
    presets = gp.save({}, "texture", "  soft   grass ", values)
    presets = gp.save(presets, "texture", "Brick", {"model": "brick"})
    presets = gp.save(presets, "image", "glyph", {"seed": 3})
    again = gp.decode(gp.encode(presets))
    assert gp.names(again, "texture") == ["Brick", "soft grass"] and gp.names(again, "image") == ["glyph"]
    loaded = gp.load(again, "texture", "soft grass", controls())
    assert loaded.values == values and loaded.message("soft grass") == "Preset 'soft grass' loaded"
    assert gp.names(gp.delete(again, "texture", "Brick"), "texture") == ["soft grass"]
    assert gp.names(gp.delete(again, "image", "glyph"), "image") == []


def test_saving_under_an_existing_name_replaces_it():
    presets = gp.save({}, "texture", "a", {"width": 32})
    presets = gp.save(presets, "texture", "a", {"width": 64})
    assert gp.load(presets, "texture", "a", controls()).values == {"width": 64}


def test_values_the_bridge_no_longer_accepts_are_left_as_they_are_and_named():
    stored = {"model": "gravel", "width": 100, "seed": 7, "temperature": None, "colour": "red", "maps": ["roughness"]}
    loaded = gp.load(gp.save({}, "texture", "old", stored), "texture", "old", controls())
    assert loaded.values == {"seed": 7}
    text = loaded.message("old")
    for word in ("model ('gravel'", "width (100", "temperature (needs a value)", "colour (no longer", "maps (["):
        assert word in text, text


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_a_bad_name_gets_one_clear_error(name):
    with pytest.raises(gp.PresetError, match="name"):
        gp.save({}, "texture", name, {"width": 32})


def test_unknown_presets_and_damaged_settings():
    with pytest.raises(gp.PresetError, match="no preset 'missing' for texture"):
        gp.load({}, "texture", "missing", controls())
    for text in (None, "", "not json", "[]", '{"version": 99, "presets": {}}', '{"version": 1, "presets": 3}'):
        assert gp.decode(text) == {}
    assert gp.decode('{"version": 1, "presets": {"texture": {"a": 1, "b": {"width": 32}}}}') == {
        "texture": {"b": {"width": 32}}
    }
