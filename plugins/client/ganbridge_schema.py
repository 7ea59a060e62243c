"""A generator's `params_schema` as a list of controls a host can draw, and the params they make.

Pure Python, shared by every plugin (each build copies it in), so Blender and Krita read the same
schema the same way: integers and numbers with bounds become sliders or spin boxes, string enums
dropdowns, booleans checkboxes, arrays of enums a set of toggles, and `anyOf [X, null]` a control
with an "off" state meaning "let the bridge choose". Other shapes are reported as skipped and left
out of requests (the bridge uses its default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INT, FLOAT, BOOL, CHOICE, MULTI, TEXT = "int", "float", "bool", "choice", "multi", "text"


@dataclass
class Control:
    name: str
    kind: str  # int | float | bool | choice | multi | text
    label: str
    description: str = ""
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: int | None = None  # integers: values must be a multiple of it
    choices: list[str] = field(default_factory=list)
    nullable: bool = False  # may be left unset (null), e.g. a random seed
    default_set: bool = True  # for nullable controls: whether the default is a value or null


def _label(name: str, spec: dict) -> str:
    return str(spec.get("title") or name.replace("_", " ").title())


def _non_null_branch(spec: dict) -> dict | None:
    options = spec.get("anyOf")
    if not isinstance(options, list) or len(options) != 2:
        return None
    kinds = [o.get("type") for o in options if isinstance(o, dict)]
    if "null" not in kinds:
        return None
    return next(o for o in options if isinstance(o, dict) and o.get("type") != "null")


def _control(name: str, spec: dict, outer: dict) -> Control | None:
    label, desc, default = _label(name, outer), str(outer.get("description", "")), outer.get("default")
    kind = spec.get("type")
    if "const" in spec and "enum" not in spec:
        spec = {**spec, "enum": [spec["const"]]}  # a one-value Literal (e.g. a single installed model)
    if "enum" in spec and kind in (None, "string"):
        choices = [str(v) for v in spec["enum"]]
        d = str(default) if default is not None and str(default) in choices else (choices[0] if choices else "")
        return Control(name, CHOICE, label, desc, d, choices=choices)
    if kind == "boolean":
        return Control(name, BOOL, label, desc, bool(default))
    if kind == "integer":
        lo, hi = spec.get("minimum", -(2**31)), spec.get("maximum", 2**31 - 1)
        d = int(default) if isinstance(default, int) else int(max(lo, min(hi, 0)))
        return Control(name, INT, label, desc, d, lo, hi, int(spec.get("multipleOf", 1)))
    if kind == "number":
        lo, hi = float(spec.get("minimum", -1e9)), float(spec.get("maximum", 1e9))
        d = float(default) if isinstance(default, int | float) else max(lo, min(hi, 0.0))
        return Control(name, FLOAT, label, desc, d, lo, hi)
    if kind == "string":
        return Control(name, TEXT, label, desc, str(default or ""))
    items = spec.get("items")
    if kind == "array" and isinstance(items, dict) and "enum" in items:
        choices = [str(v) for v in items["enum"]]
        d = [str(v) for v in (default or []) if str(v) in choices]
        return Control(name, MULTI, label, desc, d, choices=choices)
    return None


def controls_from_schema(schema: dict) -> tuple[list[Control], list[str]]:
    """(controls in schema order, names of fields no control can show)."""
    controls, skipped = [], []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            skipped.append(name)
            continue
        inner = _non_null_branch(spec)
        control = _control(name, inner if inner is not None else spec, spec)
        if control is None:
            skipped.append(name)
            continue
        if inner is not None:
            control.nullable = True
            control.default_set = spec.get("default") is not None
            if inner.get("default") is not None:
                control.default = inner["default"]
        controls.append(control)
    return controls, skipped


def snap(control: Control, value: float) -> int:
    """An integer the schema accepts: clamped to the bounds, rounded to a multiple of the step."""
    step = control.step or 1
    lo = int(control.minimum) if control.minimum is not None else -(2**31)
    hi = int(control.maximum) if control.maximum is not None else 2**31 - 1
    v = int(round(value / step) * step)
    lo_ok = -(-lo // step) * step  # smallest multiple of step >= lo
    hi_ok = (hi // step) * step
    return max(lo_ok, min(hi_ok, v))


def params_from_values(controls: list[Control], values: dict[str, Any]) -> dict[str, Any]:
    """The params object to send. `values[name]` is the control's value, or None for "unset"."""
    out: dict[str, Any] = {}
    for c in controls:
        if c.name not in values:
            continue
        v = values[c.name]
        if v is None:
            if c.nullable:
                out[c.name] = None
            continue
        if c.kind == INT:
            v = snap(c, v)
        elif c.kind == FLOAT:
            lo = c.minimum if c.minimum is not None else v
            hi = c.maximum if c.maximum is not None else v
            v = max(lo, min(hi, float(v)))
        elif c.kind == MULTI:
            chosen = {str(x) for x in v}
            v = [x for x in c.choices if x in chosen]
        elif c.kind == BOOL:
            v = bool(v)
        else:
            v = str(v)
        out[c.name] = v
    return out


def fit_size(controls: list[Control], width: int, height: int) -> dict[str, int]:
    """A canvas or selection size as width/height values the generator accepts (if it has them)."""
    out: dict[str, int] = {}
    for c in controls:
        if c.kind == INT and c.name in ("width", "height"):
            out[c.name] = snap(c, width if c.name == "width" else height)
    return out
