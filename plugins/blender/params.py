"""Generator parameters drawn from the bridge's `params_schema`, with no per-generator code.

Each generator gets a PropertyGroup built at run time from its JSON Schema and hung on the Scene
(so values save with the .blend): integers and numbers with bounds become sliders, string enums
dropdowns, booleans checkboxes, arrays of enums multi-choice toggles, and a nullable value a
checkbox plus its field. Anything else is listed as "bridge default" and left out of requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import bpy

_registered: dict[str, tuple[str, type]] = {}  # generator -> (schema hash, PropertyGroup class)
UNSET_SUFFIX = "__on"


def attr_name(generator: str) -> str:
    return "ganbridge_p_" + re.sub(r"\W", "_", generator)


def _label(name: str, spec: dict) -> str:
    return str(spec.get("title") or name.replace("_", " ").title())


def _nullable(spec: dict) -> dict | None:
    """The non-null branch of `anyOf: [X, null]`, or None when the field is not nullable."""
    options = spec.get("anyOf")
    if not isinstance(options, list) or len(options) != 2:
        return None
    kinds = [o.get("type") for o in options if isinstance(o, dict)]
    if "null" not in kinds:
        return None
    return next(o for o in options if o.get("type") != "null")


def _property(name: str, spec: dict, default: Any) -> Any | None:
    """A bpy property for one schema field, or None if this schema shape is not drawable."""
    label, desc = _label(name, spec), str(spec.get("description", ""))
    kind = spec.get("type")
    if "enum" in spec and kind in (None, "string"):
        items = [(str(v), str(v).replace("_", " ").title(), "") for v in spec["enum"]]
        d = str(default) if default in spec["enum"] else items[0][0]
        return bpy.props.EnumProperty(name=label, description=desc, items=items, default=d)
    if kind == "boolean":
        return bpy.props.BoolProperty(name=label, description=desc, default=bool(default))
    if kind == "integer":
        lo, hi = spec.get("minimum", -(2**31)), spec.get("maximum", 2**31 - 1)
        d = int(default) if isinstance(default, int) else max(lo, min(hi, 0))
        return bpy.props.IntProperty(
            name=label, description=desc, default=d, min=lo, max=hi, step=int(spec.get("multipleOf", 1))
        )
    if kind == "number":
        lo, hi = float(spec.get("minimum", -1e9)), float(spec.get("maximum", 1e9))
        d = float(default) if isinstance(default, int | float) else max(lo, min(hi, 0.0))
        return bpy.props.FloatProperty(name=label, description=desc, default=d, min=lo, max=hi)
    if kind == "string":
        return bpy.props.StringProperty(name=label, description=desc, default=str(default or ""))
    if kind == "array" and isinstance(spec.get("items"), dict) and "enum" in spec["items"]:
        values = [str(v) for v in spec["items"]["enum"]]
        items = [(v, v.replace("_", " ").title(), "") for v in values]
        d = {str(v) for v in (default or []) if str(v) in values}
        return bpy.props.EnumProperty(name=label, description=desc, items=items, default=d, options={"ENUM_FLAG"})
    return None


def _annotations(schema: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        if not isinstance(spec, dict):
            continue
        default = spec.get("default")
        inner = _nullable(spec)
        if inner is not None:
            inner = {**inner, "title": spec.get("title"), "description": spec.get("description")}
            prop = _property(name, inner, inner.get("default"))
            if prop is not None:
                out[name] = prop
                out[name + UNSET_SUFFIX] = bpy.props.BoolProperty(
                    name=f"Set {_label(name, spec).lower()}",
                    description=f"{spec.get('description', '')} (off: the bridge chooses)".strip(),
                    default=default is not None,
                )
            continue
        prop = _property(name, spec, default)
        if prop is not None:
            out[name] = prop
    return out


def sync(generators: dict[str, dict]) -> None:
    """Register a PropertyGroup per generator; re-register one whose schema changed."""
    for name, info in generators.items():
        schema = info.get("params_schema") or {}
        digest = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
        old = _registered.get(name)
        if old is not None and old[0] == digest:
            continue
        if old is not None:
            _unregister(name)
        cls_name = "GANBRIDGE_PG_" + re.sub(r"\W", "_", name)
        cls = type(cls_name, (bpy.types.PropertyGroup,), {"__annotations__": _annotations(schema)})
        bpy.utils.register_class(cls)
        setattr(bpy.types.Scene, attr_name(name), bpy.props.PointerProperty(type=cls))
        _registered[name] = (digest, cls)


def _unregister(name: str) -> None:
    _, cls = _registered.pop(name)
    delattr(bpy.types.Scene, attr_name(name))
    bpy.utils.unregister_class(cls)


def unregister_all() -> None:
    for name in list(_registered):
        _unregister(name)


def group(scene: bpy.types.Scene, generator: str) -> bpy.types.PropertyGroup | None:
    if generator not in _registered:
        return None
    return getattr(scene, attr_name(generator), None)


def values(scene: bpy.types.Scene, generator: str, schema: dict) -> dict[str, Any]:
    """The params object to send: drawable fields only, sizes rounded to what the schema allows."""
    props = group(scene, generator)
    if props is None:
        return {}
    out: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        if not hasattr(props, name):
            continue
        inner = _nullable(spec)
        if inner is not None:
            if not getattr(props, name + UNSET_SUFFIX):
                out[name] = None
                continue
            spec = inner
        value = getattr(props, name)
        if isinstance(value, set):
            order = [str(v) for v in spec["items"]["enum"]]
            value = [v for v in order if v in value]
        elif spec.get("type") == "integer" and spec.get("multipleOf"):
            step = int(spec["multipleOf"])
            value = max(spec.get("minimum", step), min(spec.get("maximum", 2**31), round(value / step) * step))
        out[name] = value
    return out


def draw(layout: bpy.types.UILayout, scene: bpy.types.Scene, generator: str, schema: dict) -> None:
    props = group(scene, generator)
    if props is None:
        layout.label(text="Parameters arrive when the bridge connects")
        return
    col = layout.column(align=True)
    for name, spec in schema.get("properties", {}).items():
        if not hasattr(props, name):
            col.label(text=f"{_label(name, spec)}: bridge default", icon="INFO")
            continue
        if _nullable(spec) is not None:
            row = col.row(align=True)
            row.prop(props, name + UNSET_SUFFIX, text="")
            sub = row.row(align=True)
            sub.enabled = getattr(props, name + UNSET_SUFFIX)
            sub.prop(props, name)
        elif spec.get("type") == "array":
            col.label(text=_label(name, spec))
            col.row(align=True).prop(props, name, expand=True)
        else:
            col.prop(props, name)
