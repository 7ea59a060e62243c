"""This .blend's results and their recipes, kept in a text datablock so they save with the file.

Each entry: item id, generator, seed, params, checkpoint, origin, parents (the bridge's recipe, filled
in when the bridge answers the `item` request), plus where the result lives in this file
(material, images, and per packed image the SHA-256 of the bytes the bridge sent, so an export can
tell they are still the original file) and the artist's rating.
"""

from __future__ import annotations

import json
from typing import Any

import bpy

TEXT_NAME = "GAN Bridge history"
PAGE = 6  # results per page of the panel's history


def _text(create: bool) -> bpy.types.Text | None:
    text = bpy.data.texts.get(TEXT_NAME)
    if text is None and create:
        text = bpy.data.texts.new(TEXT_NAME)
        text.use_fake_user = True
    return text


def entries() -> list[dict[str, Any]]:
    text = _text(create=False)
    if text is None:
        return []
    try:
        data = json.loads(text.as_string() or "[]")
    except ValueError:
        return []  # someone edited it by hand; show nothing rather than fail the panel
    return [e for e in data if isinstance(e, dict) and "item" in e] if isinstance(data, list) else []


def _save(data: list[dict[str, Any]]) -> None:
    text = _text(create=True)
    text.from_string(json.dumps(data, indent=1))


def add(entry: dict[str, Any]) -> None:
    data = entries()
    data.append(entry)
    _save(data)


def find(item: str, data: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The entry of `item`; `data`: entries() already read (the panel reads them once per redraw)."""
    for e in entries() if data is None else data:
        if e["item"] == item:
            return e
    return None


def current_item(context: bpy.types.Context, data: list[dict[str, Any]] | None = None) -> str:
    """The result the artist is looking at: the active object's material, else the newest one."""
    obj = context.active_object
    mat = obj.active_material if obj is not None else None
    if mat is not None and mat.get("ganbridge_item"):
        return str(mat["ganbridge_item"])
    data = entries() if data is None else data
    return data[-1]["item"] if data else ""


def update(item: str, **fields: Any) -> bool:
    data = entries()
    for e in data:
        if e["item"] == item:
            e.update(fields)
            _save(data)
            return True
    return False


def pages(data: list[dict[str, Any]] | None = None) -> int:
    return max(1, -(-len(entries() if data is None else data) // PAGE))


def page(number: int, data: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Page `number` (0: the newest results) of the history, newest first."""
    newest = list(reversed(entries() if data is None else data))
    return newest[number * PAGE : (number + 1) * PAGE]
