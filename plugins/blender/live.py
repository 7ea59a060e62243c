"""Live sliders: a result's material changes in place while the artist drags.

Start opens a live session on the active object's result (`live_open`, docs/reference/protocol.md,
Live sessions), toward a second result when one is picked (a Blend slider); each slider (one per
direction, Temperature when the generator has one, Blend) is a float property on the window
manager whose update callback sends `live_move` at once. The bridge renders only the newest
state; frames are kept by the shared `LiveSession`, which hands over the newest one not yet shown.
Each tick (drain) takes at most one frame into the shared WorkQueue: its PNGs are decoded on the
worker, then each image gets the new pixels in a slice of its own (foreach_set, update): the same
image datablocks, no new data, no undo step. The images' pixels from before are kept and put back
on Stop; Commit makes the newest state an ordinary result (origin `live`) that goes onto the
object in place of the live material.

The sliders are window-manager properties, not the scene's: Blender pushes no undo step when one
is edited and an undo leaves them as they are, so a drag leaves the undo history alone.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import bpy
import numpy as np

from . import connection, history, params
from . import ganbridge_live as gl
from . import ganbridge_schema as gs
from . import png as png_decoder
from .ganbridge_work import Work
from .materials import MATERIAL_TYPES, ResultError, decode_png
from .state import PLACE_ON_TARGET, STATE, Job

PREVIEW_MAX = 512  # a longer side above this previews at this size (the images keep theirs)
FPS_WINDOW = 2.0  # seconds of applied frames the frames/s figure counts
EXTENSION = "live"


@dataclass
class LiveView:
    """The session on screen: which object and images it drives, and their pixels from before."""

    session: gl.LiveSession
    item: str  # the result it started from
    label: str  # what the panel calls it
    obj: str  # the object wearing it
    images: dict[str, str]  # "color" and the maps -> image names
    size: tuple[int, int]  # the images' own size (frames of another size are scaled to it)
    preview: str = ""  # why the frames are smaller or slower, when they are
    onto: str = ""  # for a smaller preview: the result the sliders are committed onto at full size
    toward: str = ""  # the result the Blend slider goes toward ("": no blend)
    toward_label: str = ""
    temperature: float | None = None  # where the Temperature slider starts (None: the generator has none)
    note: str = ""  # the bridge's word on a session without sliders
    originals: dict[str, np.ndarray] = field(default_factory=dict)  # image name -> pixels before
    frames: int = 0  # frames applied
    applied_at: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    render_ms: float = 0.0
    in_flight: int = 0  # frame works queued and not yet applied (at most one)
    commit: str = ""  # rid of the live_commit request, once sent
    shown_seq: int = -1  # seq of the frame the images show

    def fps(self, now: float) -> float:
        recent = [t for t in self.applied_at if now - t <= FPS_WINDOW]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])


CURRENT: LiveView | None = None
LAST = ""  # what the panel says once no session is on (why it ended, or what went wrong)
_quiet = False  # set while the add-on itself sets slider values (no moves to send)
_ended: deque[str] = deque(maxlen=16)  # ids of sessions that ended here: their late messages are dropped


def active() -> bool:
    return CURRENT is not None


def group() -> Any:
    """The window manager's live properties (None before the add-on registered them)."""
    return getattr(bpy.context.window_manager, "ganbridge_live", None)


def sliders() -> Any:
    """The direction sliders (None before the add-on registered them)."""
    g = group()
    return g.sliders if g is not None else None


def why_not(context: bpy.types.Context) -> str:
    """Why Start live cannot go now ("" when it can), for the panel; reads no history."""
    if STATE.status != "connected":
        return ""  # the status line says so; Start says what to do
    if EXTENSION not in STATE.extensions:
        return "This bridge has no live sessions: update ganbridge on it"
    obj = context.active_object
    mat = obj.active_material if obj is not None and obj.type in MATERIAL_TYPES else None
    if mat is None or not mat.get("ganbridge_item"):
        return "Select an object wearing a result to go live"
    return ""


