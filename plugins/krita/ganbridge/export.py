"""Exporting a result: the file exactly as the bridge stored it, written all or nothing.

Plain Python, no Qt. The bridge's PNG carries the recipe (iTXt chunk `ganbridge`) and signed C2PA
content credentials; any re-encoding (Krita's own PNG export) would drop both, so the bytes from the
`item` reply (`data: true`) are written unchanged. A texture's maps go beside it as NAME_height.png.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

from . import ganbridge_client as gc

SUFFIX = ".png"


class ExportError(Exception):
    """An export that cannot be done; the message is for the painter."""


def with_suffix(path: str) -> str:
    """The path the painter chose, ending in .png (the file dialog does not always add it)."""
    return path if path.lower().endswith(SUFFIX) else path + SUFFIX


def default_name(layer_name: str) -> str:
    """A file name from a layer name: characters that some file systems refuse become '_'."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", layer_name).strip(" .") or "ganbridge-result"
    return name + SUFFIX


def map_path(path: str, name: str) -> str:
    """Where a map goes: beside the image, e.g. brick.png -> brick_height.png."""
    stem = path[: -len(SUFFIX)] if path.lower().endswith(SUFFIX) else path
    return f"{stem}_{name}{SUFFIX}"


def _decode(b64: Any, what: str) -> bytes:
    try:
        data = gc.payload(b64)
    except ValueError:
        raise ExportError(f"the bridge sent {what} that is not valid base64") from None
    if not data.startswith(b"\x89PNG"):
        raise ExportError(f"the bridge sent {what} that is not a PNG")
    return data


def files_of(reply: dict[str, Any], path: str) -> list[tuple[str, bytes]]:
    """(target path, bytes) for the image and each of its maps, from an `item` reply with data."""
    if reply.get("format") != "png" or "data" not in reply:
        raise ExportError(f"the result is a {reply.get('format') or 'file without data'}, not a PNG image")
    files = [(path, _decode(reply["data"], "an image"))]
    maps = reply.get("maps") or {}
    for name in sorted(maps):
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))  # a map name is the bridge's, not a path
        files.append((map_path(path, safe), _decode(maps[name], f"a {safe} map")))
    return files


def write_all(files: list[tuple[str, bytes]]) -> None:
    """Write every file or none: each goes to a temporary file beside its target first, and only
    when all are written are they renamed into place (a rename is atomic on one file system). If a
    rename still fails, the files already renamed are removed again, so no image lacks its maps."""
    temps: list[str] = []
    placed: list[str] = []
    target = files[0][0]  # the file being written when something fails, for the message
    try:
        for target, data in files:
            tmp = f"{target}.{secrets.token_hex(4)}.part"
            # os.open with 0o666, not mkstemp: mkstemp's 0600 would make the export private to this
            # user; this way the umask decides, as for any file Krita saves. O_BINARY: on Windows a
            # text-mode descriptor would turn the PNG's \n bytes into \r\n.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        for (target, _), tmp in zip(files, temps):
            os.replace(tmp, target)
            placed.append(target)
    except OSError as e:
        _remove([*temps, *placed])
        raise ExportError(f"cannot write {target}: {e.strerror or e}") from None


def _remove(paths: list[str]) -> None:
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass  # a temporary file already renamed, or one that was never made
