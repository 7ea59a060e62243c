"""The buttons. Each one queues a request and returns at once; results arrive through drain()."""

from __future__ import annotations

import os
import uuid

import bpy
from bpy_extras.io_utils import ExportHelper

from . import connection, export, history, live, params, presets
from . import ganbridge_presets as gp
from .connection import UserError
from .materials import MATERIAL_TYPES, ResultError
from .state import PLACE_IN_ROW, PLACE_ON_TARGET, STATE, Job


def _settings(context: bpy.types.Context):
    return context.scene.ganbridge


def _session(context: bpy.types.Context) -> str:
    s = _settings(context)
    if not s.session:
        s.session = uuid.uuid4().hex
    return s.session


current_item = history.current_item


def _target(context: bpy.types.Context) -> str:
    obj = context.active_object
    return obj.name if obj is not None and obj.type in MATERIAL_TYPES else ""


class _BridgeOperator(bpy.types.Operator):
    """Shared error handling: every failure is a report and CANCELLED, never a traceback."""

    def execute(self, context):
        try:
            message = self.run(context)
        except (UserError, gp.PresetError) as e:
            connection.report("ERROR", str(e))
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        if message:
            STATE.last_info = message
            self.report({"INFO"}, message)
        return {"FINISHED"}

    def run(self, context) -> str:
        raise NotImplementedError


class GANBRIDGE_OT_connect(_BridgeOperator):
    bl_idname = "ganbridge.connect"
    bl_label = "Connect"
    bl_description = "Connect to the GAN Bridge server (URL and token in the add-on preferences)"

    def run(self, context) -> str:
        p = connection.prefs()
        connection.connect(p.url, p.token)
        return f"Connecting to {p.url}"


class GANBRIDGE_OT_disconnect(_BridgeOperator):
    bl_idname = "ganbridge.disconnect"
    bl_label = "Disconnect"

    def run(self, context) -> str:
        connection.disconnect()
        return "Disconnected"


class GANBRIDGE_OT_select_generator(_BridgeOperator):
    bl_idname = "ganbridge.select_generator"
    bl_label = "Select generator"
    bl_options = {"INTERNAL"}
    name: bpy.props.StringProperty()

    def run(self, context) -> str:
        _settings(context).generator = self.name
        return ""


def _generator(context) -> tuple[str, dict]:
    name = _settings(context).generator
    if not STATE.generators:
        raise UserError("no generators yet: connect to the bridge first")
    info = STATE.generators.get(name)
    if info is None:
        raise UserError(f"the generator {name!r} is no longer on the bridge: pick another one in the panel")
    return name, info


class GANBRIDGE_OT_generate(_BridgeOperator):
    bl_idname = "ganbridge.generate"
    bl_label = "Generate"
    bl_description = "Generate new results; the first goes onto the active object (or a new plane)"

    def run(self, context) -> str:
        name, info = _generator(context)
        values = params.values(context.scene, name)
        count = _settings(context).count
        job = Job("", "generate", f"Generate {name}", PLACE_ON_TARGET, _target(context), values)
        connection.submit(job, "generate", generator=name, params=values, count=count, session=_session(context))
        return f"Asked the bridge for {count} {name} result{'s' if count > 1 else ''}"


class GANBRIDGE_OT_variations(_BridgeOperator):
    bl_idname = "ganbridge.variations"
    bl_label = "Variations"
    bl_description = "Variations of the current result, in a row beside it"

    def run(self, context) -> str:
        item = current_item(context)
        if not item:
            raise UserError("no result to vary yet: generate one first")
        s = _settings(context)
        job = Job("", "variations", "Variations", PLACE_IN_ROW, _target(context))
        connection.submit(job, "variations", item=item, strength=s.strength, count=s.count, session=_session(context))
        return f"Asked for {s.count} variations"


class GANBRIDGE_OT_pick(_BridgeOperator):
    bl_idname = "ganbridge.pick"
    bl_label = "Pick for blending"
    bl_options = {"INTERNAL"}
    item: bpy.props.StringProperty()
    slot: bpy.props.EnumProperty(items=[("A", "A", ""), ("B", "B", "")])

    def run(self, context) -> str:
        s = _settings(context)
        if self.slot == "A":
            s.item_a = self.item
        else:
            s.item_b = self.item
        return ""


