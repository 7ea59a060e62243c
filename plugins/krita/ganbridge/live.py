"""The docker's Live section: one slider per direction of the model, a Temperature slider (for a
generator that has that param), a Blend slider (for a session opened toward a second result), a
preview layer that changes in place while a slider is dragged, and Commit, which makes the state
shown an ordinary result.

The session's state is the shared LiveSession (ganbridge_live): the panel sends each slider move
at once (the bridge renders only the newest state and drops stale ones) and never waits for an
answer. Frames go through the connection's work queue like results: the newest frame not yet
shown is decoded on the worker, then written into the preview layer on the GUI thread; one frame
is on its way at a time, and when it is in, the newest that came meanwhile follows, so a fast drag
shows the latest state, never a backlog. The preview layer is added once (one undo step) and
then written in place (canvas.write_in_place: no undo step per frame).
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from krita import Krita

from . import canvas, connection
from . import ganbridge_client as gc
from . import ganbridge_live as gl
from . import ganbridge_schema as gs
from . import ganbridge_work as gw
from .qt import (
    HORIZONTAL,
    SELECTABLE,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSlider,
    QTimer,
    QVBoxLayout,
    QWidget,
)

PREVIEW_MAX = 512  # a fresh session's preview is the form's size, at most this many pixels a side
TICKS = 100  # slider steps per unit: of a move along a direction, of temperature, of blend
TEMPERATURE = "temperature"  # the param the Temperature slider moves (it keeps the latent's shapes)
FPS_WINDOW = 2.0  # seconds of shown frames the frames-per-second figure is taken over
STATUS_MS = 500  # how often the status line looks again (frames stopped coming, say)
KINDS = ("texture", "image")  # generators whose frames are images a paint layer can show


class LiveError(Exception):
    """A live action that cannot be done; the message is for the painter."""


@dataclass
class Knob:
    """A slider of the Live section and the label showing its value (slider steps / TICKS)."""

    slider: QSlider
    label: QLabel
    fmt: str  # how the label writes the value

    def show(self) -> float:
        """The slider's value, now on its label."""
        value = self.slider.value() / TICKS
        self.label.setText(format(value, self.fmt))
        return value

    def set_quietly(self, value: float) -> None:
        """Put the slider at `value` without sending a move (Reset sends one move for all)."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * TICKS))
        self.slider.blockSignals(False)
        self.show()


def param_control(info: dict, name: str) -> gs.Control | None:
    """The number control of param `name` in a generator's schema (its bounds), or None."""
    controls, _skipped = gs.controls_from_schema(info.get("params_schema") or {})
    return next((c for c in controls if c.name == name and c.kind == gs.FLOAT), None)


def preview_params(params: dict[str, Any], controls: list[gs.Control], limit: int = PREVIEW_MAX) -> dict[str, Any]:
    """The form's params for a fresh live session: its size, scaled down (aspect kept, rounded to
    what the generator accepts) to at most `limit` a side, and no extra maps, which would be
    rendered with every frame and are not shown."""
    out = dict(params)
    if out.get("maps"):
        out["maps"] = []
    w, h = out.get("width"), out.get("height")
    if isinstance(w, int) and isinstance(h, int) and max(w, h) > limit:
        scale = limit / max(w, h)
        by_name = {c.name: c for c in controls}
        for name, value in (("width", w), ("height", h)):
            c = by_name.get(name)
            fitted = int(value * scale)
            out[name] = min(gs.snap(c, fitted), limit) if c is not None else fitted
    return out


def preview_limit() -> int:
    """The largest preview side: PREVIEW_MAX, or `live_max_side` in kritarc's [ganbridge] group."""
    raw = Krita.instance().readSetting(connection.SETTINGS_GROUP, "live_max_side", str(PREVIEW_MAX))
    try:
        return max(16, int(raw))
    except ValueError:
        return PREVIEW_MAX


def preview_name(generator: str, params: dict[str, Any]) -> str:
    return " ".join(["GAN live", generator, str(params.get("model") or "")]).strip()


def find_preview(doc: Any, node: Any) -> Any:
    """The preview layer if it is still in its document (the painter may delete it, or undo it)."""
    return canvas.find_layer(doc, node.uniqueId().toString())


