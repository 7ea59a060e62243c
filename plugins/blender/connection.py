"""Where the network meets Blender: one BridgeClient, drained on the main thread.

The client's threads never touch bpy. `drain()` is the only place bridge events become Blender
data: a `bpy.app.timers` timer calls it in the UI (and tests call it directly, since timers do not
fire in background mode). Events go through a `WorkQueue` in arrival order: a result is decoded on
its worker thread, then made a slice per tick (an image, then the material), so no tick holds the UI
for long. The last slice is the `ganbridge.apply_result` operator, so each result is one undo step.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import bpy

from . import export, history, live, materials, params, thumbnails
from . import ganbridge_client as gc
from .ganbridge_work import Work, WorkQueue
from .state import PLACE_ON_TARGET, STATE, Job

DRAIN_INTERVAL = 0.1  # seconds between timer drains in the UI
BUSY_INTERVAL = 0.02  # ... while results are being applied a slice per tick

_client: gc.BridgeClient | None = None
# apply key -> (item, job, index in the job, its images made so far, what they were made into)
_pending: dict[str, tuple[dict, Job, int, dict, materials.Created]] = {}
_keys = itertools.count(1)
WORK = WorkQueue()


class UserError(Exception):
    """Something the artist must fix; the message says what."""


def prefs() -> Any:
    return bpy.context.preferences.addons[__package__].preferences


def client() -> gc.BridgeClient | None:
    return _client


def connect(url: str, token: str) -> None:
    """Start (or restart) the connection; returns at once, the state arrives through drain()."""
    global _client
    try:
        url = gc.check_url(url)
    except gc.BadUrl as e:
        raise UserError(str(e)) from None
    if not gc.is_loopback(url) and not bpy.app.online_access:
        raise UserError(
            "Blender's online access is off, and the bridge URL is not on this computer: "
            "allow it in Preferences > System > Network, or use a ws://127.0.0.1 URL"
        )
    disconnect()
    _client = gc.BridgeClient(url, token, client_name=f"Blender {bpy.app.version_string}")
    _client.start()
    STATE.status, STATE.detail, STATE.last_error = "connecting", f"connecting to {url}", ""
    ensure_timer()


def ensure_timer() -> None:
    """The UI timer that drains the bridge and runs the work queue (also with no bridge, while
    work is queued); it survives opening another file."""
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=DRAIN_INTERVAL, persistent=True)


def disconnect() -> None:
    global _client
    if _client is None:
        return
    live.stop(restore=True, message="Live stopped: disconnected")
    old, _client = _client, None
    old.stop(timeout=2.0)
    for job in STATE.active_jobs():
        job.fail("disconnected")
    STATE.status, STATE.detail, STATE.server = "disconnected", "disconnected", ""


def submit(job: Job, kind: str, **fields: Any) -> str:
    """Send a request that produces results; the job tracks it until it ends."""
    job.rid = send(kind, **fields)
    job.total = int(fields.get("count") or fields.get("steps") or 1)  # until the bridge's progress says
    STATE.jobs[job.rid] = job
    STATE.forget_finished()
    return job.rid


def send(kind: str, **fields: Any) -> str:
    if _client is None:
        raise UserError("not connected to the bridge: click Connect in the GAN Bridge panel")
    if not _client.connected:
        raise UserError(f"not connected to the bridge ({_client.state.detail or _client.state.status})")
    return _client.request(kind, **fields)


def cancel_all() -> int:
    jobs = STATE.active_jobs()
    for job in jobs:
        send("cancel", id=job.rid)
    return len(jobs)


def cancel(rid: str) -> str:
    """Stop one request; its results so far stay. Returns its label."""
    job = STATE.jobs.get(rid)
    if job is None or not job.active:
        raise UserError("that request has already finished")
    send("cancel", id=rid)
    return job.label


def _timer() -> float | None:
    if _client is None and not WORK.busy:  # after a disconnect, results already here still go in
        return None
    try:
        drain()
    except Exception as e:  # a timer that raises is unregistered by Blender: keep the UI alive
        STATE.last_error = f"internal error while applying bridge events: {e}"
    return BUSY_INTERVAL if WORK.busy or live.active() else DRAIN_INTERVAL


def drain(limit: int = 200) -> int:
    """Take in what arrived from the bridge and apply it for one tick's time budget, on the main
    thread. Returns the number of events taken in. A live session's messages go to `live`, which
    queues at most its newest frame per tick."""
    events = _client.poll(limit) if _client is not None else []
    for event in events:
        if event.kind == "state":
            WORK.add(Work(apply=partial(_on_event, _on_state, event.data)))
        elif not live.take(event.data):
            _queue_message(event.data)
    ran = WORK.run()
    live.tick()  # after the run: a frame that just went in makes way for the newest at once
    if ran or events:
        _redraw()
    return len(events)


def _on_event(handler: Any, data: Any, _prepared: None) -> None:
    handler(data)


def _queue_message(msg: dict) -> None:
    job = STATE.jobs.get(msg.get("id")) if isinstance(msg.get("id"), str) else None
    if msg.get("type") != "result" or job is None:
        WORK.add(Work(apply=partial(_on_event, _on_message, msg)))
        return
    folder = materials.image_folder()  # read here: the worker must not touch bpy
    if folder is None and bpy.context.scene.ganbridge.image_files:
        STATE.last_info = "Images packed into the .blend: save it first to keep them as files beside it"
    for item in msg.get("items", []):
        index = job.received
        job.received += 1
        image = item.get("format") == "png"
        WORK.add(
            Work(
                apply=partial(_apply_steps, item, job, index),
                prepare=partial(materials.prepare, item, folder, materials.result_label(item, job.kind))
                if image
                else None,
                fail=partial(_apply_failed, job),
            )
        )


def _on_state(state: gc.ConnectionState) -> None:
    previous = STATE.status
    STATE.status, STATE.detail, STATE.server, STATE.limits = state.status, state.detail, state.server, state.limits
    STATE.extensions = list(state.extensions)
    if state.status == "connected":
        STATE.generators = {g["name"]: g for g in state.generators}
        params.sync(STATE.generators)
        _pick_default_generator()
    elif state.status == "unauthorized" and previous != "unauthorized":
        report("ERROR", state.detail)
    elif state.status == "disconnected" and previous == "connected":
        report("WARNING", state.detail)


def _pick_default_generator() -> None:
    settings = bpy.context.scene.ganbridge
    if not settings.generator and STATE.generators:
        settings.generator = next(iter(STATE.generators))


def _on_message(msg: dict) -> None:
    kind, rid = msg.get("type"), msg.get("id")
    job = STATE.jobs.get(rid) if isinstance(rid, str) else None
    if kind != "error" and job and job.update(msg):  # accepted, queued, progress, done, cancelled
        if kind == "cancelled":
            STATE.last_info = f"{job.label}: cancelled"
    elif kind == "error":
        _on_error(msg, job)
    elif kind == "item" and rid in STATE.recipe_requests:
        history.update(STATE.recipe_requests.pop(rid), recipe=_recipe(msg))
    elif kind == "item" and rid in STATE.export_requests:
        _on_export(msg, *STATE.export_requests.pop(rid))
    elif kind == "ack" and rid in STATE.feedback_requests:
        item, rating = STATE.feedback_requests.pop(rid)
        history.update(item, rating=rating)
        STATE.last_info = {1: "Liked", -1: "Disliked", 0: "Rating cleared"}[rating]
    elif kind == "generators":
        STATE.generators = {g["name"]: g for g in msg.get("generators", [])}
        params.sync(STATE.generators)


def _recipe(msg: dict) -> dict:
    keys = ("params", "checkpoint", "seed", "origin", "parents", "how", "session", "created")
    return {k: msg.get(k) for k in keys}


def request_export(item: str, path: str, why: str) -> str:
    """Ask the bridge for the item's stored files; they are written when its reply is drained, so
    Blender never waits on the network. `why`: why the packed images could not be used."""
    if _client is None or not _client.connected:
        raise UserError(f"{why}, and the bridge is not connected to send the original: connect, then export again")
    STATE.export_requests[send("item", item=item, data=True)] = (item, path)
    return f"{why[0].upper()}{why[1:]}: asking the bridge for the original file"


def _on_export(msg: dict, item: str, path: str) -> None:
    try:
        written = export.write(path, export.files_from_reply(msg))
    except export.ExportError as e:
        report("ERROR", f"Export failed: {e}")
        return
    entry = history.find(item)
    if entry is not None and not entry.get("recipe"):
        history.update(item, recipe=_recipe(msg))  # the reply has it too; file it if it was missed
    report("INFO", export.describe(written))


def _on_error(msg: dict, job: Job | None) -> None:
    text = str(msg.get("message", "unknown error"))
    code = msg.get("code", "")
    rid = msg.get("id")
    STATE.recipe_requests.pop(rid, None)
    if STATE.feedback_requests.pop(rid, None) is not None:
        report("ERROR", f"Rating not saved: {text}")
        return
    if STATE.export_requests.pop(rid, None) is not None:
        if code == gc.DISCONNECTED:
            text = "the bridge went away before it sent the file (nothing was written); export again"
        report("ERROR", f"Export failed: {text}")
        return
    if job is not None:
        job.fail(text)
        if code == gc.DISCONNECTED:
            text = f"{job.label}: the bridge went away before it finished (nothing was changed); try again"
        else:
            text = f"{job.label}: {text}"
    report("ERROR", text)


def _apply_steps(item: dict, job: Job, index: int, prepared: materials.Prepared | None) -> Iterator[None]:
    """One result into the scene, a slice at a time: each image, then the apply operator (the
    material, the plane, the history: one undo step). All or nothing."""
    label = materials.result_label(item, job.kind)
    try:
        with materials.all_or_nothing() as created:
            images: dict[str, tuple[bpy.types.Image, bytes]] = {}
            files = prepared.files if prepared else {}
            created.files += files.values()  # written by the worker: removed again on a rollback
            for name, (png, pixels) in (prepared.images if prepared else {}).items():
                try:
                    img = materials.result_image(
                        created, materials.image_name(label, name), png, pixels, name != "color", files.get(name, "")
                    )
                except materials.ResultError as e:
                    _apply_failed(job, e)
                    raise _RolledBack from None
                images[name] = (img, png)
                yield
            key = f"r{next(_keys)}"
            _pending[key] = (item, job, index, images, created)
            try:
                finished = bpy.ops.ganbridge.apply_result(key=key) == {"FINISHED"}
            finally:
                _pending.pop(key, None)
            if not finished:  # the operator reported why
                raise _RolledBack
            thumbnails.store(item["item"], prepared.thumbnail if prepared else None)
    except _RolledBack:
        return


class _RolledBack(Exception):
    """A result that failed part way (already reported): its datablocks are removed again."""


def _apply_failed(job: Job, error: BaseException) -> None:
    report("ERROR", f"{job.label}: {error} (nothing was changed)")


def take_pending(key: str) -> tuple[dict, Job, int, dict, materials.Created] | None:
    return _pending.pop(key, None)


def apply_item(
    item: dict, job: Job, index: int, images: dict[str, tuple[bpy.types.Image, bytes]], created: materials.Created
) -> dict:
    """Put one result into the scene and the history (called by the apply operator)."""
    from .materials import ResultError, apply_texture, result_label

    if item.get("format") != "png":
        made = {"file": _save_beside_blend(item)}
    else:
        target = bpy.data.objects.get(job.target) if job.target else None
        on_target = job.placement == PLACE_ON_TARGET and index == 0  # the rest line up beside it
        placement = (target, on_target, result_label(item, job.kind))
        try:
            made = apply_texture(item, images, created, placement, bpy.context.scene.ganbridge.tiling)
        except ResultError:
            raise
        except Exception as e:  # anything Blender raised while building: report it, the caller rolls back
            raise ResultError(f"could not apply the result: {e}") from e
    entry = {
        "item": item["item"],
        "generator": item.get("generator"),
        "seed": item.get("seed"),
        "format": item.get("format"),
        "width": item.get("width"),
        "height": item.get("height"),
        "job": job.kind,
        "rating": 0,
        "created": time.time(),
        **made,
    }
    history.add(entry)
    if _client is not None:
        STATE.recipe_requests[_client.request("item", item=item["item"])] = item["item"]
    STATE.last_info = f"{job.label}: result {index + 1} applied"
    if job.kind == "live":
        live.committed(job.rid)  # the live images belong to the result it started from again
    return entry


def _save_beside_blend(item: dict) -> str:
    """Non-image results (music) as files next to the .blend: Blender has no MIDI data type."""
    from .materials import ResultError

    if not bpy.data.filepath:
        raise ResultError(f"save the .blend first: the {item.get('format')} result is written next to it")
    try:
        data = gc.payload(item.get("data"))
    except ValueError:
        raise ResultError("the result from the bridge is missing or not valid base64") from None
    name = re.sub(r"[^\w.-]", "_", f"{item.get('generator', 'gan')}-{item['item']}.{item.get('format', 'bin')}")
    path = os.path.join(os.path.dirname(bpy.data.filepath), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def report(level: str, message: str) -> None:
    """Into the panel's status and Blender's report area (info editor / status bar)."""
    if level == "ERROR":
        STATE.last_error = message
    else:
        STATE.last_info = message
    try:
        bpy.ops.ganbridge.report(level=level, message=message)
    except Exception:
        print(f"GAN Bridge {level}: {message}")


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
