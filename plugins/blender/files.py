"""Files written whole: all of a set or none, never half of one. Plain Python (no bpy), for
exports, images saved beside the .blend (from the worker thread too) and the presets file."""

from __future__ import annotations

import os
import uuid
from contextlib import suppress


class WriteError(Exception):
    """A file that could not be written; nothing of the set was left behind. For the artist."""


def write_all(files: dict[str, bytes], first: list[str] | None = None) -> None:
    """Write path -> bytes: each to a temporary file beside its target, and only when every one is
    complete rename them over the targets (a rename does not half-write), those in `first` first."""
    temps: dict[str, str] = {}
    try:
        for target, data in files.items():
            temps[target] = f"{target}.{uuid.uuid4().hex[:8]}.part"
            _write_new(temps[target], target, data)
        for target in sorted(files, key=lambda t: t not in (first or [])):
            _rename(temps.pop(target), target)
    finally:
        for temp in temps.values():
            with suppress(OSError):
                os.remove(temp)


def remove_all(paths: list[str]) -> None:
    for path in paths:
        with suppress(OSError):
            os.remove(path)


def _write_new(temp: str, target: str, data: bytes) -> None:
    try:
        with open(temp, "xb") as f:  # a new file with the user's usual permissions (not mkstemp's 0600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise WriteError(f"could not write {target}: {e.strerror or e}") from None


def _rename(temp: str, target: str) -> None:
    try:
        os.replace(temp, target)
    except OSError as e:
        raise WriteError(f"could not write {target}: {e.strerror or e}") from None