# --- what the operators call ---------------------------------------------------------------


def start(context: bpy.types.Context) -> str:
    """Open a live session on the active object's result; returns the report."""
    global LAST
    if STATE.status != "connected":
        raise connection.UserError("not connected to the bridge: click Connect first")
    if EXTENSION not in STATE.extensions:
        raise connection.UserError("this bridge has no live sessions: update ganbridge on it")
    obj = context.active_object
    mat = obj.active_material if obj is not None and obj.type in MATERIAL_TYPES else None
    item = str(mat.get("ganbridge_item", "")) if mat is not None else ""
    if not item:
        raise connection.UserError("select an object wearing a GAN Bridge result first")
    entries = history.entries()
    entry = history.find(item, entries)
    if entry is None:
        raise connection.UserError("that result is not in this file's history")
    names, size = _images(entry)
    generator = str(entry.get("generator") or "")
    if generator not in STATE.generators:
        raise connection.UserError(f"the generator {generator!r} is not on the bridge now")
    toward, why = toward_pick(entry, entries)
    if why:
        raise connection.UserError(why)
    fields, preview = open_fields(entry, generator, size, toward["item"] if toward else "")
    stop(restore=True)  # one session at a time: the previous one's images get their pixels back
    rid = connection.send("live_open", **fields)
    assert obj is not None
    onto = "" if "item" in fields else item  # a preview of a fresh latent: commit onto the result itself
    view = LiveView(gl.LiveSession(rid, generator), item, entry_label(entry), obj.name, names, size, preview, onto)
    if toward:
        view.toward, view.toward_label = toward["item"], entry_label(toward)
    _set_current(view)
    LAST = ""
    connection.WORK.add(Work(apply=partial(_capture, view)))  # before any frame: FIFO
    connection.ensure_timer()
    return f"Live on {view.label}: waiting for the bridge"


def _images(entry: dict[str, Any]) -> tuple[dict[str, str], tuple[int, int]]:
    """A result's image names ("color" and its maps) and the colour image's size; UserError when
    it has none or they are gone from this file."""
    if entry.get("format") not in (None, "png") or not entry.get("images"):
        raise connection.UserError("live sliders work on image results, and this one has no images")
    names = {"color": entry["images"][0], **{k: m["image"] for k, m in (entry.get("maps") or {}).items()}}
    missing = [n for n in names.values() if bpy.data.images.get(n) is None]
    if missing:
        raise connection.UserError(f"the image {missing[0]!r} of that result is no longer in this file")
    color = bpy.data.images[names["color"]]
    return names, (int(color.size[0]), int(color.size[1]))


def open_fields(
    entry: dict[str, Any], generator: str, size: tuple[int, int], toward: str = ""
) -> tuple[dict[str, Any], str]:
    """The live_open fields for a result and why its preview differs, if it does. A result up to
    PREVIEW_MAX on its longer side goes live from its own latent. A larger generated one previews
    a fresh latent of its seed at a PREVIEW_MAX size (the bridge keeps a session at its latent's
    size, and a latent's size is its output's), and Commit applies the sliders to the result itself
    (live_commit's `onto`); one with no seed of its own goes live at its size, and so does one
    blended `toward` another result (whose latent has the result's size, and a blended state
    commits only without `onto`)."""
    if toward:
        slower = f"frames at the result's full {size[0]}x{size[1]} (a blend is not previewed smaller): slower"
        return {"item": entry["item"], "toward": toward}, slower if max(size) > PREVIEW_MAX else ""
    if max(size) <= PREVIEW_MAX:
        return {"item": entry["item"]}, ""
    recipe = entry.get("recipe") or {}
    made_with = recipe.get("params") or {}
    seed = recipe.get("seed")
    seeded = recipe.get("origin", "generate") == "generate" and isinstance(seed, int)
    if not seeded or "width" not in made_with or "height" not in made_with:
        return {"item": entry["item"]}, f"frames at the result's full {size[0]}x{size[1]}: slower"
    w, h = _preview_size(generator, size)
    fields = {"generator": generator, "params": {**made_with, "width": w, "height": h}, "seed": seed}
    return fields, f"previewed at {w}x{h} (a fresh latent of seed {seed}); Commit makes it at {size[0]}x{size[1]}"