class GANBRIDGE_OT_interpolate(_BridgeOperator):
    bl_idname = "ganbridge.interpolate"
    bl_label = "Blend two"
    bl_description = "A row of results morphing from result A to result B"

    def run(self, context) -> str:
        s = _settings(context)
        if not s.item_a or not s.item_b:
            raise UserError("pick two results (A and B) in the history first")
        if s.item_a == s.item_b:
            raise UserError("A and B are the same result: pick two different ones")
        job = Job("", "interpolate", "Blend", PLACE_IN_ROW, _target(context))
        connection.submit(
            job, "interpolate", **{"from": s.item_a, "to": s.item_b, "steps": s.steps, "session": _session(context)}
        )
        return f"Asked for a {s.steps}-step blend"


class GANBRIDGE_OT_rate(_BridgeOperator):
    bl_idname = "ganbridge.rate"
    bl_label = "Rate"
    bl_description = "Like or dislike a result; ratings steer 'More like these'"
    rating: bpy.props.IntProperty(min=-1, max=1, default=1)
    item: bpy.props.StringProperty(description="Item id; empty: the current result")

    def run(self, context) -> str:
        item = self.item or current_item(context)
        if not item:
            raise UserError("no result to rate yet: generate one first")
        rid = connection.send("feedback", item=item, rating=self.rating, session=_session(context))
        STATE.feedback_requests[rid] = (item, self.rating)
        return ""


class GANBRIDGE_OT_steer(_BridgeOperator):
    bl_idname = "ganbridge.steer"
    bl_label = "More like these"
    bl_description = "New results steered by this file's likes and dislikes"

    def run(self, context) -> str:
        name, _ = _generator(context)
        s = _settings(context)
        job = Job("", "steer", f"More {name}", PLACE_IN_ROW, _target(context))
        connection.submit(job, "steer", generator=name, session=_session(context), count=s.count, explore=s.explore)
        return "Asked for results steered by your ratings"


class GANBRIDGE_OT_cancel(_BridgeOperator):
    bl_idname = "ganbridge.cancel"
    bl_label = "Cancel all"
    bl_description = "Stop every request of this file that is still queued or running"

    def run(self, context) -> str:
        n = connection.cancel_all()
        return f"Cancelling {n} request{'s' if n != 1 else ''}" if n else "Nothing to cancel"


class GANBRIDGE_OT_cancel_job(_BridgeOperator):
    bl_idname = "ganbridge.cancel_job"
    bl_label = "Cancel this request"
    bl_description = "Stop this request; the results it has delivered stay"
    bl_options = {"INTERNAL"}
    rid: bpy.props.StringProperty()

    def run(self, context) -> str:
        return f"Cancelling {connection.cancel(self.rid)}"


class GANBRIDGE_OT_reapply(bpy.types.Operator):
    bl_idname = "ganbridge.reapply"
    bl_label = "Use"
    bl_description = "Put this result's material on the active object"
    bl_options = {"REGISTER", "UNDO"}
    item: bpy.props.StringProperty()

    def execute(self, context):
        entry = history.find(self.item)
        mat = bpy.data.materials.get(entry.get("material", "")) if entry else None
        obj = context.active_object
        if mat is None:
            self.report({"ERROR"}, "that result's material is no longer in this file: use Regenerate")
            return {"CANCELLED"}
        if obj is None or obj.type not in MATERIAL_TYPES:
            self.report({"ERROR"}, "select an object that can have a material first")
            return {"CANCELLED"}
        if not obj.material_slots:
            obj.data.materials.append(mat)
        else:
            obj.material_slots[obj.active_material_index].material = mat
        return {"FINISHED"}


class GANBRIDGE_OT_regenerate(_BridgeOperator):
    bl_idname = "ganbridge.regenerate"
    bl_label = "Regenerate"
    bl_description = "Ask the bridge to make this result again, exactly, from its recipe"
    item: bpy.props.StringProperty()

    def run(self, context) -> str:
        entry = history.find(self.item)
        if entry is None:
            raise UserError("that result is not in this file's history")
        recipe = entry.get("recipe")
        if not recipe:
            raise UserError("this result's recipe has not come from the bridge yet: try again in a moment")
        name = entry["generator"]
        if name not in STATE.generators:
            raise UserError(f"the generator {name!r} is not on the bridge now")
        if recipe.get("origin", "generate") == "generate" and recipe.get("seed") is not None and recipe.get("params"):
            job = Job("", "generate", f"Regenerate {name}", PLACE_ON_TARGET, _target(context), recipe["params"])
            connection.submit(job, "generate", generator=name, params=recipe["params"], seed=recipe["seed"], count=1)
        else:
            # Variations, blends and steered results start from a latent, not a seed (the seed in
            # their recipe drew the change): a variation of strength 0 is the same latent, made
            # again with the same params, from the bridge's store.
            job = Job("", "regenerate", f"Regenerate {name}", PLACE_ON_TARGET, _target(context))
            connection.submit(job, "variations", item=self.item, strength=0.0, count=1, session=_session(context))
        return "Regenerating from the recipe"


