"""Parameter presets: named sets of one generator's parameters that an artist saves and loads.

Pure Python, shared by every plugin (each build copies it in); each host keeps the encoded text
where its user settings live (Krita's settings, a file in Blender's user config folder). A preset
holds each control's value, or None for a control left to the bridge (a tick box off). Loading
checks every value against the generator's controls as the bridge describes them now, so a preset
saved before a bridge update never puts a value into a form that the bridge would refuse: what no
longer fits is left as it is and named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import ganbridge_schema as gs

VERSION = 1
MAX_NAME = 64

Presets = dict[str, dict[str, dict[str, Any]]]  # generator -> preset name -> control name -> value


class PresetError(ValueError):
    """A name or value that cannot be saved; the message is for the artist."""


def decode(text: str | None) -> Presets:
    """The stored presets, or none for text that is missing or not ours (never an exception:
    a damaged settings entry must not stop the plugin from starting)."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("presets"), dict):
        return {}
    out: Presets = {}
    for generator, presets in data["presets"].items():
        if isinstance(presets, dict):
            kept = {n: v for n, v in presets.items() if isinstance(n, str) and isinstance(v, dict)}
            if kept:
                out[str(generator)] = kept
    return out


def encode(presets: Presets) -> str:
    return json.dumps({"version": VERSION, "presets": presets}, sort_keys=True)


def names(presets: Presets, generator: str) -> list[str]:
    return sorted(presets.get(generator, {}), key=str.casefold)


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise PresetError("a preset needs a name")
    if len(name) > MAX_NAME:
        raise PresetError(f"a preset name has at most {MAX_NAME} characters")
    return name


def save(presets: Presets, generator: str, name: str, values: dict[str, Any]) -> Presets:
    """A copy of `presets` with `values` saved as `name` for `generator` (replacing one so named)."""
    name = check_name(name)
    try:
        json.dumps(values)
    except (TypeError, ValueError):
        raise PresetError("these values cannot be saved as a preset") from None
    out = {g: dict(p) for g, p in presets.items()}
    out.setdefault(generator, {})[name] = dict(values)
    return out


def delete(presets: Presets, generator: str, name: str) -> Presets:
    out = {g: dict(p) for g, p in presets.items()}
    out.get(generator, {}).pop(name, None)
    return {g: p for g, p in out.items() if p}


@dataclass
class Loaded:
    values: dict[str, Any]  # control name -> value to set (None: leave it to the bridge)
    skipped: list[str] = field(default_factory=list)  # what the bridge no longer accepts, as words

    def message(self, name: str) -> str:
        if not self.skipped:
            return f"Preset {name!r} loaded"
        return f"Preset {name!r} loaded; left as they were: " + ", ".join(self.skipped)


def load(presets: Presets, generator: str, name: str, controls: list[gs.Control]) -> Loaded:
    """The preset's values that fit the generator's current controls."""
    stored = presets.get(generator, {}).get(name)
    if stored is None:
        raise PresetError(f"there is no preset {name!r} for {generator}")
    by_name = {c.name: c for c in controls}
    loaded = Loaded({})
    for key, value in stored.items():
        control = by_name.get(key)
        if control is None:
            loaded.skipped.append(f"{key} (no longer a parameter)")
        elif value is None and not control.nullable:
            loaded.skipped.append(f"{key} (needs a value)")
        elif value is not None and not fits(control, value):
            loaded.skipped.append(f"{key} ({value!r} is not allowed now)")
        else:
            loaded.values[key] = value
    return loaded


def fits(control: gs.Control, value: Any) -> bool:
    """Whether `value` is one the control can hold (and the bridge accepts for it)."""
    if control.kind == gs.BOOL:
        return isinstance(value, bool)
    if control.kind in (gs.INT, gs.FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if control.kind == gs.INT and (not isinstance(value, int) or (control.step and value % control.step)):
            return False
        low = control.minimum if control.minimum is not None else float("-inf")
        high = control.maximum if control.maximum is not None else float("inf")
        return low <= value <= high
    if control.kind == gs.CHOICE:
        return value in control.choices
    if control.kind == gs.MULTI:
        return isinstance(value, list) and all(v in control.choices for v in value)
    return isinstance(value, str)