def _preview_size(generator: str, size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled to PREVIEW_MAX on its longer side, as the schema takes it (within its bounds,
    and a multiple of its step should it have one)."""
    w, h = (max(1, side * PREVIEW_MAX // max(size)) for side in size)  # integers: 1000 -> 512, not 511
    fitted = gs.fit_size(params.controls(generator), w, h)
    return fitted.get("width", w), fitted.get("height", h)


def source(context: bpy.types.Context, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The history entry of the result the active object wears (what Start live goes live on)."""
    obj = context.active_object
    mat = obj.active_material if obj is not None and obj.type in MATERIAL_TYPES else None
    item = str(mat.get("ganbridge_item", "")) if mat is not None else ""
    return history.find(item, entries) if item else None


def toward_choices(entry: dict[str, Any], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results a session on `entry` can blend toward, newest first: the bridge blends only
    items of the same generator and size."""
    return [e for e in reversed(entries) if _blendable(entry, e)]


def _blendable(entry: dict[str, Any], other: dict[str, Any]) -> bool:
    return (
        other["item"] != entry["item"]
        and bool(other.get("images"))
        and other.get("generator") == entry.get("generator")
        and (other.get("width"), other.get("height")) == (entry.get("width"), entry.get("height"))
    )


def picked_toward() -> str:
    g = group()
    return str(g.toward) if g is not None else ""


def pick_toward(item: str) -> str:
    """The result the next session's Blend slider goes toward ("": none); returns the report."""
    g = group()
    if g is not None:
        g.toward = item
    return ""


def toward_pick(entry: dict[str, Any], entries: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The picked result a session on `entry` blends toward, or None and why the pick cannot be
    used ("" when nothing is picked)."""
    item = picked_toward()
    if not item:
        return None, ""
    other = history.find(item, entries)
    if other is None:
        return None, "the result picked to blend toward is no longer in this file's history: pick another"
    if not _blendable(entry, other):
        return None, f"{entry_label(other)} cannot be blended with this result: pick one of its generator and size"
    return other, ""


def entry_label(entry: dict[str, Any]) -> str:
    """What the panel calls a result: what it is and the start of its id."""
    from .provenance import label

    return f"{label(entry)} ({entry['item'][:8]})"


def _set_current(view: LiveView | None) -> None:
    global CURRENT
    CURRENT = view
    _fill_sliders(None)


def _fill_sliders(view: LiveView | None) -> None:
    """One slider per direction of `view`'s session, all at 0 (none without a view), Blend at 0 and
    Temperature at its start, set quietly: filling them is not the artist moving them."""
    global _quiet
    g = group()
    if g is None:
        return
    _quiet = True
    try:
        g.sliders.clear()
        for index in range(len(view.session.directions) if view is not None else 0):
            slider = g.sliders.add()
            slider.name, slider.index, slider.value = view.session.slider_label(index), index, 0.0
        g.blend = 0.0
        if view is not None and view.temperature is not None:
            g.temperature = view.temperature
    finally:
        _quiet = False


def _opened(view: LiveView, rendered: Any) -> None:
    """The session is open: the Temperature slider, when the generator has a temperature, starts
    at the one the bridge renders with (the result's own)."""
    control = next((c for c in params.controls(view.session.generator) if c.name == "temperature"), None)
    start = rendered.get("temperature") if isinstance(rendered, dict) else None
    if control is not None and control.kind == gs.FLOAT and isinstance(start, int | float):
        _define_temperature(control, float(start))
        view.temperature = float(start)
    _fill_sliders(view)


def _define_temperature(control: gs.Control, start: float) -> None:
    """The Temperature slider with this generator's bounds: a property's bounds are fixed when it
    is defined, so it is defined again for each session (the schema's, not a guess)."""
    GANBRIDGE_PG_live.temperature = bpy.props.FloatProperty(
        name=control.label,
        description=f"{control.description or control.label} of the live result; the material follows as frames come",
        default=start,
        min=control.minimum,  # a number control always has both bounds (ganbridge_schema)
        max=control.maximum,
        update=_temperature_moved,
    )


def _moving() -> LiveView | None:
    """The session an artist's move goes to: None while the add-on sets the sliders itself, while
    a commit is on its way, or before the session is open."""
    view = CURRENT
    if _quiet or view is None or view.commit or view.session.status != "open":
        return None
    return view


def _send(view: LiveView, fields: dict[str, Any]) -> None:
    """Send a move at once (the bridge folds what it cannot keep up with): a queue put, no wait."""
    try:
        connection.send("live_move", **fields)
    except connection.UserError as e:
        view.session.error = str(e)


def moved(index: int, value: float) -> None:
    """A direction slider's update callback."""
    view = _moving()
    if view is not None and 0 <= index < len(view.session.values):
        _send(view, view.session.move(index, value))


def blended(value: float) -> None:
    """The Blend slider's update callback."""
    view = _moving()
    if view is not None and view.toward:
        _send(view, view.session.move_blend(value))


def tempered(value: float) -> None:
    """The Temperature slider's update callback."""
    view = _moving()
    if view is not None and view.temperature is not None:
        _send(view, view.session.move_params(temperature=value))


def reset() -> str:
    """Every slider back to the start, in one move: directions and Blend at 0, Temperature the result's."""
    view = _require()
    fields = view.session.reset()
    if view.toward:
        fields |= view.session.move_blend(0.0)
    if view.temperature is not None:
        fields |= view.session.move_params(temperature=view.temperature)
    _fill_sliders(view)
    connection.send("live_move", **fields)
    return "Live: sliders back to the start"


def commit(rating_session: str) -> str:
    """Make the newest state a result; it replaces the live material on the object when it comes."""
    view = _require()
    job = Job("", "live", "Live commit", PLACE_ON_TARGET, view.obj)
    onto = {"onto": view.onto} if view.onto else {}  # the sliders applied to the full-size result
    view.commit = connection.submit(job, "live_commit", live=view.session.id, session=rating_session, **onto)
    connection.send("live_close", id=view.session.id)  # the commit has the newest state already
    return "Live: committing the newest state"


def stop(restore: bool = True, message: str = "") -> bool:
    """End the session; the images get their pixels from before back (unless `restore` is False:
    another file is being opened). Returns whether one was on."""
    global LAST
    view = CURRENT
    if view is None:
        return False
    _set_current(None)
    _ended.append(view.session.id)
    LAST = message
    if view.session.active and not view.commit:
        try:
            connection.send("live_close", id=view.session.id)
        except connection.UserError:
            pass  # no connection: the bridge has closed it already
    if restore:
        connection.WORK.add(Work(apply=partial(_restore, view)))
        connection.ensure_timer()
    return True


def _require() -> LiveView:
    view = CURRENT
    if view is None:
        raise connection.UserError("no live session: click Start live first")
    if view.commit:
        raise connection.UserError("the live result is being committed")
    if view.session.status != "open":
        raise connection.UserError("the live session is not open yet")
    return view


# --- what drain() calls ---------------------------------------------------------------------


def take(msg: dict[str, Any]) -> bool:
    """A bridge message for the live session on screen: taken in (True), or not one (False).
    Messages of a session that ended here are taken too, and dropped."""
    view = CURRENT
    rid = msg.get("id")
    if view is None or rid != view.session.id:
        return rid in _ended
    session = view.session
    was = session.status
    session.update(msg)
    kind = msg.get("type")
    if kind == "live_opened" and was == "opening":
        view.note = str(msg.get("note") or "")
        _opened(view, msg.get("params"))
    elif kind == "error" and session.status == "failed":
        what = "the bridge went away" if msg.get("code") == connection.gc.DISCONNECTED else session.error
        stop(restore=True, message=f"Live stopped: {what}")
        connection.report("ERROR", f"Live: {what}")
    elif kind == "live_closed" and not view.commit:
        stop(restore=True, message="Live stopped: the bridge closed the session")
    return True


def tick() -> None:
    """Once per drain: the newest frame not yet shown into the work queue, unless one is on its way
    already (then the next tick takes whatever is newest by the time that one is in)."""
    view = CURRENT
    if view is None:
        return
    if view.commit:
        job = STATE.jobs.get(view.commit)
        if job is None or not job.active:  # over without its result going in (that ends it first)
            why = job.error if job is not None and job.error else "its result did not go in (see the report)"
            stop(restore=True, message=f"Live commit failed: {why}")
        return
    if view.in_flight and not connection.WORK.busy:
        view.in_flight = 0  # the queue was emptied under it
    if view.in_flight:
        return
    frame = view.session.take_frame()
    if frame is None:
        return
    view.in_flight += 1
    connection.WORK.add(
        Work(
            apply=partial(_apply_frame, view, frame),
            prepare=partial(prepare_frame, frame, {k: view.size for k in view.images}),
            fail=partial(_frame_failed, view),
        )
    )


def prepare_frame(frame: dict[str, Any], sizes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """On the worker: a frame's PNGs ("color", then its maps) -> pixels for the images, scaled to
    each image's size when the preview is smaller (nearest pixel). Raises ResultError."""
    width, height = frame.get("width"), frame.get("height")
    payloads = {"color": frame.get("data", "")}
    payloads.update({k: m.get("data", "") for k, m in (frame.get("maps") or {}).items() if isinstance(m, dict)})
    out: dict[str, np.ndarray] = {}
    for name, b64 in payloads.items():
        if name not in sizes:
            continue  # a map the result's material does not have
        data = decode_png(b64, f"live {name}" if name != "color" else "live frame", width, height)
        try:
            pixels = png_decoder.decode(data)
        except png_decoder.PngError as e:
            raise ResultError(f"a live frame is damaged: {e}") from None
        if pixels is None:
            raise ResultError("a live frame is a PNG the add-on does not read")
        out[name] = scaled(pixels, *sizes[name])
    return out


def scaled(pixels: png_decoder.Pixels, width: int, height: int) -> np.ndarray:
    """The pixels at width x height (nearest pixel; as they are when the size is theirs)."""
    if (pixels.width, pixels.height) == (width, height):
        return pixels.rgba
    image = pixels.rgba.reshape(pixels.height, pixels.width, 4)
    ys = np.arange(height) * pixels.height // height
    xs = np.arange(width) * pixels.width // width
    return np.ascontiguousarray(image[ys][:, xs]).reshape(-1)


def _apply_frame(view: LiveView, frame: dict[str, Any], prepared: dict[str, np.ndarray]):
    """A frame into the images, one image per slice; nothing if the session ended meanwhile."""
    try:
        for name, rgba in prepared.items():
            if CURRENT is not view:
                return
            img = bpy.data.images.get(view.images[name])
            if img is not None and len(img.pixels) == rgba.size:
                img.pixels.foreach_set(rgba)
                img.update()
            yield
        view.frames += 1
        view.shown_seq = frame["seq"]
        view.applied_at.append(time.monotonic())
        view.render_ms = float(frame.get("render_ms") or 0.0)
    finally:
        view.in_flight = max(0, view.in_flight - 1)


def _frame_failed(view: LiveView, error: BaseException) -> None:
    view.in_flight = max(0, view.in_flight - 1)
    if CURRENT is view:
        view.session.error = str(error)


def _capture(view: LiveView, _prepared: None):
    """The images' pixels before the first frame, one image per slice, for Stop to put back."""
    for name in view.images.values():
        if CURRENT is not view:
            return
        img = bpy.data.images.get(name)
        if img is not None:
            pixels = np.empty(len(img.pixels), np.float32)
            img.pixels.foreach_get(pixels)
            view.originals[name] = pixels
        yield


def _restore(view: LiveView, _prepared: None):
    """The pixels from before back into the images, one image per slice."""
    for name, pixels in view.originals.items():
        img = bpy.data.images.get(name)
        if img is not None and len(img.pixels) == pixels.size:
            img.pixels.foreach_set(pixels)
            img.update()
        yield
    view.originals.clear()


def committed(rid: str) -> None:
    """The commit's result went onto the object (the apply operator): the images the session
    drove belong to the result it started from again, so they get their pixels back."""
    view = CURRENT
    if view is not None and view.commit == rid:
        stop(restore=True, message=f"Live committed: the object wears the new result ({view.label})")


def status_line() -> str:
    """frames/s while frames come, else what the session waits for or why there is none."""
    view = CURRENT
    if view is None:
        return LAST
    session = view.session
    if view.commit:
        return "Live: committing the newest state…"
    if session.status == "opening":
        return "Live: opening the session…"
    note = ""
    if not session.directions:
        note = f"no direction sliders: {view.note}" if view.note else "no direction sliders for this model"
    elif session.error:
        note = session.error
    elif view.preview:
        note = view.preview
    fps = view.fps(time.monotonic())
    if fps:
        head = f"Live: {fps:.1f} frames/s, {view.render_ms:.0f} ms a frame"
    elif view.frames:
        head = f"Live: waiting for a move (a frame takes {view.render_ms:.0f} ms)"
    else:
        head = "Live: waiting for the first frame"
    return f"{head}; {note}" if note else head


def _slider_moved(slider: Any, _context: Any) -> None:
    moved(slider.index, slider.value)


def _blend_moved(g: Any, _context: Any) -> None:
    blended(g.blend)


def _temperature_moved(g: Any, _context: Any) -> None:
    tempered(g.temperature)


# Last in the module: Blender evaluates these annotations (strings, with `from __future__ import
# annotations`) with this module's names as they are when the class is made, so whatever they name
# (the update callback) must be defined above them.
class GANBRIDGE_PG_slider(bpy.types.PropertyGroup):
    """One direction of the live session: its name, its place in `live_move` values, its position."""

    index: bpy.props.IntProperty(options={"HIDDEN"})
    value: bpy.props.FloatProperty(
        name="Value",
        default=0.0,
        min=-gl.SLIDER_RANGE,
        max=gl.SLIDER_RANGE,
        description="Move the live result along this direction; the material follows as frames come",
        update=_slider_moved,
    )


class GANBRIDGE_PG_live(bpy.types.PropertyGroup):
    """The live session's sliders (`temperature` is defined per session: _define_temperature) and
    the result the next session blends toward."""

    sliders: bpy.props.CollectionProperty(type=GANBRIDGE_PG_slider)
    blend: bpy.props.FloatProperty(
        name="Blend",
        default=0.0,
        min=0.0,
        max=1.0,
        subtype="FACTOR",
        description="Move the live result toward the other result: 0 is this one, 1 the other",
        update=_blend_moved,
    )
    toward: bpy.props.StringProperty(
        name="Blend toward",
        description="The result a live session's Blend slider goes toward (picked before Start live)",
    )


CLASSES = (GANBRIDGE_PG_slider, GANBRIDGE_PG_live)
