"""The "GAN Bridge" docker: generator and its parameters (from the bridge's schema), actions,
a strip of result thumbnails, and a status line. Every slot catches its own failures and shows
them in the status line: no traceback dialogs, and the canvas is never blocked."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from krita import DockWidget, Krita

from . import canvas, connection, export, live, provenance, recipes
from . import ganbridge_client as gc
from . import ganbridge_jobs as gj
from . import ganbridge_presets as gp
from . import ganbridge_recipes as gr
from . import ganbridge_schema as gs
from . import ganbridge_work as gw
from .qt import (
    ADJUST,
    EXTENDED_SELECTION,
    ICON_MODE,
    OK_CANCEL,
    PASSWORD,
    SELECTABLE,
    USER_ROLE,
    VERTICAL,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QIcon,
    QImage,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPixmap,
    QProgressBar,
    QPushButton,
    QSize,
    QSpinBox,
    QSplitter,
    QTimer,
    QVBoxLayout,
    QWidget,
    run_dialog,
)

THUMB = 72
PRESET_PROMPT, NO_PRESETS = "Presets…", "No presets yet"
WATCH_MS = 250  # how often the provenance view looks at the active layer (a local read, no request)
DOCKERS: list[GanBridgeDocker] = []


@dataclass
class Job(gj.Progress):
    """A request the docker sent: where its results go, and (from Progress) how far it is."""

    kind: str
    label: str
    doc: Any
    params: dict = field(default_factory=dict)
    region: canvas.Region | None = None
    parents: list[str] = field(default_factory=list)  # the results it comes from (variations, blend)

    def describe(self) -> str:
        return f"{self.label}: {self.progress_text()}"


class JobRow(QWidget):
    """A running or queued request under the strip: a progress bar saying what it is and how far
    (or its place in the queue), and a button that cancels only it."""

    def __init__(self, rid: str, cancel: Any) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setObjectName("ganbridge_job")
        self.bar.setRange(0, 1000)  # determinate even while queued: a busy animation repaints forever
        self.button = QPushButton("✕")
        self.button.setObjectName("ganbridge_cancel_job")
        self.button.setToolTip("Cancel this request")
        self.button.clicked.connect(lambda _checked=False: cancel(rid))
        row.addWidget(self.bar, 1)
        row.addWidget(self.button)

    def show_job(self, job: Job) -> None:
        self.bar.setValue(int(job.fraction * 1000))
        self.bar.setFormat(job.describe())
        self.bar.setToolTip(job.describe())


def guarded(method):
    """A slot that reports failures in the status line instead of raising into Qt."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (
            canvas.CanvasError,
            connection.NotConnected,
            export.ExportError,
            gc.BadUrl,
            gp.PresetError,
            UserError,
        ) as e:
            self.show_error(str(e))
        except Exception as e:  # a bug must not become a traceback dialog over the canvas
            self.show_error(f"internal error: {type(e).__name__}: {e}")

    return wrapper


class UserError(Exception):
    pass


@dataclass
class Shown:
    """What the provenance view and Export act on: a thumbnail's or the active layer's result."""

    key: str  # "item:ID" for a thumbnail, "layer:UUID" for the active layer, "" for nothing
    recipe: dict
    name: str  # the layer's name, for the exported file's default name


class GanBridgeDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("GAN Bridge")
        self.conn = connection.shared()
        self.jobs: dict[str, Job] = {}
        self.job_rows: dict[str, JobRow] = {}
        self.recipe_requests: dict[str, tuple[Any, str]] = {}
        self.feedback_requests: dict[str, tuple[str, int]] = {}
        self.export_requests: dict[str, str] = {}  # request id -> the path the result goes to
        self.item_recipes: dict[str, dict] = {}  # thumbnails' recipes, whichever document they went to
        self.shown = ""  # the key (see Shown) of what the provenance view describes
        self.generators: dict[str, dict] = {}
        self.controls: list[gs.Control] = []
        self.inputs: dict[str, tuple[QWidget, QCheckBox | None]] = {}
        self.last_error = ""
        self.size_edited = False
        # each generator's form as the painter left it, restored on switching back (and on reconnect)
        self.kept_values: dict[str, dict[str, tuple[Any, bool]]] = {}
        self.form_generator = ""  # the generator whose controls the form holds
        self.strip_documents: list[Any] = []  # documents whose stored results the strip has taken in
        self.strip_queue: list[tuple[Any, str, dict]] = []  # (document, layer id, recipe) still to add
        self._build()
        self.conn.stateChanged.connect(self.queue_state)
        self.conn.message.connect(self.queue_message)
        self.on_state(self.conn.state)
        # Krita 5's scripting API has no "active layer changed" signal: a timer compares the active
        # layer's id with the one shown, which costs microseconds and never asks the bridge.
        self.watch = QTimer(self)
        self.watch.setInterval(WATCH_MS)
        self.watch.timeout.connect(self.watch_active_layer)
        self.watch.start()
        self.visibilityChanged.connect(self._visibility)
        DOCKERS.append(self)

    # --- layout ------------------------------------------------------------------------------

    def _button(self, name: str, text: str, slot, tip: str = "") -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.setToolTip(tip)
        b.clicked.connect(lambda _checked=False: slot())  # Qt passes `checked`; the slots take nothing
        return b

    def _build(self) -> None:
        root = QWidget()
        box = QVBoxLayout(root)
        row = QHBoxLayout()
        self.status = QLabel("not connected")
        self.status.setObjectName("ganbridge_status")
        self.status.setWordWrap(True)  # a long message takes more lines, never a wider docker
        self.status.setTextInteractionFlags(SELECTABLE)  # so it can be copied into a bug report
        row.addWidget(self.status, 1)
        row.addWidget(self._button("ganbridge_connect", "Connect", self.reconnect, "Connect to the bridge again"))
        row.addWidget(self._button("ganbridge_settings", "Settings…", self.open_settings, "Bridge URL and token"))
        box.addLayout(row)
        self.generator = QComboBox()
        self.generator.setObjectName("ganbridge_generator")
        self.generator.currentTextChanged.connect(self.on_generator)
        box.addWidget(self.generator)
        row = QHBoxLayout()
        self.preset = QComboBox()
        self.preset.setObjectName("ganbridge_preset")
        self.preset.setToolTip("Load a saved set of this generator's parameters")
        self.preset.activated.connect(lambda index: self.load_preset(self.preset.itemText(index)))
        row.addWidget(self.preset, 1)
        row.addWidget(
            self._button("ganbridge_save_preset", "Save…", self.save_preset, "Save these parameters as a preset")
        )
        row.addWidget(self._button("ganbridge_delete_preset", "Delete", self.delete_preset, "Delete the chosen preset"))
        box.addLayout(row)
        self.form_host = QWidget()
        self.form_host.setObjectName("ganbridge_params")
        self.form = QFormLayout(self.form_host)
        box.addWidget(self.form_host)
        row = QHBoxLayout()
        self.count = QSpinBox()
        self.count.setObjectName("ganbridge_count")
        self.count.setRange(1, 16)
        self.count.setPrefix("× ")
        row.addWidget(self.count)
        row.addWidget(
            self._button("ganbridge_docsize", "Canvas size", self.use_canvas_size, "Size of the selection or canvas")
        )
        box.addLayout(row)
        grid = QGridLayout()
        buttons = [
            ("ganbridge_generate", "Generate", self.generate, "New layers above the active one"),
            ("ganbridge_fill", "Fill selection", self.fill, "Tile a seamless result over the selection (or canvas)"),
            ("ganbridge_like", "Like", functools.partial(self.rate, 1), "Like the current result"),
            ("ganbridge_dislike", "Dislike", functools.partial(self.rate, -1), "Dislike the current result"),
            ("ganbridge_steer", "More like these", self.steer, "Results steered by your likes and dislikes"),
            ("ganbridge_variations", "Variations", self.variations, "Variations of the current result"),
            ("ganbridge_blend", "Blend two", self.blend, "A row of layers from one selected thumbnail to another"),
            (
                "ganbridge_regenerate",
                "Make again",
                self.regenerate,
                "The selected result made again, exactly, from its recipe",
            ),
            ("ganbridge_cancel", "Cancel", self.cancel, "Stop what is queued or running"),
        ]
        for i, (name, text, slot, tip) in enumerate(buttons):
            grid.addWidget(self._button(name, text, slot, tip), i // 2, i % 2)
        box.addLayout(grid)
        row = QHBoxLayout()
        self.strength = QDoubleSpinBox()
        self.strength.setObjectName("ganbridge_strength")
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setValue(0.3)
        self.strength.setPrefix("strength ")
        self.steps = QSpinBox()
        self.steps.setObjectName("ganbridge_steps")
        self.steps.setRange(2, 16)
        self.steps.setValue(5)
        self.steps.setPrefix("steps ")
        row.addWidget(self.strength)
        row.addWidget(self.steps)
        box.addLayout(row)
        self.strip = QListWidget()
        self.strip.setObjectName("ganbridge_strip")
        self.strip.setViewMode(ICON_MODE)
        self.strip.setIconSize(QSize(THUMB, THUMB))
        self.strip.setGridSize(QSize(THUMB + 16, THUMB + 28))  # room for a label under each thumbnail
        self.strip.setResizeMode(ADJUST)  # rows re-flow when the docker or the strip is resized
        self.strip.setWordWrap(True)
        self.strip.setSelectionMode(EXTENDED_SELECTION)
        self.strip.setMinimumHeight(THUMB + 40)
        self.strip.itemSelectionChanged.connect(self.refresh_provenance)
        # The strip and what is below it share a splitter: drag its handle to see more history.
        split = QSplitter(VERTICAL)
        split.setObjectName("ganbridge_split")
        split.setChildrenCollapsible(False)
        split.addWidget(self.strip)
        box.addWidget(split, 1)
        below = QWidget()
        lower = QVBoxLayout(below)
        lower.setContentsMargins(0, 0, 0, 0)
        split.addWidget(below)
        lower.addWidget(
            self._button(
                "ganbridge_export", "Export result…", self.export_result,
                "Save the selected result as the bridge made it: a PNG with its recipe and content credentials",
            )
        )  # fmt: skip
        self.provenance = QLabel(provenance.NOTHING)
        self.provenance.setObjectName("ganbridge_provenance")
        self.provenance.setWordWrap(True)
        lower.addWidget(self.provenance)
        self.jobs_box = QWidget()
        self.jobs_box.setObjectName("ganbridge_jobs")
        self.job_rows_layout = QVBoxLayout(self.jobs_box)
        self.job_rows_layout.setContentsMargins(0, 0, 0, 0)
        lower.addWidget(self.jobs_box)
        self.live = live.LivePanel(self, self.conn)
        lower.addWidget(self.live)
        lower.addStretch(1)
        split.setSizes([2 * (THUMB + 28) + 8, 200])  # two rows of thumbnails to start with
        self.setWidget(root)

    def canvasChanged(self, canvas_) -> None:  # noqa: N802 (Krita's name)
        self.offer_canvas_size()
        self.live.on_document(canvas.active_document())

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.live.stop()  # a live session lives in the docker: closing it ends the session
        super().closeEvent(event)

    def _visibility(self, visible: bool) -> None:
        if not visible and self.isHidden():  # hidden, not just a tab behind another docker
            self.live.stop()

    def offer_canvas_size(self) -> None:
        """The active document's size as the default output size, until the painter sets one."""
        doc = canvas.active_document()
        if doc is None or self.size_edited:
            return
        for name, value in gs.fit_size(self.controls, doc.width(), doc.height()).items():
            self.inputs[name][0].setValue(value)

    # --- status --------------------------------------------------------------------------------

    def show_error(self, text: str) -> None:
        self.last_error = text
        self.status.setText(f"⚠ {text}")
        self.status.setToolTip(text)
        self.status.setStyleSheet("color: #d05050")

    def show_info(self, text: str) -> None:
        self.last_error = ""  # news after a failure: the painter has seen it
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setStyleSheet("")

    def refresh_jobs(self) -> None:
        """A row per active request, in the order they were sent; a finished one's row goes."""
        for rid, job in self.jobs.items():
            row = self.job_rows.get(rid)
            if job.active:
                if row is None:
                    row = self.job_rows[rid] = JobRow(rid, self.cancel_job)
                    self.job_rows_layout.addWidget(row)
                row.show_job(job)
            elif row is not None:
                del self.job_rows[rid]
                row.hide()
                row.deleteLater()  # not now: its own cancel button may be what is being handled

    # --- connection ------------------------------------------------------------------------------

    @guarded
    def reconnect(self) -> None:
        url, token = connection.read_settings()
        self.conn.open(url, token)

    @guarded
    def open_settings(self) -> None:
        url, token = connection.read_settings()
        dialog = QDialog(self)
        dialog.setWindowTitle("GAN Bridge settings")
        form = QFormLayout(dialog)
        url_edit, token_edit = QLineEdit(url), QLineEdit(token)
        token_edit.setEchoMode(PASSWORD)
        form.addRow("Bridge URL", url_edit)
        form.addRow("Token", token_edit)
        buttons = QDialogButtonBox(OK_CANCEL)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if run_dialog(dialog):
            gc.check_url(url_edit.text())
            connection.write_settings(url_edit.text().strip(), token_edit.text())
            self.conn.open(url_edit.text(), token_edit.text())

    # Every event is handled through the connection's work queue, in the order it came: a result
    # goes into its document a slice per tick (decoded first on the worker), and the events after
    # it (its `done`, the connection's news) wait for it, so the status line tells them in order.

    def queue_state(self, state: gc.ConnectionState) -> None:
        self.conn.work.add(gw.Work(apply=lambda _prepared: self.on_state(state)))

    def queue_message(self, msg: dict) -> None:
        if self.live.takes(msg):  # the live session's own messages; its frames are queued as work
            return
        job = self.jobs.get(msg.get("id"))
        if msg.get("type") != "result" or job is None:
            self.conn.work.add(gw.Work(apply=lambda _prepared: self.on_message(msg)))
            return
        for item in msg.get("items", []):
            self.conn.work.add(
                gw.Work(
                    apply=functools.partial(self.apply, job, item),
                    prepare=functools.partial(self.prepare, job, item),
                    fail=functools.partial(self.prepare_failed, job),
                )
            )

    @guarded
    def on_state(self, state: gc.ConnectionState) -> None:
        if state.status == "unauthorized":
            self.show_error(state.detail)
            return
        text = f"Connected: {state.server}" if state.status == "connected" else state.detail or state.status
        if self.last_error:  # a failure (often the lost jobs' own, in the same drain) stays in sight
            self.status.setText(f"⚠ {self.last_error}\n{text}")
        else:
            self.show_info(text)
        if state.status == "connected":
            self.set_generators({g["name"]: g for g in state.generators})
        self.live.on_connection(state)

    def set_generators(self, generators: dict[str, dict]) -> None:
        current = self.generator.currentText()
        self.generators = generators
        self.generator.blockSignals(True)
        self.generator.clear()
        self.generator.addItems(list(generators))
        self.generator.blockSignals(False)
        if current and current not in generators:
            self.show_error(f"the generator {current!r} is no longer on the bridge: pick another one")
        self.generator.setCurrentText(current if current in generators else next(iter(generators), ""))
        self.on_generator(self.generator.currentText())

    # --- parameters from the schema ----------------------------------------------------------------

    @guarded
    def on_generator(self, name: str) -> None:
        if self.form_generator:  # what the painter set for the generator shown until now
            self.kept_values[self.form_generator] = self._entered()
        while self.form.rowCount():
            self.form.removeRow(0)
        self.inputs = {}
        info = self.generators.get(name)
        self.form_generator = name if info is not None else ""
        if info is None:
            self.controls = []
            return
        self.controls, skipped = gs.controls_from_schema(info.get("params_schema") or {})
        for c in self.controls:
            widget = self._input(c)
            widget.setObjectName(f"param_{c.name}")
            widget.setToolTip(c.description)
            toggle = None
            if c.nullable:
                toggle = QCheckBox()
                toggle.setObjectName(f"param_{c.name}__on")
                toggle.setToolTip(f"Set {c.label.lower()} (off: the bridge chooses)")
                toggle.setChecked(c.default_set)
                widget.setEnabled(c.default_set)
                toggle.toggled.connect(widget.setEnabled)
                row = QWidget()
                lay = QHBoxLayout(row)
                lay.setContentsMargins(0, 0, 0, 0)
                lay.addWidget(toggle)
                lay.addWidget(widget, 1)
                self.form.addRow(c.label, row)
            else:
                self.form.addRow(c.label, widget)
            self.inputs[c.name] = (widget, toggle)
            if c.name in ("width", "height"):
                widget.editingFinished.connect(self._size_edited)
        for name_ in skipped:
            self.form.addRow(name_, QLabel("bridge default"))
        kept = self.kept_values.get(name)
        if kept:
            self._enter(kept)
        else:
            self.offer_canvas_size()
        self.refresh_presets()

    # --- presets ----------------------------------------------------------------------------------

    def refresh_presets(self, chosen: str = "") -> None:
        names = gp.names(connection.read_presets(), self.form_generator)
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItem(PRESET_PROMPT if names else NO_PRESETS)
        self.preset.addItems(names)
        self.preset.setCurrentText(chosen if chosen in names else self.preset.itemText(0))
        self.preset.blockSignals(False)

    def chosen_preset(self) -> str:
        return self.preset.currentText() if self.preset.currentIndex() > 0 else ""

    @guarded
    def save_preset(self, name: str | None = None) -> None:
        """Save the form as a preset of this generator (`name`, or asked for in a dialog)."""
        if not self.form_generator:
            raise UserError("no generator: connect to the bridge first")
        if name is None:
            name, ok = QInputDialog.getText(self, "Save preset", f"Name for these {self.form_generator} parameters:",
                                            text=self.chosen_preset())  # fmt: skip
            if not ok:
                return
        values = {k: (v if on else None) for k, (v, on) in self._entered().items()}
        presets = gp.save(connection.read_presets(), self.form_generator, name, values)
        connection.write_presets(presets)
        name = gp.check_name(name)
        self.refresh_presets(name)
        self.show_info(f"Preset {name!r} saved")

    @guarded
    def load_preset(self, name: str) -> None:
        if not name or self.preset.currentIndex() <= 0:
            return
        loaded = gp.load(connection.read_presets(), self.form_generator, name, self.controls)
        self._enter({k: (v, v is not None) for k, v in loaded.values.items()})
        if {"width", "height"} & set(loaded.values):
            self.size_edited = True  # the preset's size stays when another document is shown
        self.show_info(loaded.message(name))

    @guarded
    def delete_preset(self) -> None:
        name = self.chosen_preset()
        if not name:
            raise UserError("choose a preset to delete")
        connection.write_presets(gp.delete(connection.read_presets(), self.form_generator, name))
        self.refresh_presets()
        self.show_info(f"Preset {name!r} deleted")

    def _entered(self) -> dict[str, tuple[Any, bool]]:
        """Each control's value as entered (also when its toggle is off) and whether it is on."""
        out = {}
        for c in self.controls:
            toggle = self.inputs[c.name][1]
            out[c.name] = (self._entered_value(c), toggle is None or toggle.isChecked())
        return out

    def _enter(self, values: dict[str, tuple[Any, bool]]) -> None:
        """Put values back into the form (a value the bridge's schema no longer offers is skipped)."""
        for c in self.controls:
            if c.name not in values:
                continue
            value, on = values[c.name]
            widget, toggle = self.inputs[c.name]
            if toggle is not None:
                toggle.setChecked(on)
            if value is None:
                continue
            if c.kind in (gs.INT, gs.FLOAT):
                widget.setValue(value)
            elif c.kind == gs.BOOL:
                widget.setChecked(bool(value))
            elif c.kind == gs.CHOICE and value in c.choices:
                widget.setCurrentText(value)
            elif c.kind == gs.MULTI:
                for box in widget.findChildren(QCheckBox):
                    box.setChecked(box.text() in value)
            elif c.kind not in (gs.CHOICE, gs.MULTI):
                widget.setText(str(value))

    def _size_edited(self) -> None:
        self.size_edited = True

    def _input(self, c: gs.Control) -> QWidget:
        if c.kind == gs.INT:
            w = QSpinBox()
            w.setRange(int(max(c.minimum, -(2**31))), int(min(c.maximum, 2**31 - 1)))
            w.setSingleStep(c.step or 1)
            w.setValue(int(c.default))
            return w
        if c.kind == gs.FLOAT:
            w = QDoubleSpinBox()
            w.setRange(c.minimum, c.maximum)
            w.setSingleStep((c.maximum - c.minimum) / 20 or 0.1)
            w.setValue(float(c.default))
            return w
        if c.kind == gs.BOOL:
            w = QCheckBox()
            w.setChecked(bool(c.default))
            return w
        if c.kind == gs.CHOICE:
            w = QComboBox()
            w.addItems(c.choices)
            w.setCurrentText(c.default)
            return w
        if c.kind == gs.MULTI:
            w = QWidget()
            lay = QHBoxLayout(w)
            lay.setContentsMargins(0, 0, 0, 0)
            for choice in c.choices:
                box = QCheckBox(choice)
                box.setObjectName(f"param_{c.name}_{choice}")
                box.setChecked(choice in c.default)
                lay.addWidget(box)
            return w
        return QLineEdit(str(c.default))

    def _value(self, c: gs.Control) -> Any:
        toggle = self.inputs[c.name][1]
        if toggle is not None and not toggle.isChecked():
            return None
        return self._entered_value(c)

    def _entered_value(self, c: gs.Control) -> Any:
        """The control's value as its widget holds it, whether its toggle is on or not."""
        widget = self.inputs[c.name][0]
        if c.kind in (gs.INT, gs.FLOAT):
            return widget.value()
        if c.kind == gs.BOOL:
            return widget.isChecked()
        if c.kind == gs.CHOICE:
            return widget.currentText()
        if c.kind == gs.MULTI:
            return [b.text() for b in widget.findChildren(QCheckBox) if b.isChecked()]
        return widget.text()

    def params(self) -> dict[str, Any]:
        return gs.params_from_values(self.controls, {c.name: self._value(c) for c in self.controls})

    @guarded
    def use_canvas_size(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        region = canvas.fill_region(doc)
        sizes = gs.fit_size(self.controls, region.width, region.height)
        for name, value in sizes.items():
            self.inputs[name][0].setValue(value)
        if sizes and (
            sizes.get("width", region.width) < region.width or sizes.get("height", region.height) < region.height
        ):
            self.show_info(
                f"{region.width}x{region.height} is larger than this generator makes; "
                f"results are {sizes.get('width')}x{sizes.get('height')} (Fill selection tiles them seamlessly)"
            )

    # --- requests -------------------------------------------------------------------------------------

    def _generator_name(self) -> str:
        name = self.generator.currentText()
        if name not in self.generators:
            raise UserError(
                "no generator: connect to the bridge first"
                if not self.generators
                else f"pick a generator ({name!r} is gone)"
            )
        return name

    def _submit(self, job: Job, kind: str, **fields: Any) -> None:
        rid = self.conn.request(kind, **fields)
        self.jobs[rid] = job
        self.last_error = ""
        self.show_info(f"{job.label}: sent")
        self.refresh_jobs()

    @guarded
    def generate(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        name, params = self._generator_name(), self.params()
        count = self.count.value()
        self._submit(
            Job("generate", f"Generate {name}", doc, params),
            "generate",
            generator=name,
            params=params,
            count=count,
            session=canvas.document_session(doc),
        )

    @guarded
    def fill(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        name, params = self._generator_name(), self.params()
        if "tileable" in {c.name for c in self.controls}:
            params["tileable"] = True  # a fill repeats the result: it must wrap at its edges
        region = canvas.fill_region(doc)
        job = Job("fill", f"Fill {name}", doc, params, region)
        self._submit(job, "generate", generator=name, params=params, count=1, session=canvas.document_session(doc))
        w, h = params.get("width"), params.get("height")
        if w and h and (region.width > w or region.height > h):
            self.show_info(
                f"Fill {name}: sent; the {w}x{h} texture is tiled seamlessly over {region.width}x{region.height}"
            )

    def current_items(self) -> list[str]:
        """Selected thumbnails, else the active layer's item."""
        items = [i.data(USER_ROLE) for i in self.strip.selectedItems()]
        if items:
            return items
        doc = canvas.active_document()
        item = canvas.layer_item(doc, doc.activeNode()) if doc is not None else ""
        return [item] if item else []

    @guarded
    def rate(self, rating: int) -> None:
        items = self.current_items()
        if not items:
            raise UserError("select a result thumbnail or a generated layer to rate")
        doc = canvas.active_document()
        # The active document's session; without one open, the session the item was made in.
        session = {"session": canvas.document_session(doc)} if doc is not None else {}
        for item in items:
            rid = self.conn.request("feedback", item=item, rating=rating, **session)
            self.feedback_requests[rid] = (item, rating)

    @guarded
    def steer(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        name = self._generator_name()
        self._submit(
            Job("steer", f"More {name}", doc),
            "steer",
            generator=name,
            session=canvas.document_session(doc),
            count=self.count.value(),
        )

    @guarded
    def variations(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        items = self.current_items()
        if not items:
            raise UserError("select a result thumbnail or a generated layer to vary")
        self._submit(
            Job("variations", "Variations", doc, parents=items[-1:]), "variations", item=items[-1], strength=self.strength.value(),
            count=self.count.value(), session=canvas.document_session(doc),
        )  # fmt: skip

    @guarded
    def blend(self) -> None:
        doc = canvas.active_document()
        canvas.check_document(doc)
        items = [i.data(USER_ROLE) for i in self.strip.selectedItems()]
        if len(items) != 2:
            raise UserError("select exactly two result thumbnails to blend (Ctrl+click)")
        self._submit(
            Job("interpolate", "Blend", doc, parents=items),
            "interpolate",
            **{"from": items[0], "to": items[1], "steps": self.steps.value(), "session": canvas.document_session(doc)},
        )

    @guarded
    def regenerate(self) -> None:
        """The selected result again, exactly: a generated one from its seed and params, any other
        (variation, blend, steered) from its latent in the bridge's store, as a variation of
        strength 0 (the seed in such a recipe only drew the change)."""
        doc = canvas.active_document()
        canvas.check_document(doc)
        items = self.current_items()
        if not items:
            raise UserError("select a result thumbnail or a generated layer to make again")
        item = items[-1]
        recipe = self.item_recipes.get(item) or canvas.item_recipe(doc, item)
        name = recipe.get("generator") or ""
        if name not in self.generators:
            raise UserError(f"the generator {name!r} of that result is not on the bridge now")
        params, seed = recipe.get("params") or {}, recipe.get("seed")
        if recipe.get("origin", "generate") in ("generate", "fill") and seed is not None and params:
            params = {**params, "seed": seed}
            job = Job("generate", f"Again {name}", doc, params)
            self._submit(job, "generate", generator=name, params=params, seed=seed, count=1,
                         session=canvas.document_session(doc))  # fmt: skip
        else:
            job = Job("regenerate", f"Again {name}", doc, params, parents=[item])
            self._submit(job, "variations", item=item, strength=0.0, count=1, session=canvas.document_session(doc))

    # --- live (the panel in live.py asks these) -----------------------------------------------------

    def live_source(self) -> tuple[Any, dict[str, Any], str, list[str]]:
        """What a live session starts from: (document, live_open fields, generator, parents). The
        selected thumbnail's result if one is selected; with two selected (Ctrl+click, as for
        Blend two), the first, with the second as the far end of its Blend slider (`toward`);
        else a fresh latent of the form's generator and params (at a preview size)."""
        doc = canvas.active_document()
        canvas.check_document(doc)
        selected = [entry.data(USER_ROLE) for entry in self.strip.selectedItems()]
        if len(selected) > 2:
            raise live.LiveError("select one thumbnail to start from, or two to blend from the first to the second")
        if selected:
            recipe = self.item_recipes.get(selected[0]) or canvas.item_recipe(doc, selected[0])
            name = recipe.get("generator") or ""
            fields: dict[str, Any] = {"item": selected[0]}
            if len(selected) == 2:
                fields["toward"] = selected[1]
            parents = selected
        else:
            try:
                name = self._generator_name()
            except UserError as e:
                raise live.LiveError(str(e)) from None
            params = live.preview_params(self.params(), self.controls, live.preview_limit())
            fields = {"generator": name, "params": params}
            parents = []
        info = self.generators.get(name)
        if info is None:
            raise live.LiveError(f"the generator {name!r} of that result is not on the bridge now")
        if info.get("kind") not in live.KINDS:
            raise live.LiveError(
                f"a {info.get('kind')} generator's live frames are not images: Krita shows textures and images"
            )
        return doc, fields, name, parents

    def commit_live(self, live_id: str, doc: Any, generator: str, params: dict, parents: list[str]) -> None:
        """The live session's newest state as a result: a request of this docker, whose item goes
        in as any result does (a new layer, one undo step, its recipe with origin "live")."""
        canvas.check_document(doc)
        job = Job("live", f"Commit live {generator}", doc, dict(params), parents=list(parents))
        self._submit(job, "live_commit", live=live_id, session=canvas.document_session(doc))

    @guarded
    def cancel(self) -> None:
        active = [rid for rid, j in self.jobs.items() if j.active]
        for rid in active:
            self.conn.request("cancel", id=rid)
        self.show_info(f"cancelling {len(active)} request(s)" if active else "nothing to cancel")

    @guarded
    def cancel_job(self, rid: str) -> None:
        job = self.jobs.get(rid)
        if job is None or not job.active:
            return  # it finished while the click was on its way
        self.conn.request("cancel", id=rid)
        row = self.job_rows.get(rid)
        if row is not None:
            row.button.setEnabled(False)
        self.show_info(f"{job.label}: cancelling")

    # --- replies ---------------------------------------------------------------------------------------

    @guarded
    def on_message(self, msg: dict) -> None:
        kind, rid = msg.get("type"), msg.get("id")
        job = self.jobs.get(rid)
        if job is not None and job.update(msg):
            if kind in ("done", "cancelled") and job.status == kind:  # not over a failure's message
                self.show_info(f"{job.label}: {kind}")
        elif kind == "error":
            self.on_error(rid, job, msg)
        elif kind == "item" and rid in self.recipe_requests:
            self.on_recipe(*self.recipe_requests.pop(rid), msg)
        elif kind == "item" and rid in self.export_requests:
            self.finish_export(self.export_requests.pop(rid), msg)
        elif kind == "ack" and rid in self.feedback_requests:
            item, rating = self.feedback_requests.pop(rid)
            self.show_info({1: "Liked", -1: "Disliked", 0: "Rating cleared"}[rating])
        self.refresh_jobs()

    def on_error(self, rid: str, job: Job | None, msg: dict) -> None:
        text, gone = msg.get("message", ""), msg.get("code") == gc.DISCONNECTED
        self.recipe_requests.pop(rid, None)
        if self.feedback_requests.pop(rid, None) is not None:
            self.show_error(f"rating not saved: {text}")
        elif self.export_requests.pop(rid, None) is not None:
            self.show_error(
                "Export failed: " + ("the bridge went away before it sent the file; try again" if gone else text)
            )
        elif job is not None:
            if gone:
                text = "the bridge went away before it finished (nothing was changed); try again"
            job.fail(text)
            self.show_error(f"{job.label}: {text}")

    def on_recipe(self, doc: Any, item: str, msg: dict) -> None:
        """The bridge's full recipe of a result: into its layers' recipes in the document (saved in
        the .kra, so the provenance view works after a reopen) and into the thumbnail's."""
        keys = ("generator", "params", "checkpoint", "seed", "origin", "parents", "how", "created")
        fields = {k: msg.get(k) for k in keys}  # `checkpoint` whole: its name, hashes and training data
        self.item_recipes.setdefault(item, {"item": item}).update(fields)
        if doc in Krita.instance().documents():  # a closed document is gone: its thumbnail keeps it
            canvas.update_recipes(doc, item, fields)
        self.refresh_provenance()

    @staticmethod
    def prepare(job: Job, item: dict) -> canvas.Prepared:
        """On the worker thread: decode the result (tile and mask it for a fill)."""
        if item.get("format") != "png":
            raise UserError(f"a {item.get('format')} result cannot go into a paint layer")
        return canvas.prepare(item, job.region, THUMB)

    def prepare_failed(self, job: Job, error: BaseException) -> None:
        self.result_failed(job, error)
        self.refresh_jobs()

    def result_failed(self, job: Job, error: BaseException) -> None:
        """One result could not go in (nothing was changed); the request is marked failed."""
        if isinstance(error, (canvas.CanvasError, UserError)):
            text = f"{job.label}: {error} (nothing was changed)"
        else:  # a bug must not become a traceback dialog over the canvas
            text = f"internal error: {type(error).__name__}: {error}"
        job.fail(text)
        self.show_error(text)

    def apply(self, job: Job, item: dict, prepared: canvas.Prepared) -> Iterator[str | None]:
        """On the GUI thread, a slice per tick: the new layer, its recipe, its thumbnail. A failure
        (the document closed part way, a bug) is shown in the status line; nothing was changed."""
        try:
            yield from self._apply(job, item, prepared)
        except Exception as e:
            self.result_failed(job, e)
        self.refresh_jobs()

    def _apply(self, job: Job, item: dict, prepared: canvas.Prepared) -> Iterator[str | None]:
        if job.doc not in Krita.instance().documents():
            raise UserError("its document was closed; the result is kept on the bridge")
        recipe = {
            "item": item["item"], "generator": item.get("generator"), "seed": item.get("seed"),
            "width": item.get("width"), "height": item.get("height"), "params": job.params, "origin": job.kind,
            "parents": item.get("parents", job.parents), "session": canvas.document_session(job.doc),
            "applied": time.time(),
        }  # fmt: skip
        name = recipes.layer_name(recipe, fill=job.region is not None)
        yield from canvas.insert_layer(job.doc, prepared, name, recipe)
        self.item_recipes[item["item"]] = dict(recipe)
        self._add_entry(item["item"], prepared.thumbnail, recipe)
        self.refresh_provenance()
        try:  # the bridge's full recipe (checkpoint, licence) for the document; the layer has its own
            self.recipe_requests[self.conn.request("item", item=item["item"])] = (job.doc, item["item"])
        except connection.NotConnected:
            pass

    def _add_entry(self, item: str, thumbnail: QImage | None, recipe: dict) -> None:
        label = gr.result_label(recipe)
        entry = QListWidgetItem(QIcon(QPixmap.fromImage(thumbnail)) if thumbnail is not None else QIcon(), label)
        entry.setData(USER_ROLE, item)
        entry.setToolTip(label)
        self.strip.addItem(entry)
        self.strip.scrollToItem(entry)

    def strip_items(self) -> set[str]:
        return {self.strip.item(i).data(USER_ROLE) for i in range(self.strip.count())}

    def take_in_document(self) -> None:
        """The active document's earlier results into the strip, from the recipes it keeps (a .kra
        reopened, or Krita started again): found once per document, then one layer per tick, so
        a document with many results never holds the GUI up."""
        doc = canvas.active_document()
        if doc is not None and doc not in self.strip_documents:
            self.strip_documents.append(doc)
            shown = self.strip_items()
            stored = sorted(canvas.load_recipes(doc).items(), key=lambda kv: kv[1].get("applied") or 0)
            self.strip_queue += [(doc, layer, r) for layer, r in stored if r["item"] not in shown]
        if not self.strip_queue:
            return
        doc, layer, recipe = self.strip_queue.pop(0)
        if recipe["item"] in self.strip_items() or doc not in Krita.instance().documents():
            return
        node = canvas.find_layer(doc, layer)
        if node is None:  # the layer was deleted: the result stays on the bridge, not in this document
            return
        self.item_recipes.setdefault(recipe["item"], dict(recipe))
        self._add_entry(recipe["item"], canvas.layer_thumbnail(node, THUMB), recipe)

    # --- provenance -------------------------------------------------------------------------------------

    def shown_result(self) -> Shown:
        """The last selected thumbnail's result, else the active layer's (a recipe only if generated)."""
        doc = canvas.active_document()
        selected = self.strip.selectedItems()
        if selected:
            item = selected[-1].data(USER_ROLE)
            recipe = self.item_recipes.get(item) or canvas.item_recipe(doc, item) or {"item": item}
            return Shown(f"item:{item}", recipe, recipes.layer_name(recipe))
        node = doc.activeNode() if doc is not None else None
        if node is None:
            return Shown("", {}, "")
        recipe = canvas.layer_recipe(doc, node)
        # A result with maps is a group (its colour layer "<result> colour"); its files are the result's.
        name = recipes.layer_name(recipe, fill=recipe.get("origin") == "fill") if recipe.get("maps") else node.name()
        return Shown(f"layer:{node.uniqueId().toString()}", recipe, name)

    @guarded
    def refresh_provenance(self) -> None:
        shown = self.shown_result()
        self.shown = shown.key
        text, tip = provenance.describe(shown.recipe)
        self.provenance.setText(text)
        self.provenance.setToolTip(tip)

    @guarded
    def watch_active_layer(self) -> None:
        """Redraw the view when the active layer changed (a selected thumbnail has its own signal),
        and take in a reopened document's results."""
        if not self.isVisible():
            return
        self.take_in_document()
        if self.strip.selectedItems():
            return
        doc = canvas.active_document()
        node = doc.activeNode() if doc is not None else None
        if (f"layer:{node.uniqueId().toString()}" if node is not None else "") != self.shown:
            self.refresh_provenance()

    # --- export -----------------------------------------------------------------------------------------

    @guarded
    def export_result(self, path: str | None = None) -> None:
        """Write the shown result's file, as the bridge stored it, to `path` (or where the painter
        picks in a dialog). Only the request goes now; the file is written when the reply comes."""
        shown = self.shown_result()
        item = shown.recipe.get("item")
        if not item:
            raise UserError("select a result thumbnail or a generated layer to export")
        self.conn.require()  # before the dialog: no path to choose for an export that cannot happen
        path = path or self.ask_export_path(shown.name)
        if not path:
            return  # the dialog was cancelled
        path = export.with_suffix(path)
        self.export_requests[self.conn.request("item", item=item, data=True)] = path
        self.show_info(f"Export: asking the bridge for {os.path.basename(path)}…")

    def ask_export_path(self, layer_name: str) -> str:
        app = Krita.instance()
        folder = app.readSetting(connection.SETTINGS_GROUP, "export_dir", "") or os.path.expanduser("~")
        start = os.path.join(folder, export.default_name(layer_name))
        path, _filter = QFileDialog.getSaveFileName(self, "Export result", start, "PNG image (*.png)")
        if path:
            app.writeSetting(connection.SETTINGS_GROUP, "export_dir", os.path.dirname(path))
        return path

    def finish_export(self, path: str, reply: dict) -> None:
        try:
            files = export.files_of(reply, path)
            export.write_all(files)
        except export.ExportError as e:
            raise export.ExportError(f"Export failed: {e} (nothing was written)") from None
        maps = ", ".join(os.path.basename(p) for p, _ in files[1:])
        self.show_info(
            f"Exported {os.path.basename(path)}" + (f" and {maps}" if maps else "")
            + ": recipe and content credentials inside (check with ganbridge verify)"
        )  # fmt: skip
