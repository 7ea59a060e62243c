"""Live sliders: a result's material changes in place while the artist drags.

Start opens a live session on the active object's result (`live_open`, docs/reference/protocol.md,
Live sessions); each slider is a float property on the window manager whose update callback sends
`live_move` at once. The bridge renders only the newest state; frames are kept by the shared
`LiveSession`, which hands over the newest one not yet shown. Each tick (drain) takes at most one
frame into the shared WorkQueue: its PNGs are decoded on the worker, then each image gets the new
pixels in a slice of its own (foreach_set, update): the same image datablocks, no new data, no
undo step. The images' pixels from before are kept and put back on Stop; Commit makes the newest
state an ordinary result (origin `live`) that goes onto the object in place of the live material.

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

from . import connection, history
from . import ganbridge_live as gl
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


def sliders() -> Any:
    """The window manager's slider properties (None before the add-on registered them)."""
    group = getattr(bpy.context.window_manager, "ganbridge_live", None)
    return group.sliders if group is not None else None


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
    entry = history.find(item)
    if entry is None:
        raise connection.UserError("that result is not in this file's history")
    if entry.get("format") not in (None, "png") or not entry.get("images"):
        raise connection.UserError("live sliders work on image results, and this one has no images")
    names = {"color": entry["images"][0], **{k: m["image"] for k, m in (entry.get("maps") or {}).items()}}
    images = {k: bpy.data.images.get(n) for k, n in names.items()}
    missing = [names[k] for k, img in images.items() if img is None]
    if missing:
        raise connection.UserError(f"the image {missing[0]!r} of that result is no longer in this file")
    generator = str(entry.get("generator") or "")
    if generator not in STATE.generators:
        raise connection.UserError(f"the generator {generator!r} is not on the bridge now")
    color = images["color"]
    assert color is not None
    size = (int(color.size[0]), int(color.size[1]))
    fields, preview = open_fields(entry, generator, size)
    stop(restore=True)  # one session at a time: the previous one's images get their pixels back
    rid = connection.send("live_open", **fields)
    assert obj is not None
    onto = "" if "item" in fields else item  # a preview of a fresh latent: commit onto the result itself
    view = LiveView(gl.LiveSession(rid, generator), item, _label(entry), obj.name, names, size, preview, onto)
    _set_current(view)
    LAST = ""
    connection.WORK.add(Work(apply=partial(_capture, view)))  # before any frame: FIFO
    connection.ensure_timer()
    return f"Live on {view.label}: waiting for the bridge"


def open_fields(entry: dict[str, Any], generator: str, size: tuple[int, int]) -> tuple[dict[str, Any], str]:
    """The live_open fields for a result and why its preview differs, if it does. A result up to
    PREVIEW_MAX on its longer side goes live from its own latent. A larger generated one previews
    a fresh latent of its seed at a PREVIEW_MAX size (the bridge keeps a session at its latent's
    size, and a latent's size is its output's), and Commit applies the sliders to the result itself
    (live_commit's `onto`); one with no seed of its own goes live at its size."""
    if max(size) <= PREVIEW_MAX:
        return {"item": entry["item"]}, ""
    recipe = entry.get("recipe") or {}
    params = recipe.get("params") or {}
    seed = recipe.get("seed")
    seeded = recipe.get("origin", "generate") == "generate" and isinstance(seed, int)
    if not seeded or "width" not in params or "height" not in params:
        return {"item": entry["item"]}, f"frames at the result's full {size[0]}x{size[1]}: slower"
    stride = _multiple(generator)
    scale = PREVIEW_MAX / max(size)
    w, h = (max(stride, int(side * scale) // stride * stride) for side in size)
    fields = {"generator": generator, "params": {**params, "width": w, "height": h}, "seed": seed}
    return fields, f"previewed at {w}x{h} (a fresh latent of seed {seed}); Commit makes it at {size[0]}x{size[1]}"


def _multiple(generator: str) -> int:
    props = (STATE.generators.get(generator, {}).get("params_schema") or {}).get("properties") or {}
    step = (props.get("width") or {}).get("multipleOf")
    return int(step) if isinstance(step, int) and step > 0 else 16


def _label(entry: dict[str, Any]) -> str:
    from .provenance import label

    return f"{label(entry)} ({entry['item'][:8]})"


def _set_current(view: LiveView | None) -> None:
    global CURRENT
    CURRENT = view
    _fill_sliders(None)


def _fill_sliders(view: LiveView | None) -> None:
    """One slider per direction of `view`'s session, all at 0 (none without a view), set quietly:
    filling them is not the artist moving them."""
    global _quiet
    items = sliders()
    if items is None:
        return
    _quiet = True
    try:
        items.clear()
        for index in range(len(view.session.directions) if view is not None else 0):
            slider = items.add()
            slider.name, slider.index, slider.value = view.session.slider_label(index), index, 0.0
    finally:
        _quiet = False


def moved(index: int, value: float) -> None:
    """A slider's update callback: send the move at once (the bridge folds what it cannot keep up with)."""
    view = CURRENT
    if _quiet or view is None or view.commit or view.session.status != "open":
        return
    if not 0 <= index < len(view.session.values):
        return
    try:
        connection.send("live_move", **view.session.move(index, value))
    except connection.UserError as e:
        view.session.error = str(e)


def reset() -> str:
    view = _require()
    fields = view.session.reset()
    _set_sliders([0.0] * len(view.session.values))
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


def _set_sliders(values: list[float]) -> None:
    global _quiet
    _quiet = True
    try:
        for slider, value in zip(sliders() or (), values):
            slider.value = value
    finally:
        _quiet = False


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
        _fill_sliders(view)
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
        note = f"no sliders: {view.note}" if view.note else "no sliders for this model"
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
    sliders: bpy.props.CollectionProperty(type=GANBRIDGE_PG_slider)


CLASSES = (GANBRIDGE_PG_slider, GANBRIDGE_PG_live)