class LivePanel(QGroupBox):
    """The Live section. The docker hands it its live messages (`takes`), the connection's state
    (`on_connection`) and document switches (`on_document`); it asks the docker what to start
    from (`docker.live_source`) and to send a commit as one of its requests (`docker.commit_live`)."""

    def __init__(self, docker: Any, conn: connection.BridgeConnection) -> None:
        super().__init__("Live")
        self.setObjectName("ganbridge_live")
        self.docker = docker
        self.conn = conn
        self.session: gl.LiveSession | None = None
        self.doc: Any = None  # the document the session's preview goes into
        self.params: dict[str, Any] = {}  # what the session renders (live_opened's params)
        self.parents: list[str] = []  # the result it started from, if any
        self.generator = ""
        self.preview: Any = None  # the preview layer, once the first frame is in
        self.sliders: list[Knob] = []  # one per direction
        self.temperature: Knob | None = None  # when the generator has a temperature
        self.temperature_start = 1.0  # the session's temperature as it opened (Reset's)
        self.blend: Knob | None = None  # when the session was opened toward a second result
        self.in_flight = False  # a frame is being decoded or written; the next waits for it
        self.want_active = False  # a slider moved: the preview layer is to be the active one
        self.shown_at: deque[float] = deque()  # when each recent frame was shown
        self.render_ms = 0.0
        self.error = ""  # why the session failed or stopped, or a refused move
        self.note = ""  # a note under the status: no sliders (the bridge says why), or slow repaints
        self.frames_shown = 0
        self.repaints: dict[str, int] = {}  # frames written in place, by how they were shown (tests read it)
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(STATUS_MS)
        self.timer.timeout.connect(self.refresh_status)
        self.refresh()

    # --- layout ----------------------------------------------------------------------------------

    def _button(self, name: str, text: str, slot, tip: str) -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.setToolTip(tip)
        b.clicked.connect(lambda _checked=False: self._guard(slot))
        return b

    def _build(self) -> None:
        box = QVBoxLayout(self)
        grid = QGridLayout()
        self.start_button = self._button(
            "ganbridge_live_start", "Start live", self.start,
            "Sliders along the model's main ways of varying: from the selected thumbnail, or a new "
            "result of the form's generator and parameters",
        )  # fmt: skip
        self.reset_button = self._button(
            "ganbridge_live_reset", "Reset", self.reset,
            "Every slider back to where it started: directions and blend at 0, temperature as it opened",
        )  # fmt: skip
        self.commit_button = self._button(
            "ganbridge_live_commit", "Commit", self.commit, "The state shown as a new result layer, with its recipe"
        )
        self.stop_button = self._button(
            "ganbridge_live_stop", "Stop", self.stop, "End the live session and remove its preview layer"
        )
        for i, b in enumerate((self.start_button, self.reset_button, self.commit_button, self.stop_button)):
            grid.addWidget(b, i // 2, i % 2)
        box.addLayout(grid)
        self.slider_host = QWidget()
        self.slider_host.setObjectName("ganbridge_live_sliders")
        self.slider_form = QFormLayout(self.slider_host)
        self.slider_form.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.slider_host)
        self.status = QLabel("")
        self.status.setObjectName("ganbridge_live_status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(SELECTABLE)
        box.addWidget(self.status)

    def _guard(self, slot, *args) -> None:
        """Run a slot; a failure goes on the live status line, never into a traceback dialog."""
        try:
            slot(*args)
        except (LiveError, canvas.CanvasError, connection.NotConnected) as e:
            self.show_error(str(e))
        except Exception as e:  # a bug must not become a traceback dialog over the canvas
            self.show_error(f"internal error: {type(e).__name__}: {e}")

    @property
    def active(self) -> bool:
        return self.session is not None and self.session.active

    def refresh(self) -> None:
        """Buttons as the session allows, and the status line."""
        open_ = self.session is not None and self.session.status == "open"
        self.start_button.setEnabled(not self.active)
        for b in (self.reset_button, self.commit_button, self.stop_button):
            b.setEnabled(open_ if b is not self.stop_button else self.active)
        self.refresh_status()

    def show_error(self, text: str) -> None:
        self.error = text
        self.refresh_status()

    def status_text(self) -> str:
        s = self.session
        if self.error:
            return f"⚠ {self.error}"
        if s is None:
            return "Live: start a session to drag through the model's directions"
        if s.status == "opening":
            return "Live: opening a session…"
        if not self.active:
            return "Live: stopped"
        now = time.monotonic()
        while self.shown_at and now - self.shown_at[0] > FPS_WINDOW:
            self.shown_at.popleft()
        if s.shown < 0 or (s.shown < s.seq and not self.shown_at):
            return "Live: waiting for frames…"
        if len(self.shown_at) >= 2:
            span = self.shown_at[-1] - self.shown_at[0]
            fps = (len(self.shown_at) - 1) / span if span > 0 else 0.0
            return f"Live: {fps:.1f} frames/s, {self.render_ms:.0f} ms to render a frame"
        return f"Live: ready ({self.render_ms:.0f} ms to render a frame)"

    def refresh_status(self) -> None:
        text = self.status_text()
        if self.note and not self.error:
            text = f"{text}\n{self.note}"
        if text != self.status.text():
            self.status.setText(text)
            self.status.setToolTip(text)
            self.status.setStyleSheet("color: #d05050" if self.error else "")

    def _clear_sliders(self) -> None:
        while self.slider_form.rowCount():
            self.slider_form.removeRow(0)
        self.sliders, self.temperature, self.blend = [], None, None

    def _knob(self, name: str, label: str, span: tuple[float, float], start: float, fmt: str, tip: str,
              on_move: Callable[..., None]) -> Knob:  # fmt: skip
        """A slider row (slider, its value) from span[0] to span[1], at `start`; each step the
        painter drags it to calls on_move(position) through _guard."""
        slider = QSlider(HORIZONTAL)
        slider.setObjectName(name)
        slider.setRange(round(span[0] * TICKS), round(span[1] * TICKS))
        slider.setSingleStep(TICKS // 10)
        slider.setPageStep(TICKS // 4)
        slider.setToolTip(tip)
        knob = Knob(slider, QLabel(), fmt)
        knob.set_quietly(start)
        slider.valueChanged.connect(functools.partial(self._guard, on_move))
        row = QWidget()
        lay = QGridLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(slider, 0, 0)
        lay.addWidget(knob.label, 0, 1)
        self.slider_form.addRow(label, row)
        return knob

    def _set_sliders(self, session: gl.LiveSession, toward: Any) -> None:
        """A slider per direction, then Temperature (if the generator has it) and Blend (if the
        session has a `toward` result)."""
        self._clear_sliders()
        reach = gl.SLIDER_RANGE
        for i, d in enumerate(session.directions):
            tip = f"{d.get('name')}: moves the latent along it (change {d.get('change', '?')} a unit)"
            knob = self._knob(f"ganbridge_live_slider_{i}", session.slider_label(i), (-reach, reach), 0.0, "+.2f",
                              tip, functools.partial(self._move, i))  # fmt: skip
            self.sliders.append(knob)
        control = param_control(self.docker.generators.get(self.generator) or {}, TEMPERATURE)
        if control is not None and control.minimum is not None and control.maximum is not None:
            lo, hi = control.minimum, control.maximum
            self.temperature_start = max(lo, min(hi, float(self.params.get(TEMPERATURE, control.default))))
            self.temperature = self._knob("ganbridge_live_temperature", control.label, (lo, hi),
                                          self.temperature_start, ".2f", control.description or "Temperature",
                                          self._move_temperature)  # fmt: skip
        if toward:
            tip = f"How far toward the second result ({str(toward)[:8]}): 0 the first, 1 the second"
            self.blend = self._knob("ganbridge_live_blend", "Blend", (0.0, 1.0), 0.0, ".2f", tip, self._move_blend)

    # --- actions ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self.active:
            raise LiveError("a live session is already open: Stop it first")
        doc, fields, generator, parents = self.docker.live_source()
        rid = self.conn.request("live_open", **fields)
        self.session = gl.LiveSession(rid, generator)
        self.doc, self.generator, self.parents = doc, generator, parents
        self.params = dict(fields.get("params") or {})
        self.preview, self.in_flight, self.want_active = None, False, False
        self.shown_at.clear()
        self.error, self.note, self.render_ms, self.frames_shown, self.repaints = "", "", 0.0, 0, {}
        self._clear_sliders()
        self.timer.start()
        self.refresh()

    def _send_move(self, fields: dict[str, Any]) -> None:
        try:
            self.conn.request("live_move", **fields)
        except connection.NotConnected as e:
            self.end(f"live stopped: {e}")
            return
        self.want_active = True  # the painter is dragging: the preview is what to look at
        self.refresh_status()

    def _open_session(self) -> gl.LiveSession | None:
        s = self.session
        return s if s is not None and s.status == "open" else None

    def _move(self, index: int, _position: int) -> None:
        s = self._open_session()
        if s is not None and index < len(s.values):
            self._send_move(s.move(index, self.sliders[index].show()))

    def _move_temperature(self, _position: int) -> None:
        s = self._open_session()
        if s is not None and self.temperature is not None:
            self._send_move(s.move_params(**{TEMPERATURE: self.temperature.show()}))

    def _move_blend(self, _position: int) -> None:
        s = self._open_session()
        if s is not None and self.blend is not None:
            self._send_move(s.move_blend(self.blend.show()))

    def reset(self) -> None:
        """Every slider back to where it started, in one move (whose seq is the newest of the
        session's own numbers: each part of it takes one)."""
        s = self._open_session()
        if s is None:
            raise LiveError("no live session is open")
        fields: dict[str, Any] = {}
        if self.blend is not None:
            self.blend.set_quietly(0.0)
            fields.update(s.move_blend(0.0))
        if self.temperature is not None and TEMPERATURE in s.params:
            self.temperature.set_quietly(self.temperature_start)
            fields.update(s.move_params(**{TEMPERATURE: self.temperature_start}))
        for knob in self.sliders:
            knob.set_quietly(0.0)
        fields.update(s.reset())
        self._send_move(fields)

    def commit(self) -> None:
        s = self.session
        if s is None or s.status != "open":
            raise LiveError("no live session is open: Start live first")
        if self.doc not in Krita.instance().documents():
            raise LiveError("the live session's document was closed")
        # The params it renders with: the session's, with what the moves changed (temperature).
        self.docker.commit_live(s.id, self.doc, self.generator, {**self.params, **s.params}, self.parents)

    def stop(self) -> None:
        """Close the session on the bridge and take the preview layer out."""
        s = self.session
        if s is not None and s.active:
            try:
                self.conn.request("live_close", id=s.id)
            except connection.NotConnected:
                pass  # no bridge, no session there either
        self.end("")

    def end(self, reason: str) -> None:
        """The session is over (stopped, failed, its document gone): no more moves or frames, the
        preview layer removed, and `reason` on the status line if there is one."""
        s = self.session
        if s is not None and s.active:
            if reason:
                s.fail(reason)
            else:
                s.close()
        self.error, self.note = reason, ""
        preview, doc = self.preview, self.doc
        self.preview = None
        if preview is not None:
            # After any frame already queued (which now does nothing): a layer removal is one long
            # host call, so it gets a tick of its own.
            self.conn.work.add(gw.Work(apply=lambda _p: self._remove(doc, preview)))
        self._clear_sliders()
        self.timer.stop()
        self.refresh()

    def _remove(self, doc: Any, preview: Any):
        yield gw.NEXT_TICK
        try:
            canvas.remove_preview(doc, preview)
        except Exception as e:
            self.show_error(f"could not remove the live preview layer: {type(e).__name__}: {e}")

    # --- from the docker -----------------------------------------------------------------------------

    def takes(self, msg: dict) -> bool:
        """Handle a bridge message if it belongs to this panel's session (at once, on the GUI
        thread: it only updates state, and frames are queued as work)."""
        s = self.session
        if s is None or not s.active or not s.update(msg):
            return False
        kind = msg.get("type")
        if kind == "live_opened":
            self.params = dict(msg.get("params") or self.params)
            self._set_sliders(s, msg.get("toward"))
            if not s.directions:
                note = msg.get("note") or "this model has no directions"
                self.note = f"No sliders: {note}. Commit still makes the result shown."
        elif kind == "live_frame":
            self._pump()
        elif kind == "live_closed":
            self.end("")
            return True
        elif kind == "error":
            if s.status == "failed":
                gone = msg.get("code") in (gc.DISCONNECTED, gc.NOT_CONNECTED)
                self.end("live stopped: the bridge went away" if gone else f"live: {s.error}")
                return True
            self.error = f"live: {s.error}"  # a bad move: the session goes on
        self.refresh()
        return True

    def on_connection(self, state: gc.ConnectionState) -> None:
        if self.active and state.status != "connected":
            self.end(f"live stopped: {state.detail or state.status}")

    def on_document(self, doc: Any) -> None:
        """The active document changed: a session belongs to its own document, so it stops."""
        if self.active and doc != self.doc:
            self.stop()
            self.error = "live stopped: another document became active"
            self.refresh_status()

    # --- frames ----------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Queue the newest frame not yet shown, unless one is already on its way."""
        s = self.session
        if self.in_flight or s is None or not s.active:
            return
        frame = s.take_frame()
        if frame is None:
            return
        self.in_flight = True
        self.conn.work.add(
            gw.Work(
                apply=functools.partial(self._apply, s, frame),
                prepare=functools.partial(self._decode, frame),
                fail=functools.partial(self._failed, s),
            )
        )

    @staticmethod
    def _decode(frame: dict) -> canvas.Prepared:
        """On the worker thread: the frame's PNG as layer pixels (as a result is decoded; its maps,
        which a session started from a result with maps renders, are not shown)."""
        if frame.get("format") != "png":
            raise canvas.CanvasError(f"a {frame.get('format')} frame cannot be shown in a paint layer")
        return canvas.prepare(frame, None, 1, maps=False)

    def _failed(self, session: gl.LiveSession, error: BaseException) -> None:
        self.in_flight = False
        if session is self.session and session.active:
            self.end(f"live stopped: {error}")

    def _apply(self, session: gl.LiveSession, frame: dict, prepared: canvas.Prepared):
        """On the GUI thread: the first frame makes the preview layer, later ones go into it."""
        try:
            yield from self._show(session, frame, prepared)
        except Exception as e:
            if session is self.session and session.active:
                text = str(e) if isinstance(e, canvas.CanvasError) else f"{type(e).__name__}: {e}"
                self.end(f"live stopped: {text}")
        finally:
            self.in_flight = False
        self._pump()

    def _alive(self, session: gl.LiveSession) -> bool:
        return session is self.session and session.active

    def _show(self, session: gl.LiveSession, frame: dict, prepared: canvas.Prepared):
        if not self._alive(session):
            return
        if self.doc not in Krita.instance().documents():
            raise canvas.CanvasError("its document was closed")
        if self.preview is None:
            name = preview_name(self.generator, self.params)
            node = yield from canvas.create_preview(self.doc, prepared, name, lambda: self._alive(session))
            if node is None:
                return
            if not self._alive(session):  # stopped while it went in
                canvas.remove_preview(self.doc, node)
                return
            self.preview = node
        else:
            if find_preview(self.doc, self.preview) is None:  # deleted or undone by the painter
                self.preview = None
                yield from self._show(session, frame, prepared)
                return
            canvas.write_pixels(self.preview, prepared)
            if self.want_active and not canvas.is_active(self.doc, self.preview):
                # The painter is dragging a slider: the preview is what they look at (and Krita
                # repaints the active layer alone, see canvas.repaint).
                self.doc.setActiveNode(self.preview)
            how = canvas.repaint(self.doc, self.preview)
            self.repaints[how] = self.repaints.get(how, 0) + 1
            if how == canvas.IMAGE and not self.note:
                self.note = (
                    "Krita redraws the whole image for each frame (the Layers docker is closed, or more "
                    "layers are selected in it): slower on a large document."
                )
        self.want_active = False
        self.error = ""  # a refused move before this one is old news
        self.frames_shown += 1
        self.render_ms = float(frame.get("render_ms") or 0.0)
        self.shown_at.append(time.monotonic())
        self.refresh_status()
