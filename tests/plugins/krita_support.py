"""Running real Krita (Debian's krita) for the plugin tests: a temporary profile with the plugin
imported from the built zip by Krita's own importer, `kritarunner` scripts, and the GUI under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

HOSTS = Path(__file__).resolve().parent / "hosts"
DRIVER = HOSTS / "krita_driver"
IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


class KritaProfile:
    """XDG folders of a throwaway Krita user, with the GAN Bridge plugin imported and enabled."""

    def __init__(self, root: Path, plugin_zip: Path, bridge_url: str):
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
        python = "\n".join(f"enable_{name}=true" for name in enable)
        (self.config / "kritarc").write_text(
            f"[python]\n{python}\n\n[ganbridge]\nurl={bridge_url}\ntoken=\n\n[General]\nshowSplash=false\n"  # fmt: skip
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
            PYTHONPATH=f"{self.pykrita}{os.pathsep}{HOSTS}",
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

    def gui(self, job: dict, bridge_url: str, timeout: float = 180) -> dict:
        """Real Krita with its GUI on a virtual X screen; the test-driver plugin clicks through the
        docker (tests/hosts/krita_driver) and writes `job["report"]`."""
        require_tool("xvfb-run", "xvfb xauth")
        target = self.pykrita / "ganbridge_testdriver"
        if not target.exists():
            shutil.copytree(DRIVER / "ganbridge_testdriver", target)
            shutil.copy2(DRIVER / "ganbridge_testdriver.desktop", self.pykrita)
        self.write_settings(bridge_url, enable=["ganbridge", "ganbridge_testdriver"])
        report = Path(job["report"])
        env = self.env(GANBRIDGE_KRITA_JOB=json.dumps(job), QT_QPA_PLATFORM="xcb")
        proc = subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", "krita", "--nosplash"],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert report.is_file(), f"Krita wrote no report (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        data = json.loads(report.read_text())
        assert data["ok"], (
            f"the GUI run failed:\n{data.get('error')}\nsteps: {data.get('steps')}\n{proc.stderr[-2000:]}"
        )
        return data
