"""The N-panel tab "GAN Bridge": status, generator and its parameters, actions, live sliders,
provenance, history.

draw() runs on every redraw: it reads the history once and sends nothing to the bridge.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import connection, history, live, params, presets, provenance, thumbnails
from . import ganbridge_presets as gp
from .state import STATE

THUMB_SCALE = 3.0  # the history's thumbnails, in units of the interface's icon size
TOWARD_CHOICES = 24  # the newest results the Blend toward menu lists (a menu longer than a screen is no use)


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
        box.prop(s, "image_files")
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
        self._live(layout, context, entries)
        self._provenance(layout, context, entries)
        self._history(layout, s, entries)

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

    def _live(self, layout, context, entries: list[dict[str, Any]]) -> None:
        """Start live on the active object's result (and what to blend toward); then a slider per
        direction, Temperature, Blend, Reset, Commit, Stop and how fast frames come (or why there
        are none)."""
        box = layout.box()
        view = live.CURRENT
        head = box.row(align=True)
        head.label(text="Live", icon="RNA")
        if view is None:
            self._live_start(box, head, context, entries)
            return
        head.label(text=view.label)
        box.label(text=live.status_line())
        col = box.column(align=True)
        col.enabled = not view.commit
        for slider in live.sliders() or ():
            col.prop(slider, "value", text=slider.name, slider=True)
        group = live.group()
        if view.temperature is not None:
            col.prop(group, "temperature", slider=True)
        if view.toward:
            col.prop(group, "blend", text=f"Blend toward {view.toward_label}", slider=True)
        row = box.row(align=True)
        row.enabled = not view.commit and view.session.status == "open"
        row.operator("ganbridge.live_reset", icon="LOOP_BACK")
        row.operator("ganbridge.live_commit", icon="CHECKMARK")
        box.operator("ganbridge.live_stop", icon="CANCEL")

    def _live_start(self, box, head, context, entries: list[dict[str, Any]]) -> None:
        """Start live, and the pick of a result to blend toward (other results of the same
        generator and size, in a menu), or why either cannot go."""
        why = live.why_not(context)
        start = head.row(align=True)
        start.enabled = not why
        start.operator("ganbridge.live_start", icon="PLAY")
        entry = live.source(context, entries) if not why else None
        if entry is not None:
            toward, problem = live.toward_pick(entry, entries)
            row = box.row(align=True)
            picked = live.entry_label(toward) if toward else "nothing"
            row.menu("GANBRIDGE_MT_live_toward", text=f"Blend toward: {picked}", icon="IPO_EASE_IN_OUT")
            if live.picked_toward():
                row.operator("ganbridge.live_toward", text="", icon="X").item = ""
            if problem:
                box.label(text=problem, icon="ERROR")
        if why or live.LAST:
            box.label(text=why or live.LAST, icon="INFO")

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

    def _history(self, layout, s, entries: list[dict[str, Any]]) -> None:
        """A page of results, newest first: thumbnail, what it is, its rating and actions."""
        if not entries:
            return
        if thumbnails.rebuild(entries, connection.WORK):  # a file opened before the add-on was on
            connection.ensure_timer()
        box = layout.box()
        head = box.row(align=True)
        head.label(text=f"History ({len(entries)})")
        pages = history.pages(entries)
        number = min(s.history_page, pages - 1)
        if pages > 1:
            head.operator("ganbridge.history_page", text="", icon="TRIA_LEFT").step = -1
            head.label(text=f"{number + 1} / {pages}")
            head.operator("ganbridge.history_page", text="", icon="TRIA_RIGHT").step = 1
        for e in history.page(number, entries):
            row = box.row()
            icon = thumbnails.icon(e["item"])
            if thumbnails.has(e["item"]):
                row.template_icon(icon_value=icon, scale=THUMB_SCALE)
            else:
                row.label(text="", icon="IMAGE_DATA")
            col = row.column(align=True)
            rating = {1: "FUND", -1: "CANCEL"}.get(e.get("rating", 0), "BLANK1")
            col.label(text=provenance.label(e), icon=rating)
            actions = col.row(align=True)
            actions.operator("ganbridge.reapply", text="Use").item = e["item"]
            actions.operator("ganbridge.regenerate", text="", icon="FILE_REFRESH").item = e["item"]
            if e.get("format") in (None, "png"):
                actions.operator("ganbridge.export_result", text="", icon="EXPORT").item = e["item"]
            for slot in ("A", "B"):
                op = actions.operator("ganbridge.pick", text=slot)
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


class GANBRIDGE_MT_live_toward(bpy.types.Menu):
    """The results a live session on the active object's result can blend toward, newest first."""

    bl_idname = "GANBRIDGE_MT_live_toward"
    bl_label = "Blend toward"

    def draw(self, context):
        layout = self.layout
        entries = history.entries()
        entry = live.source(context, entries)
        choices = live.toward_choices(entry, entries) if entry is not None else []
        layout.operator("ganbridge.live_toward", text="Nothing (no Blend slider)").item = ""
        if not choices:
            layout.label(text="No other result of this generator and size yet")
        for e in choices[:TOWARD_CHOICES]:
            layout.operator("ganbridge.live_toward", text=live.entry_label(e)).item = e["item"]


CLASSES = (GANBRIDGE_PT_main, GANBRIDGE_MT_presets, GANBRIDGE_MT_live_toward)
