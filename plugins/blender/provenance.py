"""What the Provenance box says about a result: the shared provenance lines (ganbridge_recipes)
from its history entry, each cut to one label's width. Plain Python, no bpy and no bridge: the
panel redraws often, so the lines come from what the history already holds, never a request.
"""

from __future__ import annotations

from typing import Any

from . import ganbridge_recipes as gr

LINE_CHARS = 42  # a Blender label is one line; the N-panel shows about this many characters


def recipe_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The bridge's recipe filed in the entry, or what the entry itself knows until it comes."""
    recipe = entry.get("recipe")
    if isinstance(recipe, dict):
        return {"item": entry["item"], "generator": entry.get("generator"), **recipe}
    return {
        "item": entry["item"],
        "generator": entry.get("generator"),
        "seed": entry.get("seed"),
        "origin": entry.get("job"),
    }


def lines(entry: dict[str, Any]) -> list[str]:
    """The Provenance box's lines for one history entry."""
    return [gr.shorten(line, LINE_CHARS) for line in gr.provenance(recipe_of(entry), short=True)]


def label(entry: dict[str, Any]) -> str:
    """What a history row calls the result: "texture brick seed 11", "texture blend of 3f2a + 8b7c"."""
    return gr.result_label(recipe_of(entry))
