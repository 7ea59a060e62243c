"""The N-panel tab "GAN Bridge": status, generator and its parameters, actions, provenance, history.

draw() runs on every redraw: it reads the history once and sends nothing to the bridge.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import ganbridge_presets as gp
from . import history, params, presets, provenance
from .state import STATE

HISTORY_ROWS = 8


class GANBRIDGE_PT_main(bpy.types.Panel):
    bl_idname = "GANBRIDGE_PT_main"
    bl_label = "GAN Bridge"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "GAN Bridge"

    def draw(self, context):
        layout, s = self.layout, context.scene.ganbridge
        self._status(layout)
        if not STATE.generators:
            return
        box = layout.box()
        row = box.row(align=True)
        row.label(text="Generator")
        for name in STATE.generators:
            op = row.operator("ganbridge.select_generator", text=name, depress=name == s.generator)
            op.name = name
        info = STATE.generators.get(s.generator)
        if info is None:
            box.label(text=f"'{s.generator}' is no longer on the bridge: pick another", icon="ERROR")
            return
        row = box.row(align=True)
        row.menu("GANBRIDGE_MT_presets", text="Presets", icon="PRESET")
        row.operator("ganbridge.save_preset", text="", icon="ADD")
        params.draw(box, context.scene, s.generator)
        box.prop(s, "tiling")
        row = layout.row(align=True)
        row.prop(s, "count")
        row.operator("ganbridge.generate", icon="PLAY")
        row = layout.row(align=True)
        row.operator("ganbridge.rate", text="Like", icon="FUND").rating = 1
        row.operator("ganbridge.rate", text="Dislike", icon="CANCEL").rating = -1
        row.operator("ganbridge.steer", icon="SORTBYEXT")
        row = layout.row(align=True)
        row.prop(s, "strength")
        row.operator("ganbridge.variations", icon="MOD_NOISE")
        row = layout.row(align=True)
        row.label(text=f"A: {s.item_a or '-'}  B: {s.item_b or '-'}")
        row.prop(s, "steps")
        row.operator("ganbridge.interpolate", icon="IPO_EASE_IN_OUT")
        entries = history.entries()
        self._provenance(layout, context, entries)
        self._history(layout, entries)

    def _status(self, layout) -> None:
        box = layout.box()
        row = box.row(align=True)
        connected = STATE.status == "connected"
        row.label(text=STATE.status_line(), icon="LINKED" if connected else "UNLINKED")
        if connected or STATE.status == "connecting":
            row.operator("ganbridge.disconnect", text="", icon="X")
        else:
            row.operator("ganbridge.connect", icon="PLUGIN")
        jobs = STATE.active_jobs()
        for job in jobs:  # a bar per request: its place in the queue, then k of n
            r = box.row(align=True)
            r.progress(factor=job.fraction, type="BAR", text=job.describe())
            r.operator("ganbridge.cancel_job", text="", icon="X").rid = job.rid
        if len(jobs) > 1:
            box.operator("ganbridge.cancel", icon="CANCEL")
        if STATE.last_error:
            box.label(text=STATE.last_error, icon="ERROR")
        elif STATE.last_info:
            box.label(text=STATE.last_info, icon="INFO")

    def _provenance(self, layout, context, entries: list[dict[str, Any]]) -> None:
        """Where the selected result comes from, and Export, which keeps that in the file."""
        entry = history.find(history.current_item(context, entries), entries)
        if entry is None:
            return
        box = layout.box()
        row = box.row(align=True)
        row.label(text="Provenance", icon="INFO")
        if entry.get("format") in (None, "png"):
            row.operator("ganbridge.export_result", text="Export", icon="EXPORT").item = entry["item"]
        col = box.column(align=True)
        for line in provenance.lines(entry):
            col.label(text=line)

    def _history(self, layout, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        box = layout.box()
        box.label(text=f"History ({len(entries)})")
        for e in reversed(entries[-HISTORY_ROWS:]):
            row = box.row(align=True)
            rating = {1: "FUND", -1: "CANCEL"}.get(e.get("rating", 0), "BLANK1")
            row.label(
                text=f"{e.get('generator')} {e.get('seed') if e.get('seed') is not None else e.get('job')}", icon=rating
            )
            row.operator("ganbridge.reapply", text="Use").item = e["item"]
            row.operator("ganbridge.regenerate", text="", icon="FILE_REFRESH").item = e["item"]
            if e.get("format") in (None, "png"):
                row.operator("ganbridge.export_result", text="", icon="EXPORT").item = e["item"]
            for slot in ("A", "B"):
                op = row.operator("ganbridge.pick", text=slot)
                op.item, op.slot = e["item"], slot


class GANBRIDGE_MT_presets(bpy.types.Menu):
    """The current generator's presets: each to load, then each to delete."""

    bl_idname = "GANBRIDGE_MT_presets"
    bl_label = "Presets"

    def draw(self, context):
        names = gp.names(presets.read(), context.scene.ganbridge.generator)
        layout = self.layout
        if not names:
            layout.label(text="No presets yet: save one with +")
            return
        for name in names:
            layout.operator("ganbridge.load_preset", text=name).name = name
        layout.separator()
        for name in names:
            layout.operator("ganbridge.delete_preset", text=f"Delete {name}", icon="X").name = name


CLASSES = (GANBRIDGE_PT_main, GANBRIDGE_MT_presets)
