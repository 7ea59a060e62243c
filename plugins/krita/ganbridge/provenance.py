"""What the docker's provenance view says about a result: one short line per fact, from its recipe.

Plain Python, no Qt and no bridge: the view is redrawn whenever the selection or the active layer
changes, so it reads only the recipe the document already holds (the bridge's `item` reply, merged
in when it came), never a request. The label shows shortened lines; the tooltip the full text.
"""

from __future__ import annotations

import textwrap
from typing import Any

LINE_CHARS = 64  # a docker is narrow: longer facts (a model card's source list) are cut here
SHORT = 8  # characters of an item id or a hash, enough to tell them apart by eye
TIP_CHARS = 100  # Qt does not wrap a plain-text tooltip: a long licence would be one huge line
NOTHING = "Provenance: select a result thumbnail or a generated layer"
WAITING = "Recipe: waiting for the bridge…"


def shorten(text: str, width: int = LINE_CHARS) -> str:
    """One line of at most `width` characters, cut with an ellipsis at a word if there is one."""
    text = " ".join(str(text).split())  # a newline in a model card would break the line
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut[width // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;(") + "…"


def describe(recipe: dict[str, Any] | None) -> tuple[str, str]:
    """(label text, tooltip) for a layer's or thumbnail's recipe; None: nothing selected."""
    if not recipe:
        return NOTHING, ""
    full = facts(recipe, short=False)
    text = "\n".join(shorten(line) for line in facts(recipe, short=True))
    tip = "\n".join(textwrap.fill(line, TIP_CHARS, break_long_words=True) for line in full)
    return text, tip


def facts(recipe: dict[str, Any], short: bool) -> list[str]:
    """The lines, with short ids and hashes (`short`) or in full."""
    size = SHORT if short else None
    item = str(recipe.get("item", "?"))
    lines = [f"Result: {item[:size]}", f"Generator: {recipe.get('generator') or '?'}"]
    if "checkpoint" not in recipe:  # the layer is there; the bridge's `item` reply is on its way
        return [*lines, _start(recipe.get("origin"), recipe.get("seed")), WAITING]
    lines += _checkpoint(recipe.get("checkpoint"), size)
    lines += [_origin(recipe), _start(recipe.get("origin"), recipe.get("seed"))]
    return lines + _parents(recipe.get("parents"), size)


def _checkpoint(checkpoint: Any, size: int | None) -> list[str]:
    if not isinstance(checkpoint, dict):
        return ["Checkpoint: unknown"]
    sha = str(checkpoint.get("sha256") or "")
    out = [f"Checkpoint: {checkpoint.get('name', '?')} {sha[:size]}".rstrip()]
    data = checkpoint.get("data")
    if isinstance(data, dict):
        out += [f"Data: {data.get('source') or 'not stated'}", f"Licence: {data.get('license') or 'not stated'}"]
    else:  # the bridge names the training data only while that checkpoint is installed
        out.append("Data: unknown (checkpoint not installed on the bridge)")
    if checkpoint.get("data_sha256"):
        out.append(f"Data manifest: {str(checkpoint['data_sha256'])[:size]}")
    return out


def _origin(recipe: dict[str, Any]) -> str:
    origin = recipe.get("origin") or "generate"
    return f"Origin: {origin} ({recipe['how']})" if recipe.get("how") else f"Origin: {origin}"


def _start(origin: Any, seed: Any) -> str:
    """What the result is remade from. Only a generated result (or a fill) is remade from its seed:
    variations, blends and steered results start from a latent, which the recipe in the file keeps."""
    if origin in (None, "generate", "fill") and seed is not None:
        return f"Seed: {seed}"
    return "Seed: none, latent in the recipe"


def _parents(parents: Any, size: int | None) -> list[str]:
    if not isinstance(parents, list) or not parents:
        return []
    return ["Parents: " + ", ".join(str(p)[:size] for p in parents)]
