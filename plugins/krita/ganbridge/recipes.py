"""Recipes of generated layers, stored in the Krita document as one annotation.

Krita saves annotations inside the .kra, and layer unique ids survive save and reload, so history
is keyed by layer id. The format is versioned JSON:
{"format": "ganbridge-recipes", "version": 1, "layers": {layer_id: recipe}, "session": id}.
`session` (optional: older documents lack it) is the document's rating session on the bridge, so
its likes keep steering it after Krita restarts.
"""

from __future__ import annotations

import json
from typing import Any

from . import ganbridge_recipes as gr

ANNOTATION = "ganbridge"
DESCRIPTION = "GAN Bridge recipes of generated layers"
FORMAT = "ganbridge-recipes"
VERSION = 1


def encode(layers: dict[str, dict[str, Any]], session: str | None = None) -> bytes:
    obj: dict[str, Any] = {"format": FORMAT, "version": VERSION, "layers": layers}
    if session:
        obj["session"] = session
    return json.dumps(obj, sort_keys=True).encode()


def _read(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return obj if isinstance(obj, dict) and obj.get("format") == FORMAT else {}


def decode(data: bytes | None) -> dict[str, dict[str, Any]]:
    """The recipes in an annotation; anything unreadable or foreign reads as none (never raises)."""
    layers = _read(data).get("layers")
    if not isinstance(layers, dict):
        return {}
    return {str(k): v for k, v in layers.items() if isinstance(v, dict) and "item" in v}


def decode_session(data: bytes | None) -> str | None:
    """The document's session in an annotation, or None (never raises)."""
    session = _read(data).get("session")
    return session if isinstance(session, str) and 1 <= len(session) <= 128 else None


def layer_name(recipe: dict[str, Any], fill: bool = False) -> str:
    """A layer name a painter can read: generator, model, what made it (as Blender labels it too),
    and "fill" for a result tiled over a selection."""
    return "GAN " + gr.result_label(recipe) + (" fill" if fill else "")
