"""Export a result as the bridge made it: its PNG byte for byte, each map beside it (NAME_ao.png).

The bridge's file carries the recipe (an iTXt chunk) and signed C2PA credentials. Blender's own
Image > Save As decodes the pixels and encodes a new PNG, which drops both, so Export writes the
original bytes instead: from the packed images while they are unchanged, else from the bridge
(`item` with `data: true`, answered through connection.drain()).
"""

from __future__ import annotations

import os
import re
from typing import Any

import bpy

from . import ganbridge_client as gc
from .files import WriteError, write_all
from .materials import PNG_SIGNATURE, original_png, sha256

IMAGE = ""  # key of the result's own image among its files; the maps are keyed by their names


class ExportError(Exception):
    """An export that cannot be done; the message is for the artist."""


def default_name(item: str, entry: dict[str, Any] | None) -> str:
    """What the file browser proposes, like the names the bridge and music results use."""
    generator = (entry or {}).get("generator") or "gan"
    return re.sub(r"[^\w.-]", "_", f"{generator}-{item}") + ".png"


def target_path(filepath: str) -> str:
    """The absolute .png path to write; `//` paths are relative to the .blend, as in Blender."""
    if not filepath or not os.path.basename(filepath):
        raise ExportError("choose a file name to export to")
    path = bpy.path.abspath(filepath)
    return path if path.lower().endswith(".png") else path + ".png"


def map_path(path: str, name: str) -> str:
    """A map's file beside the image: brick.png -> brick_height.png (as `ganbridge generate` names them)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}_{name}{ext}"


def packed_files(entry: dict[str, Any] | None) -> tuple[dict[str, bytes] | None, str]:
    """The original files from this .blend's packed images, or (None, why they cannot be used)."""
    if entry is None:
        return None, "that result is not in this file's history"
    if entry.get("format") not in (None, "png"):
        raise ExportError(f"only image results export as PNG; this {entry.get('format')} result is a file already")
    if "sha256" not in entry:
        return None, "this file does not record which bytes the bridge sent"
    wanted = {IMAGE: ((entry.get("images") or [""])[0], entry["sha256"])}
    wanted.update({name: (m.get("image", ""), m.get("sha256")) for name, m in (entry.get("maps") or {}).items()})
    files = {}
    for key, (image_name, digest) in wanted.items():
        img = bpy.data.images.get(image_name)
        data = original_png(img)
        if data is None:
            return None, f"the image {image_name!r} is no longer packed in this file or beside it"
        if sha256(data) != digest:
            return None, f"the image {image_name!r} was edited and repacked in Blender"
        files[key] = data
    return files, ""


def edited_in_blender(entry: dict[str, Any]) -> bool:
    """Pixels painted in Blender but not repacked: the packed file is still the original."""
    names = [(entry.get("images") or [""])[0], *(m.get("image", "") for m in (entry.get("maps") or {}).values())]
    return any(img is not None and img.is_dirty for img in map(bpy.data.images.get, names))


def files_from_reply(msg: dict[str, Any]) -> dict[str, bytes]:
    """The bridge's `item` reply with `data: true` -> {IMAGE: png, map name: png}, each checked."""
    if msg.get("format") != "png":
        raise ExportError(f"the bridge sent a {msg.get('format') or 'missing'} file, not a PNG")
    files = {IMAGE: _png(msg.get("data"), "image")}
    for name, data in (msg.get("maps") or {}).items():
        files[name] = _png(data, f"{name} map")
    return files


def _png(b64: Any, what: str) -> bytes:
    try:
        data = gc.payload(b64 or "")
    except ValueError:
        raise ExportError(f"the {what} from the bridge is not valid base64") from None
    if not data.startswith(PNG_SIGNATURE):
        raise ExportError(f"the {what} from the bridge is not a PNG image")
    return data


def write(path: str, files: dict[str, bytes]) -> list[str]:
    """Write all files or none (files.write_all), the image last: it is what the artist looks for.
    Returns the paths, the image first."""
    targets = {key: path if key == IMAGE else map_path(path, key) for key in files}
    maps = [targets[key] for key in files if key != IMAGE]
    try:
        write_all({targets[key]: data for key, data in files.items()}, first=maps)
    except WriteError as e:
        raise ExportError(str(e)) from None
    return [targets[key] for key in sorted(files, key=lambda k: k != IMAGE)]


def describe(paths: list[str]) -> str:
    """The report after a successful export."""
    maps = [os.path.basename(p) for p in paths[1:]]
    listed = f"{', '.join(maps[:-1])} and {maps[-1]}" if len(maps) > 1 else "".join(maps)
    extra = f", with {listed} beside it" if maps else ""
    return f"Exported {paths[0]}{extra} (recipe and content credentials inside)"