class GANBRIDGE_OT_export_result(_BridgeOperator, ExportHelper):
    bl_idname = "ganbridge.export_result"
    bl_label = "Export result"
    bl_description = (
        "Save the result's original PNG, recipe and content credentials inside, with its maps beside it "
        "(Image > Save As re-encodes the image and drops them)"
    )
    filename_ext = ".png"
    filter_glob: bpy.props.StringProperty(default="*.png", options={"HIDDEN"})
    item: bpy.props.StringProperty(description="Item id; empty: the current result", options={"SKIP_SAVE"})

    def invoke(self, context, event):
        self.item = self.item or current_item(context)
        if not self.item:
            self.report({"ERROR"}, "no result to export yet: generate one first")
            return {"CANCELLED"}
        # the folder of the last export (or of the .blend), and a name that says which result it is
        folder = os.path.dirname(bpy.path.abspath(self.filepath or bpy.data.filepath))
        self.filepath = os.path.join(folder, export.default_name(self.item, history.find(self.item)))
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def run(self, context) -> str:
        item = self.item or current_item(context)
        if not item:
            raise UserError("no result to export yet: generate one first")
        try:
            path = export.target_path(self.filepath)
            entry = history.find(item)
            files, why = export.packed_files(entry)
            if files is None:
                return connection.request_export(item, path, why)
            message = export.describe(export.write(path, files))
        except export.ExportError as e:
            raise UserError(f"Export failed: {e}") from None
        if export.edited_in_blender(entry):
            message += "; your unsaved paint in Blender is not in it (it would break the credentials)"
        return message


class GANBRIDGE_OT_apply_result(bpy.types.Operator):
    """One result into the scene: one undo step (drain() calls this for each result)."""

    bl_idname = "ganbridge.apply_result"
    bl_label = "Apply GAN Bridge result"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}
    key: bpy.props.StringProperty()

    def execute(self, context):
        pending = connection.take_pending(self.key)
        if pending is None:
            return {"CANCELLED"}
        item, job, index, images, created = pending
        try:
            connection.apply_item(item, job, index, images, created)
        except ResultError as e:
            message = f"{job.label}: {e} (nothing was changed)"
            connection.report("ERROR", message)
            return {"CANCELLED"}
        STATE.applied += 1
        return {"FINISHED"}


class GANBRIDGE_OT_report(bpy.types.Operator):
    """Puts a message in Blender's report area from places that are not operators (the timer)."""

    bl_idname = "ganbridge.report"
    bl_label = "GAN Bridge message"
    bl_options = {"INTERNAL"}
    level: bpy.props.EnumProperty(items=[("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")])
    message: bpy.props.StringProperty()

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}


def _preset_generator(context) -> str:
    name = _settings(context).generator
    if name not in STATE.generators or not params.controls(name):
        raise UserError("no generator: connect to the bridge first")
    return name


class GANBRIDGE_OT_save_preset(_BridgeOperator):
    bl_idname = "ganbridge.save_preset"
    bl_label = "Save preset"
    bl_description = "Save this generator's parameters as a named preset (kept for every .blend)"
    name: bpy.props.StringProperty(name="Name", description="The preset's name (an existing one is replaced)")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def run(self, context) -> str:
        generator = _preset_generator(context)
        values = params.entered(context.scene, generator)
        presets.write(gp.save(presets.read(), generator, self.name, values))
        return f"Preset {gp.check_name(self.name)!r} saved"


