"""Test-only Krita plugin: drives the GAN Bridge docker through its real widgets, then quits.

The tests install it beside the real plugin in a throwaway profile. It reads its task from
GANBRIDGE_KRITA_JOB (JSON), runs the steps below one after another from a QTimer (the GUI stays
live, as when a painter clicks), writes a JSON report and quits Krita.
"""

import json
import os
import time
import traceback

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QSize, Qt, QTimer
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
)

JOB = json.loads(os.environ.get("GANBRIDGE_KRITA_JOB", "{}"))


class TimedParent:
    """The node a result is added to, its addChildNode timed: Krita's own work within a tick of the
    plugin (it takes in the new layer: its layer list, its canvas), told apart from the plugin's."""

    def __init__(self, node, driver):
        self.node, self.driver = node, driver

    def addChildNode(self, child, above):
        t = time.perf_counter()
        try:
            return self.node.addChildNode(child, above)
        finally:
            self.driver.add_in_tick += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self.node, name)


class Driver:
    def __init__(self):
        self.report = {"steps": [], "ok": False}
        self.steps = [
            self.wait_window, self.find_docker, self.wait_connected, self.generate_without_document,
            self.make_document, self.reject_16_bit, self.long_message_wraps, self.generate, self.wait_generated, self.switch_generators,
            self.presets, self.fill,
            self.wait_filled, self.like, self.wait_liked, self.blend, self.wait_blended, self.variations, self.wait_varied,
            self.steer, self.wait_steered, self.cancel, self.wait_cancelled, self.wait_recipes, self.save,
            self.undo, self.wait_undone, self.time_the_gui,
            self.live_start, self.wait_live_open, self.nudge, self.live_drag, self.wait_live_settled, self.live_stop,
            self.wait_live_stopped, self.live_document, self.live_start, self.wait_live_open, self.live_drag,
            self.wait_live_settled, self.live_sweep, self.wait_swept, self.live_undo, self.wait_live_undone, self.wait_live_redone, self.live_commit,
            self.wait_live_committed, self.live_stop, self.wait_live_stopped,
            lambda: self.live_start([0, self.row_of(" variation of ")]), self.wait_live_open,
            self.drag_knob("temperature", range(110, 161, 10)), self.wait_knob("temperature"),
            self.drag_knob("blend", range(20, 101, 20)), self.wait_knob("blend"), self.live_refused,
            self.wait_live_refused, self.live_reset, self.wait_knob("reset"),
            self.drag_knob("temperature", [150, 160]), self.drag_knob("blend", [50]), self.wait_knob("final"),
            self.live_commit, self.wait_params_committed, self.live_stop, self.wait_live_stopped,
            lambda: self.live_start([0]), self.wait_live_open, self.make_big_document, self.wait_live_switched,
            self.add_empty_layer, self.into_group, self.generate_on_sketch, self.wait_in_group, self.activate_group, self.cancel_one, self.wait_one_running, self.wait_one_cancelled,
        ]  # fmt: skip
        for size in JOB.get("block_sizes", []):
            self.steps += [lambda size=size: self.big_texture(size), self.wait_big]
        self.steps += [
            self.soft_fill, self.wait_big, self.native_duplicate, self.wait_native, self.stop_timing,
            self.live_start, self.wait_live_open,
            self.close_docker, self.wait_docker_closed, self.live_start, self.wait_live_open,
            self.point_at_no_bridge, self.wait_no_bridge,
        ]  # fmt: skip
        if JOB.get("reopen"):  # Krita started again: the saved document's history
            self.steps = [
                self.wait_window, self.find_docker, self.wait_connected, self.open_saved, self.wait_history,
                self.blend, self.wait_blended, self.variations, self.wait_varied, self.like, self.wait_liked,
                self.steer, self.wait_steered,
                self.presets_after_restart, lambda: self.again("texture brick seed"), self.wait_again,
                lambda: self.again("texture brick blend of"), self.wait_again,
                self.odd_document, self.canvas_size, self.wait_grown_by_one, self.generate_with_maps,
                self.wait_maps_group, self.activate_group_layers, self.generate_after_maps, self.wait_grown_by_one, self.undo_once,
                self.wait_undone_once, self.undo_once, self.wait_undone_once, self.undo_once, self.wait_undone_once,
            ]  # fmt: skip
        self.started = time.monotonic()
        self.step_started = self.started
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # --- plumbing ---------------------------------------------------------------------------------

    def tick(self):
        try:
            if not self.steps:
                return
            step = self.steps[0]
            if step():
                self.report["steps"].append(
                    [step.__name__, round(time.monotonic() - self.step_started, 3), self.status()]
                )
                self.steps.pop(0)
                self.step_started = time.monotonic()
                if not self.steps:
                    self.finish(True)
            elif time.monotonic() - self.step_started > JOB.get("step_timeout", 60):
                raise TimeoutError(f"step {step.__name__} timed out; status: {self.status()!r}; {self.state()}")
        except Exception:
            self.report["error"] = traceback.format_exc()
            self.finish(False)

    def finish(self, ok):
        self.timer.stop()
        self.report["ok"] = ok
        with open(JOB["report"], "w") as f:
            json.dump(self.report, f)
        for doc in Krita.instance().documents():
            doc.setModified(False)
        Krita.instance().action("file_quit").trigger()

    def w(self, cls, name):
        widget = self.docker.findChild(cls, name)
        assert widget is not None, f"the docker has no {cls.__name__} {name!r}"
        return widget

    def click(self, name):
        self.w(QPushButton, name).click()

    def status(self):
        docker = getattr(self, "docker", None)
        return docker.findChild(QLabel, "ganbridge_status").text() if docker else ""

    def state(self):
        """What a timed-out step leaves to go on: the work queue and the document's layers."""
        from ganbridge import connection

        work = connection.shared().work
        if not hasattr(self, "doc"):
            return f"work queued: {len(work._queue)}"
        tree = [[n.name(), [c.name() for c in n.childNodes()]] for n in self.doc.topLevelNodes()]
        active = self.doc.activeNode()
        live = self.docker.findChild(QLabel, "ganbridge_live_status")
        return (
            f"work queued: {len(work._queue)}; layers: {tree}; active: {active.name() if active else None}; "
            f"live: {live.text() if live is not None else None}"
        )

    def names(self):
        return [n.name() for n in self.doc.topLevelNodes()]

    # --- steps: each returns True when done ------------------------------------------------------

    def wait_window(self):
        return Krita.instance().activeWindow() is not None

    def find_docker(self):
        for d in Krita.instance().dockers():
            if d.findChild(QPushButton, "ganbridge_generate") is not None:
                self.docker = d
                self.report["docker_object_name"] = d.objectName()
                return True
        return False

    def wait_connected(self):
        if not self.status().startswith("Connected"):
            return False
        combo = self.w(QComboBox, "ganbridge_generator")
        self.report["generators"] = [combo.itemText(i) for i in range(combo.count())]
        return True

    def generate_without_document(self):
        self.click("ganbridge_generate")
        self.report["no_document"] = self.status()
        return True

    def make_document(self):
        app = Krita.instance()
        self.doc = app.createDocument(JOB["width"], JOB["height"], "gan", "RGBA", "U8", "", 72.0)
        self.view = app.activeWindow().addView(self.doc)
        return True

    def reject_16_bit(self):
        app = Krita.instance()
        deep = app.createDocument(64, 64, "deep", "RGBA", "U16", "", 72.0)
        app.activeWindow().addView(deep)
        before = len(deep.topLevelNodes())
        self.click("ganbridge_generate")
        self.report["sixteen_bit"] = self.status()
        self.report["sixteen_bit_unchanged"] = len(deep.topLevelNodes()) == before
        deep.setModified(False)
        deep.close()
        app.activeWindow().showView(self.view)
        return True

    def long_message_wraps(self):
        """The 16-bit refusal (a long message), once the docker has laid it out."""
        label = self.docker.findChild(QLabel, "ganbridge_status")
        self.report["long_message"] = {
            "lines": label.height() / label.fontMetrics().lineSpacing(), "label_width": label.width(),
            "docker_width": self.docker.width(), "tooltip": label.toolTip(), "text": label.text(),
        }  # fmt: skip
        return True

    def open_saved(self):
        app = Krita.instance()
        self.doc = app.openDocument(JOB["reopen"])
        self.view = app.activeWindow().addView(self.doc)
        return True

    def wait_history(self):
        strip = self.w(QListWidget, "ganbridge_strip")
        if strip.count() < JOB["results"]:
            return False
        entries = [strip.item(i) for i in range(strip.count())]
        self.report["history"] = [
            [e.text(), e.icon().pixmap(QSize(72, 72)).width(), e.icon().pixmap(QSize(72, 72)).height()] for e in entries
        ]
        self.report["strip_height"] = strip.height()
        return True

    def generate(self):
        assert Krita.instance().activeDocument() == self.doc, "the test document is not active"
        self.w(QComboBox, "ganbridge_generator").setCurrentText("texture")
        self.w(QComboBox, "param_model").setCurrentText(JOB["model"])
        self.w(QSpinBox, "param_width").setValue(JOB["size"])
        self.w(QSpinBox, "param_height").setValue(JOB["size"])
        self.w(QCheckBox, "param_seed__on").setChecked(True)
        self.w(QSpinBox, "param_seed").setValue(JOB["seed"])
        t = time.perf_counter()
        self.click("ganbridge_generate")
        self.report["click_ms"] = (time.perf_counter() - t) * 1000
        return True

    def wait_generated(self):
        return f"GAN texture {JOB['model']} seed {JOB['seed']}" in self.names()

    def switch_generators(self):
        combo = self.w(QComboBox, "ganbridge_generator")
        self.w(QComboBox, "param_model").setCurrentText("grass")  # not the default model
        combo.setCurrentText("image")
        combo.setCurrentText("texture")
        model = self.w(QComboBox, "param_model")
        self.report["kept_params"] = [
            model.currentText(), self.w(QSpinBox, "param_width").value(),
            self.w(QCheckBox, "param_seed__on").isChecked(), self.w(QSpinBox, "param_seed").value(),
        ]  # fmt: skip
        model.setCurrentText(JOB["model"])
        return True

    def _form(self):
        return [
            self.w(QComboBox, "param_model").currentText(), self.w(QSpinBox, "param_width").value(),
            self.w(QCheckBox, "param_seed__on").isChecked(), self.w(QSpinBox, "param_seed").value(),
        ]  # fmt: skip

    def _preset_items(self):
        combo = self.w(QComboBox, "ganbridge_preset")
        return [combo.itemText(i) for i in range(combo.count())]

    def _choose_preset(self, name):
        combo = self.w(QComboBox, "ganbridge_preset")
        index = self._preset_items().index(name)
        combo.setCurrentIndex(index)
        combo.activated.emit(index)  # as when the painter picks it from the list

    def presets(self):
        """Save two presets of the texture form (the button's method, without its name dialog),
        load one over other values, see the image generator has none, delete the other."""
        from ganbridge import docker

        d = docker.DOCKERS[0]
        model, width, seed_on = (
            self.w(QComboBox, "param_model"),
            self.w(QSpinBox, "param_width"),
            self.w(QCheckBox, "param_seed__on"),
        )
        model.setCurrentText("grass")
        width.setValue(128)
        seed_on.setChecked(True)
        self.w(QSpinBox, "param_seed").setValue(42)
        d.save_preset("grass 128")
        seed_on.setChecked(False)
        d.save_preset("no seed")
        d.save_preset("  ")
        self.report["preset_bad_name"] = self.status()
        model.setCurrentText("brick")
        width.setValue(64)
        self._choose_preset("grass 128")
        self.report["preset_loaded"] = [self._form(), self.status()]
        combo = self.w(QComboBox, "ganbridge_generator")
        combo.setCurrentText("image")
        self.report["preset_items_image"] = self._preset_items()
        combo.setCurrentText("texture")
        self.report["preset_items_texture"] = self._preset_items()
        self._choose_preset("no seed")
        self.click("ganbridge_delete_preset")
        self.report["preset_items_after_delete"] = self._preset_items()
        # back to the job's form for the steps after this one (switching generator made new widgets)
        self.w(QComboBox, "param_model").setCurrentText(JOB["model"])
        self.w(QSpinBox, "param_width").setValue(JOB["size"])
        self.w(QSpinBox, "param_height").setValue(JOB["size"])
        self.w(QCheckBox, "param_seed__on").setChecked(True)
        self.w(QSpinBox, "param_seed").setValue(JOB["seed"])
        return True

    def _layer_of(self, item):
        """The layer the reopened document made from `item` (its stored recipes say which)."""
        layers = json.loads(bytes(self.doc.annotation("ganbridge")))["layers"]
        ids = {lid for lid, r in layers.items() if r["item"] == item}
        return next(n for n in self.doc.topLevelNodes() if n.uniqueId().toString() in ids)

    def again(self, label):
        """Make a reopened result again ("Make again" on its thumbnail)."""
        strip = self.w(QListWidget, "ganbridge_strip")
        entry = next(strip.item(i) for i in range(strip.count()) if strip.item(i).text().startswith(label))
        strip.clearSelection()
        entry.setSelected(True)
        self.again_of = (label, entry.data(Qt.UserRole))
        self.layers_before, self.expect = len(self.names()), 1
        self.ids_before = {n.uniqueId().toString() for n in self.doc.topLevelNodes()}
        self.click("ganbridge_regenerate")
        return True

    def wait_again(self):
        if not self._grown():
            return False
        label, item = self.again_of
        # the layer that is new (not the active one: Krita may make it active a moment later)
        made = next(n for n in self.doc.topLevelNodes() if n.uniqueId().toString() not in self.ids_before)
        original = self._layer_of(item)
        b = original.bounds()
        same = bytes(made.pixelData(b.x(), b.y(), b.width(), b.height())) == bytes(
            original.pixelData(b.x(), b.y(), b.width(), b.height())
        )
        self.report.setdefault("again", []).append([label, same, made.name()])
        return True

    def odd_document(self):
        app = Krita.instance()
        self.doc = app.createDocument(300, 200, "odd", "RGBA", "U8", "", 72.0)
        self.view = app.activeWindow().addView(self.doc)
        return True

    def _texture_form(self, size, maps):
        self.w(QComboBox, "ganbridge_generator").setCurrentText("texture")
        self.w(QSpinBox, "ganbridge_count").setValue(1)
        for name in ("param_width", "param_height"):
            self.w(QSpinBox, name).setValue(size)
        for name in ("height", "normal", "roughness", "ao"):
            self.w(QCheckBox, f"param_maps_{name}").setChecked(name in maps)

    def canvas_size(self):
        """Canvas size on a 300x200 canvas (the form at another size first), then Generate."""
        if Krita.instance().activeDocument() != self.doc:
            return False
        self._texture_form(64, [])
        self.click("ganbridge_docsize")
        self.report["canvas_size_form"] = [self.w(QSpinBox, f"param_{n}").value() for n in ("width", "height")]
        return self._click_expecting("ganbridge_generate", 1)

    def wait_grown_by_one(self):
        if not self._grown():
            return False
        node = self.doc.topLevelNodes()[-1]
        b = node.bounds()
        self.report.setdefault("grown", []).append([node.name(), node.type(), [b.x(), b.y(), b.width(), b.height()]])
        return True

    def generate_with_maps(self):
        self._texture_form(64, ["height", "normal", "roughness", "ao"])
        return self._click_expecting("ganbridge_generate", 1)

    def wait_maps_group(self):
        """The group of the result with maps, a moment after it went in (Krita may change the
        active layer after an add)."""
        from ganbridge import docker

        if not self._grown():
            return False
        if not hasattr(self, "maps_in_at"):
            self.maps_in_at = time.monotonic()
        if time.monotonic() - self.maps_in_at < 0.5:
            return False
        strip = self.w(QListWidget, "ganbridge_strip")
        strip.clearSelection()  # the buttons act on the active layer
        group = self.doc.topLevelNodes()[-1]
        active, d = self.doc.activeNode(), docker.DOCKERS[0]
        self.report["maps_group"] = {
            "name": group.name(), "type": group.type(),
            "children": [[c.name(), c.visible()] for c in group.childNodes()],
            "active": active.name() if active else None, "export_name": d.shown_result().name,
            "items": [d.current_items()],  # what Like, Variations and Make again act on
            "thumbnail": strip.item(strip.count() - 1).data(Qt.UserRole), "pass_through": group.passThroughMode(),
        }  # fmt: skip
        self.to_activate = group.childNodes()[:2]  # the colour layer, and the ao map above it
        return True

    def activate_group_layers(self):
        """Each layer of the group active in turn (once Krita has taken it): what the buttons act on."""
        from ganbridge import docker

        node, active = self.to_activate[0], self.doc.activeNode()
        if active is None or active.uniqueId() != node.uniqueId():
            self.doc.setActiveNode(node)
            return False
        self.report["maps_group"]["items"].append(docker.DOCKERS[0].current_items())
        self.to_activate.pop(0)
        return not self.to_activate

    def generate_after_maps(self):
        """With a map layer of that group active, a result without maps."""
        self._texture_form(64, [])
        return self._click_expecting("ganbridge_generate", 1)

    def undo_once(self):
        self.before_undo = {n.uniqueId().toString(): n.name() for n in self.doc.topLevelNodes()}
        Krita.instance().action("edit_undo").trigger()
        self.undo_started = time.monotonic()
        return True

    def wait_undone_once(self):
        """What one undo took out of the top level (waiting up to 3 s for it), and what is left."""
        left = {n.uniqueId().toString(): n for n in self.doc.topLevelNodes()}
        if len(left) == len(self.before_undo) and time.monotonic() - self.undo_started < 3:
            return False
        gone = [name for key, name in self.before_undo.items() if key not in left]
        self.report.setdefault("undone", []).append([gone, [[n.name(), n.type()] for n in left.values()]])
        return True

    def presets_after_restart(self):
        self.w(QComboBox, "ganbridge_generator").setCurrentText("texture")
        self.report["preset_items_after_restart"] = self._preset_items()
        return True

    def fill(self):
        sel = Selection()
        sel.select(*JOB["selection"], 255)
        self.doc.setSelection(sel)
        self.click("ganbridge_fill")
        return True

    def wait_filled(self):
        return any(n.endswith(" fill") for n in self.names())

    def like(self):
        self.click("ganbridge_like")
        return True

    def wait_liked(self):
        return self.status() == "Liked"

    def blend(self):
        strip = self.w(QListWidget, "ganbridge_strip")
        self.report["thumbnails"] = strip.count()
        strip.clearSelection()
        strip.item(0).setSelected(True)
        strip.item(1).setSelected(True)
        self.w(QSpinBox, "ganbridge_steps").setValue(3)
        self.layers_before_blend = len(self.names())
        self.click("ganbridge_blend")
        return True

    def wait_blended(self):
        return len(self.names()) == self.layers_before_blend + 3

    def _click_expecting(self, button, new_layers):
        self.layers_before = len(self.names())
        self.expect = new_layers
        self.click(button)
        return True

    def _grown(self):
        return len(self.names()) == self.layers_before + self.expect

    def variations(self):
        strip = self.w(QListWidget, "ganbridge_strip")
        strip.clearSelection()
        strip.item(0).setSelected(True)
        self.w(QSpinBox, "ganbridge_count").setValue(2)
        return self._click_expecting("ganbridge_variations", 2)

    def wait_varied(self):
        return self._grown()

    def steer(self):
        return self._click_expecting("ganbridge_steer", 2)

    def wait_steered(self):
        return self._grown()

    def _bars(self):
        return [bar.format() for bar in self.docker.findChildren(QProgressBar, "ganbridge_job") if bar.isVisible()]

    def _watch_bars(self):
        self.bars_seen += self._bars()
        self.statuses_seen.append(self.status())

    def into_group(self):
        """A layer inside a group is active: the result goes into that group, right above it."""
        self.group = self.doc.createGroupLayer("artwork")
        self.doc.rootNode().addChildNode(self.group, None)
        lower, upper = self.doc.createNode("sketch", "paintlayer"), self.doc.createNode("ink", "paintlayer")
        self.group.addChildNode(lower, None)
        self.group.addChildNode(upper, lower)
        self.sketch = lower
        return True

    def generate_on_sketch(self):
        """Once Krita has taken in the new layers (it activates the last one added), activate
        "sketch" as a painter would by clicking it, and generate."""
        self.doc.setActiveNode(self.sketch)
        active = self.doc.activeNode()
        if active is None or active.name() != "sketch":
            return False
        self.click("ganbridge_generate")
        return True

    def wait_in_group(self):
        children = [n.name() for n in self.group.childNodes()]
        if len(children) < 3:
            return False
        self.report["group_children"] = children
        self.group_active_ticks = 0
        return True

    def activate_group(self):
        """The next results go above the group, at the top level. Krita activates a layer it has
        just added a moment after the add, so the group is set active until it stays so."""
        active = self.doc.activeNode()
        if active is not None and active.name() == self.group.name():
            self.group_active_ticks += 1
            return self.group_active_ticks >= 3
        self.group_active_ticks = 0
        self.doc.setActiveNode(self.group)
        return False

    def cancel_one(self):
        """Two requests: a long one (8 at 1024²) and a small one queued behind it."""
        self.bars_seen, self.statuses_seen = [], []
        self.layers_before = len(self.names())
        count = self.w(QSpinBox, "ganbridge_count")
        for size, n in ((1024, 8), (JOB["size"], 1)):
            self.w(QSpinBox, "param_width").setValue(size)
            self.w(QSpinBox, "param_height").setValue(size)
            count.setValue(n)
            self.click("ganbridge_generate")
        return True

    def wait_one_running(self):
        """Once the long one has made a result and the small one waits, cancel only the long one."""
        self._watch_bars()
        bars = self._bars()
        if len(bars) != 2 or "/8" not in bars[0] or bars[0].endswith(" 0/8"):
            return False
        self.report["cancel_one_clicked_with"] = bars
        self.docker.findChildren(QPushButton, "ganbridge_cancel_job")[0].click()
        return True

    def wait_one_cancelled(self):
        self._watch_bars()
        if self._bars() or self.w(QListWidget, "ganbridge_strip").count() == 0:
            return False
        top = self.doc.activeNode()
        if top is None or top.bounds().width() != JOB["size"]:
            return False  # the small request's layer is not in yet
        b = top.bounds()
        self.report["cancel_one"] = {
            "bars": sorted(set(self.bars_seen)), "statuses": sorted(set(self.statuses_seen)),
            "new_layers": len(self.names()) - self.layers_before, "top": [b.width(), b.height()],
        }  # fmt: skip
        self.w(QSpinBox, "ganbridge_count").setValue(1)
        return True

    def cancel(self):
        self.w(QSpinBox, "param_width").setValue(1024)
        self.w(QSpinBox, "param_height").setValue(1024)
        self.w(QSpinBox, "ganbridge_count").setValue(8)
        self.layers_before = len(self.names())
        self.click("ganbridge_generate")
        self.click("ganbridge_cancel")
        return True

    def wait_cancelled(self):
        if not self.status().endswith("cancelled"):
            return False
        self.report["layers_after_cancel"] = len(self.names()) - self.layers_before
        return True

    def wait_recipes(self):
        if "ganbridge" not in self.doc.annotationTypes():
            return False
        layers = json.loads(bytes(self.doc.annotation("ganbridge")))["layers"]
        return len(layers) == 9 and all("checkpoint" in r for r in layers.values())

    def undo(self):
        self.layers_before = len(self.names())
        Krita.instance().action("edit_undo").trigger()
        self.undo_started = time.monotonic()
        return True

    def wait_undone(self):
        if len(self.names()) < self.layers_before or time.monotonic() - self.undo_started > 3:
            self.report["undo_removed_layers"] = self.layers_before - len(self.names())
            return True
        return False

    def save(self):
        self.doc.setBatchmode(True)
        assert self.doc.saveAs(JOB["kra"]), "saveAs failed"
        self.report["layers"] = self.names()
        self.report["elapsed"] = time.monotonic() - self.started
        return True

    # --- how long the GUI thread is held while large results arrive --------------------------------

    def time_the_gui(self):
        """Time every tick of the plugin's timer (its drain and work slices), and, independently,
        the longest gap between ticks of a 2 ms probe timer (anything holding the GUI thread)."""
        from ganbridge import canvas, connection

        conn = connection.shared()
        self.blocks = self.report["blocks"] = {}
        self.longest_tick = self.longest_gap = self.longest_own = self.longest_add = 0.0
        self.add_in_tick, self.slices = 0.0, 0
        insertion_point = canvas._insertion_point

        def timed_insertion_point(doc):
            parent, above = insertion_point(doc)
            return TimedParent(parent, self), above

        canvas._insertion_point = timed_insertion_point

        step = conn.work._step

        def counted_step(work):
            self.slices += 1
            return step(work)

        conn.work._step = counted_step  # every slice of the plugin's work, counted

        def timed_drain():
            self.add_in_tick = 0.0
            t = time.perf_counter()
            conn.drain()
            tick = time.perf_counter() - t
            self.longest_tick = max(self.longest_tick, tick)
            self.longest_own = max(self.longest_own, tick - self.add_in_tick)
            self.longest_add = max(self.longest_add, self.add_in_tick)

        conn.timer.timeout.disconnect(conn.drain)
        conn.timer.timeout.connect(timed_drain)
        self.last_probe = time.perf_counter()

        def probe():
            now = time.perf_counter()
            self.longest_gap = max(self.longest_gap, now - self.last_probe)
            self.last_probe = now

        self.probe = QTimer()
        self.probe.setInterval(2)
        self.probe.timeout.connect(probe)
        self.probe.start()
        return True

    def native_duplicate(self):
        """Krita's own cost of a new layer of the canvas's size, for comparison with the results'
        GUI gaps: its Duplicate Layer action on the full-canvas layer the soft fill made, as a
        painter would press it (Krita copies, composites and redraws; no ganbridge code runs)."""
        self.longest_tick = self.longest_gap = 0.0
        self.layers_before, self.native_started = len(self.names()), time.monotonic()
        t = time.perf_counter()
        Krita.instance().action("duplicatelayer").trigger()
        self.report["native_duplicate_call_ms"] = round((time.perf_counter() - t) * 1000, 1)
        return True

    def wait_native(self):
        """The longest GUI gap within 3 s of the Duplicate Layer action (its layer is there)."""
        if time.monotonic() - self.native_started < 3 or len(self.names()) <= self.layers_before:
            return time.monotonic() - self.native_started > 20
        self.report["native_duplicate_gui_gap_ms"] = round(self.longest_gap * 1000, 1)
        return True

    def stop_timing(self):
        self.probe.stop()
        return True

    def make_big_document(self):
        app = Krita.instance()
        self.doc = app.createDocument(2048, 1536, "big", "RGBA", "U8", "", 72.0)
        self.view = app.activeWindow().addView(self.doc)
        self.w(QSpinBox, "ganbridge_count").setValue(1)
        self.empty_adds = self.report["empty_layer_add_ms"] = []
        return True

    def add_empty_layer(self):
        """Krita's own cost of adding a layer (an empty one, as a script or a painter adds it), for
        comparison with the results' longest ticks: one per GUI tick, then removed."""
        node = self.doc.createNode("empty", "paintlayer")
        t = time.perf_counter()
        self.doc.rootNode().addChildNode(node, None)
        self.empty_adds.append(round((time.perf_counter() - t) * 1000, 1))
        node.remove()
        return len(self.empty_adds) >= 5

    def _start_big(self, label, on_top):
        self.big_label, self.big_on_top = label, on_top
        self.layers_before, self.expect = len(self.names()), 1
        self.longest_tick = self.longest_gap = self.longest_own = self.longest_add = 0.0
        self.slices = 0
        self.big_started = time.monotonic()

    def big_texture(self, size):
        self.w(QComboBox, "ganbridge_generator").setCurrentText("texture")
        self.w(QComboBox, "param_model").setCurrentText(JOB["model"])
        for name in ("param_width", "param_height"):
            self.w(QSpinBox, name).setValue(size)
        # Three maps: 2048² with all four is over the bridge's default request budget (16 Mpx).
        for name in ("height", "normal", "roughness", "ao"):
            self.w(QCheckBox, f"param_maps_{name}").setChecked(name != "roughness")
        self._start_big(f"texture {size}x{size} with 3 maps", True)
        self.click("ganbridge_generate")
        return True

    def soft_fill(self):
        """A glyph (with alpha) tiled over a half-strength selection of the whole 2048x1536 canvas."""
        self.w(QComboBox, "ganbridge_generator").setCurrentText("image")
        sel = Selection()
        sel.select(0, 0, 2048, 1536, 128)
        self.doc.setSelection(sel)
        self._start_big("image fill of a soft 2048x1536 selection", False)
        self.click("ganbridge_fill")
        return True

    def wait_big(self):
        from ganbridge import connection

        busy = connection.shared().work.busy
        if busy and "busy_click_ms" not in self.report:
            t = time.perf_counter()  # a button pressed while a result is being decoded or applied
            self.click("ganbridge_like")
            self.report["busy_click_ms"] = (time.perf_counter() - t) * 1000
        if busy or not self._grown():
            return False
        node = self.doc.activeNode()
        if node.type() == "grouplayer":  # a texture with maps: its colour layer is at the bottom
            node = node.childNodes()[0]
        b = node.bounds()
        x, y = b.x() + b.width() // 2, b.y() + b.height() // 2
        shown = bytes(self.doc.pixelData(x, y, 1, 1)) == bytes(node.pixelData(x, y, 1, 1))
        if self.big_on_top and not shown and time.monotonic() - self.big_started < 20:
            return False  # the canvas's projection has not caught up yet
        self.blocks[self.big_label] = {
            "plugin_tick_ms": round(self.longest_tick * 1000, 1), "gui_gap_ms": round(self.longest_gap * 1000, 1),
            "own_tick_ms": round(self.longest_own * 1000, 1), "krita_add_ms": round(self.longest_add * 1000, 1),
            "slices": self.slices,
            "seconds": round(time.monotonic() - self.big_started, 2), "shown": shown,
        }  # fmt: skip
        return True

    # --- live: sliders, a preview layer written in place, commit, stop ------------------------------

    def panel(self):
        from ganbridge import docker

        return docker.DOCKERS[0].live

    def preview(self, doc=None):
        return next((n for n in (doc or self.doc).topLevelNodes() if n.name().startswith("GAN live")), None)

    @staticmethod
    def pixels(node):
        b = node.bounds()
        return bytes(node.pixelData(b.x(), b.y(), b.width(), b.height()))

    def live_status(self):
        return self.w(QLabel, "ganbridge_live_status").text()

    def live_document(self):
        """A document of its own, shown in a new view (so Krita's Layers docker follows it)."""
        app = Krita.instance()
        self.doc = app.createDocument(JOB["width"], JOB["height"], "live", "RGBA", "U8", "", 72.0)
        self.view = app.activeWindow().addView(self.doc)
        base = self.doc.createNode("painting", "paintlayer")
        self.doc.rootNode().addChildNode(base, None)
        return True

    def row_of(self, words):
        """The first strip entry whose label has `words`."""
        strip = self.w(QListWidget, "ganbridge_strip")
        return next(i for i in range(strip.count()) if words in strip.item(i).text())

    def live_start(self, thumbnails=()):
        """A fresh latent of the form's generator (no thumbnail selected), at the form's size, or
        the result of strip entry `thumbnails[0]` (toward the second, if two); with the topmost
        layer active, so the preview goes on top and the canvas shows it."""
        self.w(QComboBox, "ganbridge_generator").setCurrentText("texture")
        self.w(QComboBox, "param_model").setCurrentText(JOB["model"])
        for name in ("param_width", "param_height"):
            self.w(QSpinBox, name).setValue(JOB.get("live_size", JOB["size"]))
        strip = self.w(QListWidget, "ganbridge_strip")
        strip.clearSelection()
        for row in thumbnails:  # in this order, as a painter Ctrl+clicks them
            strip.item(row).setSelected(True)
        self.live_from = [strip.item(row).data(Qt.UserRole) for row in thumbnails]
        top = [n for n in self.doc.topLevelNodes() if n.type() == "paintlayer"][-1]
        self.doc.setActiveNode(top)
        if self.doc.activeNode() is None or self.doc.activeNode().name() != top.name():
            return False
        self.layers_before_live = len(self.names())
        self.live = self.report.setdefault("live", {})
        self.longest_tick = self.longest_gap = 0.0
        self.live_started = time.monotonic()
        t = time.perf_counter()
        self.click("ganbridge_live_start")
        self.live.setdefault("start_click_ms", []).append(round((time.perf_counter() - t) * 1000, 2))
        return True

    def wait_live_open(self):
        """The preview layer holds the first frame, and the sliders are there."""
        node = self.preview()
        if node is None or node.bounds().width() == 0:
            return False
        sliders = {s.objectName(): s for s in self.docker.findChildren(QSlider)}
        self.live["sliders"] = [n for n in sliders if n.startswith("ganbridge_live_slider_")]
        self.live["slider_labels"] = [self.panel().session.slider_label(i) for i in range(len(self.live["sliders"]))]
        knobs = {n: [s.minimum(), s.maximum(), s.value()] for n, s in sliders.items() if n not in self.live["sliders"]}
        self.live.setdefault("knobs", []).append(knobs)  # Temperature, and Blend with a second result
        self.live.setdefault("first_frame_s", []).append(round(time.monotonic() - self.live_started, 2))
        self.live["preview"] = [node.name(), node.bounds().width(), node.bounds().height()]
        self.live["layers_added_by_start"] = len(self.names()) - self.layers_before_live
        self.live["status_open"] = self.live_status()
        if self.panel().parents:
            key = "from_thumbnail" if len(self.live_from) == 1 else "from_two_thumbnails"
            self.live[key] = [self.panel().parents == self.live_from, *self.live["preview"]]
        # Ticks from here on apply frames in place; the one that added the preview is Krita's layer add.
        self.live.setdefault("open_tick_ms", []).append(round(self.longest_tick * 1000, 1))
        self.longest_tick = self.longest_gap = 0.0
        self.undo_before = Krita.instance().action("edit_undo").text()
        self.seen_pixels = [self.pixels(node)]
        self.drag = [50, 100, 150, 200, 250, 300, 250, 200]  # as a drag does: many small steps
        self.drag_done = 0
        return True

    def nudge(self):
        """Two slider steps only (a session whose frames are shown by refreshing the image)."""
        self.drag = [100, 200]
        return True

    def live_drag(self):
        """One slider step per driver tick (a drag), watching the preview's pixels change."""
        self._watch_preview()
        if self.drag_done < len(self.drag):
            slider = self.w(QSlider, "ganbridge_live_slider_0")
            t = time.perf_counter()
            slider.setValue(self.drag[self.drag_done])
            self.live.setdefault("move_ms", []).append(round((time.perf_counter() - t) * 1000, 2))
            self.drag_done += 1
            if self.drag_done == 3 and len(self.drag) > 3:  # the painter clicks another layer mid-drag
                other = next(n for n in self.doc.topLevelNodes() if not n.name().startswith("GAN live"))
                self.doc.setActiveNode(other)
            return False
        return True

    def _watch_preview(self):
        node = self.preview()
        if node is not None and self.pixels(node) != self.seen_pixels[-1]:
            self.seen_pixels.append(self.pixels(node))

    def wait_live_settled(self):
        """The last move's frame is in the layer, and on the canvas (Krita recomposited it)."""
        self._watch_preview()
        panel, node = self.panel(), self.preview()
        if panel.session.shown != panel.session.seq or panel.in_flight or panel.conn.work.busy:
            return False
        b = node.bounds().intersected(self.doc.bounds())  # the canvas shows only what is inside the image
        x, y = b.x() + b.width() // 2, b.y() + b.height() // 2
        on_canvas = bytes(self.doc.pixelData(x, y, 1, 1)) == bytes(node.pixelData(x, y, 1, 1))
        if not on_canvas and time.monotonic() - self.step_started < 10:
            return False
        self.live.setdefault("sessions", []).append({
            "document": self.doc.name(), "on_canvas": on_canvas, "states_seen": len(self.seen_pixels),
            "moves": panel.session.seq, "frames_shown": panel.frames_shown, "repaints": dict(panel.repaints),
            "status": self.live_status(), "plugin_tick_ms": round(self.longest_tick * 1000, 1),
            "gui_gap_ms": round(self.longest_gap * 1000, 1), "seconds": round(time.monotonic() - self.live_started, 2),
            "active": self.doc.activeNode().name(),
            "undo_text": [self.undo_before, Krita.instance().action("edit_undo").text()],
        })  # fmt: skip
        self.last_shown = self.pixels(node)
        return True

    def live_sweep(self):
        """A fast drag: the slider moved every 5 ms for a second and a half, back and forth. How
        many frames Krita shows a second then is the most a drag gets (moves outrun frames)."""
        panel = self.panel()
        self.sweep = {"frames": panel.frames_shown, "moves": panel.session.seq, "started": time.monotonic()}
        self.longest_tick = self.longest_gap = 0.0
        slider, positions = self.w(QSlider, "ganbridge_live_slider_0"), list(range(-300, 301, 10))
        positions += positions[::-1]

        def move():
            elapsed = time.monotonic() - self.sweep["started"]
            if elapsed > 1.5:
                self.sweep_timer.stop()
                return
            slider.setValue(positions[int(elapsed / 0.005) % len(positions)])

        self.sweep_timer = QTimer()
        self.sweep_timer.setInterval(5)
        self.sweep_timer.timeout.connect(move)
        self.sweep_timer.start()
        return True

    def wait_swept(self):
        panel = self.panel()
        if self.sweep_timer.isActive():
            if self.sweep.get("frames_in_sweep") is None and time.monotonic() - self.sweep["started"] > 1.45:
                self.sweep["frames_in_sweep"] = panel.frames_shown - self.sweep["frames"]
            return False
        if panel.session.shown != panel.session.seq or panel.in_flight or panel.conn.work.busy:
            return False
        frames = self.sweep.get("frames_in_sweep", panel.frames_shown - self.sweep["frames"])
        self.live["sweep"] = {
            "moves": panel.session.seq - self.sweep["moves"], "frames": frames, "frames_per_s": round(frames / 1.5, 1),
            "plugin_tick_ms": round(self.longest_tick * 1000, 1), "gui_gap_ms": round(self.longest_gap * 1000, 1),
            "repaints": dict(panel.repaints), "status": self.live_status(),
        }  # fmt: skip
        self.last_shown = self.pixels(self.preview())
        return True

    def live_undo(self):
        """Undo right after the drag takes the preview layer out: the frames left no undo step."""
        Krita.instance().action("edit_undo").trigger()
        return True

    def wait_live_undone(self):
        if self.preview() is not None:
            return False
        Krita.instance().action("edit_redo").trigger()
        return True

    def wait_live_redone(self):
        node = self.preview()
        if node is None:
            return False
        self.live["undo_redo"] = self.pixels(node) == self.last_shown
        return True

    def drag_knob(self, knob, positions):
        """A step dragging the Live section's `knob` slider (temperature, blend) through
        `positions`, one per driver tick, watching the preview's pixels."""
        todo = list(positions)

        def drag_knob():
            self._watch_preview()
            if not hasattr(self, "knob_from"):
                self.knob_from = (self.pixels(self.preview()), len(self.seen_pixels), self.panel().session.seq)
            if todo:
                self.w(QSlider, f"ganbridge_live_{knob}").setValue(todo.pop(0))
                return False
            return True

        return drag_knob

    def wait_knob(self, key):
        """A step waiting for the frame of the last move since the previous wait_knob (or since
        the session opened): records whether the preview changed, and the sliders' positions."""

        def wait_knob():
            self._watch_preview()
            panel = self.panel()
            if panel.session.shown != panel.session.seq or panel.in_flight or panel.conn.work.busy:
                return False
            before, states, seq = self.knob_from
            del self.knob_from
            shown = self.pixels(self.preview())
            self.live.setdefault("knob_drags", {})[key] = {
                "changed": shown != before, "states_seen": len(self.seen_pixels) - states + 1,
                "moves": panel.session.seq - seq, "equals_first_frame": shown == self.seen_pixels[0],
                "positions": {s.objectName(): s.value() for s in self.docker.findChildren(QSlider)},
                "status": self.live_status(), "session": panel.session.status,
            }  # fmt: skip
            self.last_shown = shown
            return True

        return wait_knob

    def live_refused(self):
        """A move the bridge refuses (another size: a latent of other shapes)."""
        from ganbridge import connection

        connection.shared().request("live_move", id=self.panel().session.id, params={"width": 256})
        return True

    def wait_live_refused(self):
        if not self.live_status().startswith("⚠"):
            return False
        self.live["refused"] = [self.live_status(), self.panel().session.status]
        return True

    def live_reset(self):
        """Reset after a temperature and a blend drag: the requests it sends are counted."""
        conn = self.panel().conn
        sent, request = [], conn.request
        conn.request = lambda kind, **fields: sent.append([kind, sorted(fields)]) or request(kind, **fields)
        self.knob_from = (self.pixels(self.preview()), len(self.seen_pixels), self.panel().session.seq)
        try:
            self.click("ganbridge_live_reset")
        finally:
            del conn.request
        self.live["reset_sent"] = sent
        return True

    def wait_params_committed(self):
        """The commit of a blended state at another temperature is in, with the bridge's recipe."""
        top = self.doc.activeNode()
        if top is None or top.name().startswith("GAN live") or self.panel().conn.work.busy:
            return False
        recipe = json.loads(bytes(self.doc.annotation("ganbridge")))["layers"].get(top.uniqueId().toString(), {})
        if "checkpoint" not in recipe:
            return False
        self.live["params_commit"] = {
            "item": recipe.get("item"), "temperature": recipe["params"].get("temperature"),
            "parents": recipe.get("parents"), "from": self.live_from, "origin": recipe.get("origin"),
            "equals_last_frame": self.pixels(top) == self.last_shown,
        }  # fmt: skip
        return True

    def live_commit(self):
        self.layers_before = len(self.names())
        self.click("ganbridge_live_commit")
        return True

    def wait_live_committed(self):
        top = self.doc.activeNode()
        if top is None or top.name().startswith("GAN live") or len(self.names()) == self.layers_before:
            return False
        if self.panel().conn.work.busy:
            return False
        recipe = json.loads(bytes(self.doc.annotation("ganbridge")))["layers"].get(top.uniqueId().toString(), {})
        self.live.update(
            committed_name=top.name(), committed_new_layers=len(self.names()) - self.layers_before,
            committed_equals_last_frame=self.pixels(top) == self.last_shown, committed_origin=recipe.get("origin"),
            committed_item=recipe.get("item"), committed_parents=recipe.get("parents"),
        )  # fmt: skip
        return True

    def live_stop(self):
        self.layers_before = len(self.names())
        self.click("ganbridge_live_stop")
        return True

    def wait_live_stopped(self):
        if self.preview() is not None or self.panel().conn.work.busy:
            return False
        self.live.setdefault("stopped", []).append(
            [self.layers_before - len(self.names()), self.live_status(), Krita.instance().action("edit_undo").text()]
        )
        return True

    def close_docker(self):
        self.docker.close()  # its title bar's close button
        return True

    def wait_docker_closed(self):
        """Closing the docker ended its session and took the preview out; then it is shown again."""
        if self.preview() is not None or self.panel().conn.work.busy:
            return False
        self.live["docker_closed"] = [self.live_status(), self.panel().session.status]
        self.docker.show()
        return self.docker.isVisible()

    def wait_live_switched(self):
        """Another document became active: the session stopped and its preview left the first one."""
        live_doc = next(d for d in Krita.instance().documents() if d.name() == "live")
        if self.preview(live_doc) is not None:
            return False
        self.live["switched"] = [self.live_status(), self.panel().session.status]
        return True

    def point_at_no_bridge(self):
        import socket

        from ganbridge import connection

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.click("ganbridge_generate")  # a job the bridge is still working on when it goes away
        connection.shared().open(f"ws://127.0.0.1:{port}/", "")
        return True

    def wait_no_bridge(self):
        if "cannot reach the bridge" not in self.status() or self.preview() is not None:
            return False
        self.live["lost"] = [self.live_status(), self.panel().session.status]
        self.report["lost_job"] = self.status()
        self.click("ganbridge_generate")
        self.report["no_bridge"] = self.status()
        return True


class DriverExtension(Extension):
    def setup(self):
        pass

    def createActions(self, window):  # noqa: N802
        if JOB.get("report") and not hasattr(Krita.instance(), "_ganbridge_driver"):
            Krita.instance()._ganbridge_driver = Driver()


Krita.instance().addExtension(DriverExtension(Krita.instance()))
