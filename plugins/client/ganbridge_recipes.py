"""A result's recipe in words: a label that says what it is, and its provenance, one fact a line.

Pure Python, shared by every plugin (each build copies it in), so a result is called the same in
Blender and in Krita. Everything here reads only the recipe a host already keeps (the bridge's
`item` reply, filed when it came), never the bridge: panels and dockers redraw often.
"""

from __future__ import annotations

from typing import Any

SHORT = 8  # characters of an item id or a hash, enough to tell them apart by eye
WAITING = "Recipe: waiting for the bridge…"
ORIGIN_WORDS = {
    "variations": "variation of",
    "interpolate": "blend of",
    "steer": "steered from",
    "regenerate": "made again from",
    "live": "live from",  # a live session's committed state
}
SEEDED = (None, "generate", "fill")  # origins remade from their seed alone


def origin_text(recipe: dict[str, Any]) -> str:
    """What made a result, in a few words: the seed of a generated result or a fill, else how it
    came from which results (a variation's or a steered result's seed only drew the change)."""
    origin = recipe.get("origin") or "generate"
    if origin in SEEDED and recipe.get("seed") is not None:
        return f"seed {recipe['seed']}"
    parents = " + ".join(str(p)[:SHORT] for p in recipe.get("parents") or [])
    if origin not in ORIGIN_WORDS:
        return f"{origin} {str(recipe.get('item', ''))[:SHORT]}".strip()
    if not parents:
        return "steered" if origin == "steer" else ORIGIN_WORDS[origin].split()[0]
    return f"{ORIGIN_WORDS[origin]} {parents}"


def result_label(recipe: dict[str, Any]) -> str:
    """Generator, model and what made it: "texture brick seed 11", "image variation of 3f2a1c9b"."""
    params = recipe.get("params") or {}
    parts = [str(recipe.get("generator") or "gan")]
    if params.get("model"):
        parts.append(str(params["model"]))
    parts.append(origin_text(recipe))
    return " ".join(parts)


def shorten(text: str, width: int) -> str:
    """One line of at most `width` characters, cut with an ellipsis at a word if there is one."""
    text = " ".join(str(text).split())  # a newline in a model card would break the line
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut[width // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;(") + "…"


def provenance(recipe: dict[str, Any], short: bool) -> list[str]:
    """The provenance lines, with short ids and hashes (`short`) or in full. Without the bridge's
    checkpoint in the recipe (its `item` reply has not come yet) the lines say so."""
    size = SHORT if short else None
    item = str(recipe.get("item", "?"))
    lines = [f"Result: {item[:size]}", f"Generator: {recipe.get('generator') or '?'}"]
    if "checkpoint" not in recipe:
        return [*lines, _start(recipe), WAITING]
    lines += _checkpoint(recipe.get("checkpoint"), size)
    lines += [_origin(recipe), _start(recipe)]
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


def _start(recipe: dict[str, Any]) -> str:
    """What the result is remade from. Only a generated result (or a fill) is remade from its seed:
    variations, blends and steered results start from a latent, which the recipe keeps."""
    if recipe.get("origin") in SEEDED and recipe.get("seed") is not None:
        return f"Seed: {recipe['seed']}"
    return "Seed: none, latent in the recipe"


def _parents(parents: Any, size: int | None) -> list[str]:
    if not isinstance(parents, list) or not parents:
        return []
    return ["Parents: " + ", ".join(str(p)[:size] for p in parents)]
