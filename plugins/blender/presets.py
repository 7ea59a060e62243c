"""Where Blender keeps the artist's parameter presets: one JSON file in Blender's user config
folder (`ganbridge/presets.json`), so they are there in every .blend and after a restart.

What a preset holds and how it is checked on load is the shared `ganbridge_presets` module."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy

from . import ganbridge_presets as gp


def path() -> Path:
    return Path(bpy.utils.user_resource("CONFIG", path="ganbridge", create=True)) / "presets.json"


def read() -> gp.Presets:
    try:
        return gp.decode(path().read_text(encoding="utf-8"))
    except OSError:  # none saved yet, or unreadable: no presets rather than a broken panel
        return {}


def write(presets: gp.Presets) -> None:
    """All or nothing: a temporary file renamed over the old one."""
    target = path()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".presets-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(gp.encode(presets))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
