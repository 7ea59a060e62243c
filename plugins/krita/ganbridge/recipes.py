"""Recipes of generated layers, stored in the Krita document as one annotation.

Krita saves annotations inside the .kra, and layer unique ids survive save and reload, so history
is keyed by layer id. The format is versioned JSON:
{"format": "ganbridge-recipes", "version": 1, "layers": {layer_id: recipe}}.
"""

from __future__ import annotations

import json
from typing import Any

ANNOTATION = "ganbridge"
DESCRIPTION = "GAN Bridge recipes of generated layers"
FORMAT = "ganbridge-recipes"
VERSION = 1


def encode(layers: dict[str, dict[str, Any]]) -> bytes:
    return json.dumps({"format": FORMAT, "version": VERSION, "layers": layers}, sort_keys=True).encode()


def decode(data: bytes | None) -> dict[str, dict[str, Any]]:
    """The recipes in an annotation; anything unreadable or foreign reads as none (never raises)."""
    if not data:
        return {}
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("layers"), dict):
        return {}
    return {str(k): v for k, v in obj["layers"].items() if isinstance(v, dict) and "item" in v}


def layer_name(recipe: dict[str, Any]) -> str:
    """A layer name a painter can read: generator, model, seed."""
    params = recipe.get("params") or {}
    parts = [str(recipe.get("generator", "gan"))]
    if params.get("model"):
        parts.append(str(params["model"]))
    if recipe.get("seed") is not None:
        parts.append(f"seed {recipe['seed']}")
    else:
        parts.append(str(recipe.get("origin") or recipe.get("item", "")))
    return "GAN " + " ".join(parts)
