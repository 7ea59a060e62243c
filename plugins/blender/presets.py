"""Where Blender keeps the artist's parameter presets: one JSON file in Blender's user config
folder (`ganbridge/presets.json`), so they are there in every .blend and after a restart.

What a preset holds and how it is checked on load is the shared `ganbridge_presets` module."""

from __future__ import annotations

from pathlib import Path

import bpy

from . import ganbridge_presets as gp
from .files import WriteError, write_all


def path() -> Path:
    return Path(bpy.utils.user_resource("CONFIG", path="ganbridge", create=True)) / "presets.json"


def read() -> gp.Presets:
    try:
        return gp.decode(path().read_text(encoding="utf-8"))
    except OSError:  # none saved yet, or unreadable: no presets rather than a broken panel
        return {}


def write(presets: gp.Presets) -> None:
    """All or nothing (files.write_all): a failed write leaves the old presets as they were."""
    try:
        write_all({str(path()): gp.encode(presets).encode("utf-8")})
    except WriteError as e:
        raise gp.PresetError(f"presets not saved: {e}") from None
