"""Running real Krita (Debian's krita) for the plugin tests: a temporary profile with the plugin
imported from the built zip by Krita's own importer, `kritarunner` scripts, and the GUI under Xvfb.

The end of this file is Krita's side of the provenance tests: a driver that Krita imports from here
(a two-line plugin in the profile loads it), so the test and what it clicks sit side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTS = HERE / "hosts"
DRIVER = HOSTS / "krita_driver"
TEST_DRIVER = "ganbridge_testdriver"
PROVENANCE_DRIVER = "ganbridge_provenance_driver"
IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def krita_module(name: str):
    """A Qt-free module of the Krita plugin, imported as the built plugin holds it: the plugin's
    files and the shared client modules in one package (`krita_plugin`, not `ganbridge`, which is
    the bridge's own name here), whose __init__ (it needs Krita) is never run."""
    import importlib
    import types

    package = sys.modules.get("krita_plugin")
    if package is None:
        package = types.ModuleType("krita_plugin")
        package.__path__ = [
            str(HERE.parents[1] / "plugins" / "krita" / "ganbridge"),
            str(HERE.parents[1] / "plugins" / "client"),
        ]
        sys.modules["krita_plugin"] = package
    return importlib.import_module(f"krita_plugin.{name}")


class KritaProfile:
    """XDG folders of a throwaway Krita user, with the GAN Bridge plugin imported and enabled."""

    def __init__(self, root: Path, plugin_zip: Path, bridge_url: str):
        from tests.conftest import require_tool  # here, not above: Krita imports this file too

        require_tool("krita", "krita python3-pyqt5")
        require_tool("kritarunner", "krita")
        self.root = root
        self.data, self.config = root / "data", root / "config"
        self.resources = self.data / "krita"
        self.resources.mkdir(parents=True)
        self.config.mkdir()
        # Krita's own "Import Python Plugin from File" logic, run on the built zip.
        subprocess.run(
            [sys.executable, str(IMPORTER), str(plugin_zip), str(self.resources)], check=True, capture_output=True
        )
        self.write_settings(bridge_url, enable=["ganbridge"])

    def write_settings(self, bridge_url: str, enable: list[str]) -> None:
        """kritarc for the next run: these plugins, this bridge. What the plugin saved in its own
        settings on an earlier run (its presets) is kept, as Krita keeps it between starts."""
        kritarc = self.config / "kritarc"
        old = kritarc.read_text().splitlines() if kritarc.exists() else []
        kept = "".join(f"{line}\n" for line in old if line.startswith("presets="))
        python = "\n".join(f"enable_{name}=true" for name in enable)
        kritarc.write_text(
            f"[python]\n{python}\n\n[ganbridge]\nurl={bridge_url}\ntoken=\n{kept}\n[General]\nshowSplash=false\n"  # fmt: skip
        )

    @property
    def pykrita(self) -> Path:
        return self.resources / "pykrita"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
        # Krita embeds the system Python; with a venv's bin/ first on PATH it takes that venv's
        # prefix and loses the system's PyQt5.
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").is_file()
        )
        env.update(
            XDG_DATA_HOME=str(self.data),
            XDG_CONFIG_HOME=str(self.config),
            XDG_CACHE_HOME=str(self.root / "cache"),
            XDG_RUNTIME_DIR=str(self.root / "runtime"),
            HOME=str(self.root),
            QT_QPA_PLATFORM="offscreen",
            PYTHONPATH=os.pathsep.join(map(str, (self.pykrita, HOSTS, HERE))),
            PYTHONDONTWRITEBYTECODE="1",
        )
        (self.root / "runtime").mkdir(mode=0o700, exist_ok=True)
        env.update(extra)
        return env

    def kritarunner(self, function: str, job: dict, timeout: float = 180) -> dict:
        """Run tests/hosts/krita_script.py:function in kritarunner; return its report (asserting ok)."""
        report = Path(job["report"])
        proc = subprocess.run(
            ["kritarunner", "-s", "krita_script", "-f", function],
            env=self.env(GANBRIDGE_KRITA_JOB=json.dumps(job)),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert report.is_file(), (
            f"kritarunner wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
        data = json.loads(report.read_text())
        assert data["ok"], f"the Krita script failed:\n{data.get('error')}\n{proc.stderr[-2000:]}"
        return data

    def install_driver(self, driver: str) -> None:
        if (self.pykrita / driver).exists():
            return
        if driver == TEST_DRIVER:
            shutil.copytree(DRIVER / driver, self.pykrita / driver)
            shutil.copy2(DRIVER / f"{driver}.desktop", self.pykrita)
            return
        (self.pykrita / driver).mkdir()
        (self.pykrita / driver / "__init__.py").write_text("import krita_support\n\nkrita_support.install_driver()\n")
        (self.pykrita / f"{driver}.desktop").write_text(
            "[Desktop Entry]\nType=Service\nServiceTypes=Krita/PythonPlugin\n"
            f"X-KDE-Library={driver}\nX-Python-2-Compatible=false\nName=GAN Bridge provenance test driver\n"
        )

    def gui(self, job: dict, bridge_url: str, timeout: float = 180, driver: str = TEST_DRIVER) -> dict:
        """Real Krita with its GUI on a virtual X screen; a test-driver plugin clicks through the
        docker (tests/hosts/krita_driver, or ProvenanceDriver below) and writes `job["report"]`.
        Only one driver is enabled per run: each acts on any job it finds."""
        from tests.conftest import require_tool

        require_tool("xvfb-run", "xvfb xauth")
        self.install_driver(driver)
        self.write_settings(bridge_url, enable=["ganbridge", driver])
        report = Path(job["report"])
        env = self.env(GANBRIDGE_KRITA_JOB=json.dumps(job), QT_QPA_PLATFORM="xcb")
        for _attempt in range(2):
            proc = subprocess.run(
                ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "krita", "--nosplash"],
                env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
            # Seen once on a loaded machine: Krita could not reach the X server that xvfb-run had
            # just started (`-a` picks a display, and another may take it). That is the test
            # machine, not the plugin: try once more; any other failure counts at once.
            if report.is_file() or "no Qt platform plugin could be initialized" not in proc.stderr:
                break
        assert report.is_file(), f"Krita wrote no report (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        data = json.loads(report.read_text())
        assert data["ok"], (
            f"the GUI run failed:\n{data.get('error')}\nsteps: {data.get('steps')}\n{proc.stderr[-2000:]}"
        )
        return data


# --- Krita's side: runs inside Krita's own Python, imported by the PROVENANCE_DRIVER plugin ---------


class ProvenanceDriver:
    """Drives the docker's provenance view and Export result… in the real GUI, step by step from a
    QTimer (the GUI stays live between steps, as when a painter clicks), then reports and quits."""

    def __init__(self, job: dict) -> None:
        from ganbridge.qt import QTimer

        self.job = job
        self.report: dict = {"steps": [], "ok": False}
        self.steps = [
            self.wait_window, self.find_docker, self.wait_connected, self.make_document, self.export_nothing,
            self.generate, self.wait_recipe, self.select_thumbnail, self.wait_exported, self.export_unknown,
            self.wait_failed, self.export_unwritable, self.wait_failed, self.reopen, self.wait_reopened,
            self.point_at_no_bridge, self.export_without_bridge,
        ]  # fmt: skip
        self.step_started = time.monotonic()
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # --- plumbing -------------------------------------------------------------------------------

    def tick(self) -> None:
        try:
            step = self.steps[0]
            if step():
                self.report["steps"].append([step.__name__, round(time.monotonic() - self.step_started, 3)])
                self.steps.pop(0)
                self.step_started = time.monotonic()
                if not self.steps:
                    self.finish(True)
            elif time.monotonic() - self.step_started > self.job.get("step_timeout", 60):
                raise TimeoutError(f"step {step.__name__} timed out; status: {self.status()!r}")
        except Exception:
            self.report["error"] = traceback.format_exc()
            self.finish(False)

    def finish(self, ok: bool) -> None:
        from krita import Krita

        self.timer.stop()
        self.report["ok"] = ok
        Path(self.job["report"]).write_text(json.dumps(self.report))
        for doc in Krita.instance().documents():
            doc.setModified(False)
        Krita.instance().action("file_quit").trigger()

    def widget(self, cls_name: str, name: str):
        from ganbridge import qt

        widget = self.docker.findChild(getattr(qt, cls_name), name)
        assert widget is not None, f"the docker has no {cls_name} {name!r}"
        return widget

    def status(self) -> str:
        return self.widget("QLabel", "ganbridge_status").text() if hasattr(self, "docker") else ""

    def label(self) -> str:
        return self.widget("QLabel", "ganbridge_provenance").text()

    def strip(self):
        return self.widget("QListWidget", "ganbridge_strip")

    def select(self, row: int) -> None:
        self.strip().clearSelection()
        self.strip().item(row).setSelected(True)

    def export(self, path: str) -> None:
        from ganbridge import docker

        assert len(docker.DOCKERS) == 1, f"{len(docker.DOCKERS)} GAN Bridge dockers; the test makes one window"
        self.plugin_docker = docker.DOCKERS[0]
        self.plugin_docker.export_result(path)  # the button's method, without its file dialog

    # --- steps: each returns True when done -----------------------------------------------------

    def wait_window(self) -> bool:
        from krita import Krita

        return Krita.instance().activeWindow() is not None

    def find_docker(self) -> bool:
        from krita import Krita

        from ganbridge.qt import QPushButton

        self.docker = next(
            (d for d in Krita.instance().dockers() if d.findChild(QPushButton, "ganbridge_export") is not None), None
        )
        return self.docker is not None

    def wait_connected(self) -> bool:
        self.report["docker_visible"] = self.docker.isVisible()
        return self.status().startswith("Connected")

    def make_document(self) -> bool:
        from krita import Krita

        app = Krita.instance()
        self.doc = app.createDocument(128, 128, "provenance", "RGBA", "U8", "", 72.0)
        app.activeWindow().addView(self.doc)
        return True

    def export_nothing(self) -> bool:
        self.export(self.job["export"])
        self.report["nothing"], self.report["nothing_label"] = self.status(), self.label()
        return True

    def generate(self) -> bool:
        self.widget("QComboBox", "ganbridge_generator").setCurrentText("texture")
        self.widget("QComboBox", "param_model").setCurrentText(self.job["model"])
        for name in ("param_width", "param_height"):
            self.widget("QSpinBox", name).setValue(self.job["size"])
        self.widget("QCheckBox", "param_seed__on").setChecked(True)
        self.widget("QSpinBox", "param_seed").setValue(self.job["seed"])
        for name in ("height", "normal"):
            self.widget("QCheckBox", f"param_maps_{name}").setChecked(True)
        self.widget("QPushButton", "ganbridge_generate").click()
        return True

    def wait_recipe(self) -> bool:
        """The new layer is active; its view fills in when the bridge's recipe arrives."""
        if "Licence:" not in self.label():
            return False
        label = self.widget("QLabel", "ganbridge_provenance")
        self.report["layer_label"], self.report["layer_tip"] = label.text(), label.toolTip()
        self.report["layer_name"] = self.doc.activeNode().name()
        self.report["layer_id"] = self.doc.activeNode().uniqueId().toString()
        return True

    def select_thumbnail(self) -> bool:
        from ganbridge.qt import USER_ROLE

        self.select(0)
        self.report["item"] = self.strip().item(0).data(USER_ROLE)
        self.report["thumb_label"] = self.label()  # the selection's own signal redraws the view at once
        self.export(self.job["export"])
        self.report["export_sent"] = self.status()
        return True

    def wait_exported(self) -> bool:
        if not self.status().startswith("Exported"):
            return False
        self.report["exported"] = self.status()
        return True

    def export_unknown(self) -> bool:
        from ganbridge.qt import USER_ROLE, QListWidgetItem

        ghost = QListWidgetItem("ghost")
        ghost.setData(USER_ROLE, "0123456789abcdef")  # an item the bridge never made
        self.strip().addItem(ghost)
        self.select(self.strip().count() - 1)
        self.export(self.job["unknown_export"])
        return True

    def wait_failed(self) -> bool:
        """A failed export says so on the status line; the reports are in the order of the steps."""
        if "Export failed" not in self.status():
            return False
        self.report.setdefault("failures", []).append(self.status())
        self.plugin_docker.show_info("")
        return True

    def export_unwritable(self) -> bool:
        self.strip().takeItem(self.strip().count() - 1)
        self.select(0)
        self.export(self.job["unwritable"])
        return True

    def reopen(self) -> bool:
        """Save, close, open the .kra again: the active layer's view comes from the stored recipe."""
        from krita import Krita

        from ganbridge import canvas

        app = Krita.instance()
        self.doc.setBatchmode(True)
        assert self.doc.saveAs(self.job["kra"]), "saveAs failed"
        self.doc.close()
        self.strip().clearSelection()
        self.doc = app.openDocument(self.job["kra"])
        app.activeWindow().addView(self.doc)
        self.doc.setActiveNode(canvas.find_layer(self.doc, self.report["layer_id"]))  # ids survive a reopen
        return True

    def wait_reopened(self) -> bool:
        if "Licence:" not in self.label():
            return False
        self.report["reopened_label"] = self.label()
        return True

    def point_at_no_bridge(self) -> bool:
        import socket

        from ganbridge import connection

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        connection.shared().open(f"ws://127.0.0.1:{port}/", "")
        return True

    def export_without_bridge(self) -> bool:
        if "cannot reach the bridge" not in self.status():
            return False
        self.select(0)
        self.export(self.job["export"])
        self.report["no_bridge"] = self.status()
        return True


def install_driver() -> None:
    """Called by the PROVENANCE_DRIVER plugin when Krita loads it: start once a window exists."""
    from krita import Extension, Krita

    job = json.loads(os.environ.get("GANBRIDGE_KRITA_JOB", "{}"))

    class DriverExtension(Extension):
        def setup(self) -> None:
            pass

        def createActions(self, window) -> None:  # noqa: N802 (Krita's name)
            if job.get("report") and not hasattr(Krita.instance(), "_ganbridge_provenance_driver"):
                Krita.instance()._ganbridge_provenance_driver = ProvenanceDriver(job)

    Krita.instance().addExtension(DriverExtension(Krita.instance()))