class GANBRIDGE_OT_load_preset(_BridgeOperator):
    bl_idname = "ganbridge.load_preset"
    bl_label = "Load preset"
    bl_description = "Set this generator's parameters from the preset"
    bl_options = {"REGISTER", "UNDO"}
    name: bpy.props.StringProperty()

    def run(self, context) -> str:
        generator = _preset_generator(context)
        loaded = gp.load(presets.read(), generator, self.name, params.controls(generator))
        params.enter(context.scene, generator, loaded.values)
        return loaded.message(self.name)


class GANBRIDGE_OT_delete_preset(_BridgeOperator):
    bl_idname = "ganbridge.delete_preset"
    bl_label = "Delete preset"
    bl_description = "Delete the preset"
    name: bpy.props.StringProperty()

    def run(self, context) -> str:
        generator = _preset_generator(context)
        stored = presets.read()
        if self.name not in gp.names(stored, generator):
            raise UserError(f"there is no preset {self.name!r} for {generator}")
        presets.write(gp.delete(stored, generator, self.name))
        return f"Preset {self.name!r} deleted"


class GANBRIDGE_OT_live_start(_BridgeOperator):
    bl_idname = "ganbridge.live_start"
    bl_label = "Start live"
    bl_description = (
        "Sliders for the active object's result: its material changes in place as you drag "
        "(Stop puts it back, Commit keeps it as a new result)"
    )

    def run(self, context) -> str:
        return live.start(context)


class GANBRIDGE_OT_live_toward(_BridgeOperator):
    bl_idname = "ganbridge.live_toward"
    bl_label = "Blend toward"
    bl_description = "The result the live session's Blend slider goes toward (for the next Start live)"
    bl_options = {"INTERNAL"}
    item: bpy.props.StringProperty(description="Item id; empty: no Blend slider")

    def run(self, context) -> str:
        return live.pick_toward(self.item)


class GANBRIDGE_OT_live_reset(_BridgeOperator):
    bl_idname = "ganbridge.live_reset"
    bl_label = "Reset"
    bl_description = (
        "Every slider back to the start: the directions and Blend at 0, Temperature the result's own "
        "(the result the session started from)"
    )

    def run(self, context) -> str:
        return live.reset()


class GANBRIDGE_OT_live_commit(_BridgeOperator):
    bl_idname = "ganbridge.live_commit"
    bl_label = "Commit"
    bl_description = (
        "Keep what the sliders show as a new result (with its recipe) on this object, in place of "
        "the live material; the result it started from stays in the history, unchanged"
    )

    def run(self, context) -> str:
        return live.commit(_session(context))


class GANBRIDGE_OT_live_stop(_BridgeOperator):
    bl_idname = "ganbridge.live_stop"
    bl_label = "Stop"
    bl_description = "End the live session: the material gets the result's own pixels back"

    def run(self, context) -> str:
        if not live.stop(restore=True, message="Live stopped: the result's own pixels are back"):
            return "No live session"
        return "Live stopped"


class GANBRIDGE_OT_history_page(bpy.types.Operator):
    bl_idname = "ganbridge.history_page"
    bl_label = "History page"
    bl_description = "Show newer or older results"
    bl_options = {"INTERNAL"}
    step: bpy.props.IntProperty()

    def execute(self, context):
        s = _settings(context)
        s.history_page = max(0, min(history.pages() - 1, s.history_page + self.step))
        return {"FINISHED"}


CLASSES = (
    GANBRIDGE_OT_live_start,
    GANBRIDGE_OT_live_toward,
    GANBRIDGE_OT_live_reset,
    GANBRIDGE_OT_live_commit,
    GANBRIDGE_OT_live_stop,
    GANBRIDGE_OT_history_page,
    GANBRIDGE_OT_save_preset,
    GANBRIDGE_OT_load_preset,
    GANBRIDGE_OT_delete_preset,
    GANBRIDGE_OT_connect,
    GANBRIDGE_OT_disconnect,
    GANBRIDGE_OT_select_generator,
    GANBRIDGE_OT_generate,
    GANBRIDGE_OT_variations,
    GANBRIDGE_OT_pick,
    GANBRIDGE_OT_interpolate,
    GANBRIDGE_OT_rate,
    GANBRIDGE_OT_steer,
    GANBRIDGE_OT_cancel,
    GANBRIDGE_OT_cancel_job,
    GANBRIDGE_OT_reapply,
    GANBRIDGE_OT_regenerate,
    GANBRIDGE_OT_export_result,
    GANBRIDGE_OT_apply_result,
    GANBRIDGE_OT_report,
)
