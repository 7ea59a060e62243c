"""Generator parameters drawn from the bridge's `params_schema`, with no per-generator code.

The shared `ganbridge_schema` module turns the schema into controls; here each generator gets a
PropertyGroup built from them at run time and hung on the Scene (so values save with the .blend).
A nullable control gets a checkbox `<name>__on` beside its value.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import bpy

from . import ganbridge_schema as gs

_registered: dict[
    str, tuple[str, type, list[gs.Control], list[str]]
] = {}  # generator -> (hash, class, controls, skipped)
UNSET_SUFFIX = "__on"


def attr_name(generator: str) -> str:
    return "ganbridge_p_" + re.sub(r"\W", "_", generator)


def _property(c: gs.Control) -> Any:
    if c.kind == gs.CHOICE:
        items = [(v, v.replace("_", " ").title(), "") for v in c.choices]
        return bpy.props.EnumProperty(name=c.label, description=c.description, items=items, default=c.default)
    if c.kind == gs.BOOL:
        return bpy.props.BoolProperty(name=c.label, description=c.description, default=c.default)
    if c.kind == gs.INT:
        return bpy.props.IntProperty(
            name=c.label,
            description=c.description,
            default=c.default,
            min=int(c.minimum),
            max=int(c.maximum),
            step=c.step or 1,
        )
    if c.kind == gs.FLOAT:
        return bpy.props.FloatProperty(
            name=c.label, description=c.description, default=c.default, min=c.minimum, max=c.maximum
        )
    if c.kind == gs.MULTI:
        items = [(v, v.replace("_", " ").title(), "") for v in c.choices]
        return bpy.props.EnumProperty(
            name=c.label, description=c.description, items=items, default=set(c.default), options={"ENUM_FLAG"}
        )
    return bpy.props.StringProperty(name=c.label, description=c.description, default=c.default)


def _annotations(controls: list[gs.Control]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in controls:
        out[c.name] = _property(c)
        if c.nullable:
            out[c.name + UNSET_SUFFIX] = bpy.props.BoolProperty(
                name=f"Set {c.label.lower()}",
                description=f"{c.description} (off: the bridge chooses)".strip(),
                default=c.default_set,
            )
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
        controls, skipped = gs.controls_from_schema(schema)
        cls_name = "GANBRIDGE_PG_" + re.sub(r"\W", "_", name)
        cls = type(cls_name, (bpy.types.PropertyGroup,), {"__annotations__": _annotations(controls)})
        bpy.utils.register_class(cls)
        setattr(bpy.types.Scene, attr_name(name), bpy.props.PointerProperty(type=cls))
        _registered[name] = (digest, cls, controls, skipped)


def _unregister(name: str) -> None:
    cls = _registered.pop(name)[1]
    delattr(bpy.types.Scene, attr_name(name))
    bpy.utils.unregister_class(cls)


def unregister_all() -> None:
    for name in list(_registered):
        _unregister(name)


def group(scene: bpy.types.Scene, generator: str) -> bpy.types.PropertyGroup | None:
    if generator not in _registered:
        return None
    return getattr(scene, attr_name(generator), None)


def controls(generator: str) -> list[gs.Control]:
    return _registered[generator][2] if generator in _registered else []


def entered(scene: bpy.types.Scene, generator: str) -> dict[str, Any]:
    """Each control's value as set (None for a tick box left off), as a preset keeps them."""
    props = group(scene, generator)
    out: dict[str, Any] = {}
    for c in controls(generator) if props is not None else []:
        if c.nullable and not getattr(props, c.name + UNSET_SUFFIX):
            out[c.name] = None
        else:
            value = getattr(props, c.name)
            out[c.name] = sorted(value) if c.kind == gs.MULTI else value
    return out


def enter(scene: bpy.types.Scene, generator: str, values: dict[str, Any]) -> None:
    """Set controls from checked values (ganbridge_presets.load): None turns a tick box off."""
    props = group(scene, generator)
    by_name = {c.name: c for c in controls(generator)}
    for name, value in values.items():
        c = by_name.get(name)
        if props is None or c is None:
            continue
        if c.nullable:
            setattr(props, c.name + UNSET_SUFFIX, value is not None)
        if value is not None:
            setattr(props, c.name, set(value) if c.kind == gs.MULTI else value)


def values(scene: bpy.types.Scene, generator: str) -> dict[str, Any]:
    """The params object to send: drawable fields only, sizes rounded to what the schema allows."""
    props = group(scene, generator)
    if props is None:
        return {}
    controls = _registered[generator][2]
    raw: dict[str, Any] = {}
    for c in controls:
        if c.nullable and not getattr(props, c.name + UNSET_SUFFIX):
            raw[c.name] = None
        else:
            raw[c.name] = getattr(props, c.name)
    return gs.params_from_values(controls, raw)


def draw(layout: bpy.types.UILayout, scene: bpy.types.Scene, generator: str) -> None:
    props = group(scene, generator)
    if props is None:
        layout.label(text="Parameters arrive when the bridge connects")
        return
    _, _, controls, skipped = _registered[generator]
    col = layout.column(align=True)
    for c in controls:
        if c.nullable:
            row = col.row(align=True)
            row.prop(props, c.name + UNSET_SUFFIX, text="")
            sub = row.row(align=True)
            sub.enabled = getattr(props, c.name + UNSET_SUFFIX)
            sub.prop(props, c.name)
        elif c.kind == gs.MULTI:
            col.label(text=c.label)
            col.row(align=True).prop(props, c.name, expand=True)
        else:
            col.prop(props, c.name)
    for name in skipped:
        col.label(text=f"{name}: bridge default", icon="INFO")
