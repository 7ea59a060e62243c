"""What the Provenance box says about a result: one short line per fact, from its history entry.

Plain Python, no bpy and no bridge: the panel redraws often, so the lines come from what the history
already holds (the bridge's recipe, filed when its `item` reply came), never from a request.
"""

from __future__ import annotations

from typing import Any

LINE_CHARS = 42  # a Blender label is one line; the N-panel shows about this many characters
SHORT = 8  # characters of an item id or a hash, enough to tell them apart by eye


def shorten(text: str, width: int = LINE_CHARS) -> str:
    """One line of at most `width` characters, cut with an ellipsis."""
    text = " ".join(str(text).split())  # a newline in a model card would break the label
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def lines(entry: dict[str, Any]) -> list[str]:
    """The Provenance box's lines for one history entry."""
    recipe = entry.get("recipe")
    head = [f"Item: {entry['item']}", f"Generator: {entry.get('generator') or '?'}"]
    if not isinstance(recipe, dict):
        start = _start(entry.get("job"), entry.get("seed"))
        return [shorten(t) for t in (*head, start, "Recipe: not received from the bridge yet")]
    start = _start(recipe.get("origin"), recipe.get("seed"))
    checkpoint = _checkpoint(recipe.get("checkpoint"))
    return [shorten(t) for t in (*head, *checkpoint, _origin(recipe), start)] + _parents(recipe.get("parents"))


def _checkpoint(checkpoint: Any) -> list[str]:
    if not isinstance(checkpoint, dict):
        return ["Checkpoint: unknown"]
    out = [f"Checkpoint: {checkpoint.get('name', '?')} {str(checkpoint.get('sha256', ''))[:SHORT]}".rstrip()]
    data = checkpoint.get("data")
    if isinstance(data, dict):
        out += [f"Data: {data.get('source') or 'not stated'}", f"Licence: {data.get('license') or 'not stated'}"]
    else:  # the bridge names the data only while the checkpoint is installed
        out.append("Data: unknown (checkpoint not on the bridge)")
    if checkpoint.get("data_sha256"):
        out.append(f"Data manifest: {str(checkpoint['data_sha256'])[:SHORT]}")
    return out


def _origin(recipe: dict[str, Any]) -> str:
    origin = recipe.get("origin") or "generate"
    return f"Origin: {origin} ({recipe['how']})" if recipe.get("how") else f"Origin: {origin}"


def _start(origin: Any, seed: Any) -> str:
    """What the result is remade from. Only a generated result is remade from its seed: variations,
    blends and steered results start from a latent, which the recipe in the file keeps."""
    if origin in (None, "generate") and seed is not None:
        return f"Seed: {seed}"
    return "Seed: none, latent in the recipe"


def _parents(parents: Any) -> list[str]:
    if not isinstance(parents, list) or not parents:
        return []
    return [shorten("Parents: " + ", ".join(str(p)[:SHORT] for p in parents))]
