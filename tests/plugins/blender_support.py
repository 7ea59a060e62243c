"""Driving real Blender (the `bpy` module in its own venv) from the tests.

Blender runs as a separate process with its own Python, as it does for an artist; the tests send it
code snippets (tests/hosts/blender_host.py executes them) and read back JSON answers. One warm
Blender serves a whole test module.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

from tests.conftest import missing_host

ROOT = Path(__file__).resolve().parents[2]
HOST_SCRIPT = Path(__file__).resolve().parent / "hosts" / "blender_host.py"
INSTALL_HINT = 'python3.11 -m venv .blender/bpy-{v} && .blender/bpy-{v}/bin/pip install "bpy=={spec}"'


def blender_python(version: str, spec: str) -> Path:
    """The Python of a venv with bpy installed: $GANBRIDGE_BLENDER_PYTHON_<4_5> or .blender/bpy-<v>."""
    env = os.environ.get(f"GANBRIDGE_BLENDER_PYTHON_{version.replace('.', '_')}")
    path = Path(env) if env else ROOT / ".blender" / f"bpy-{version}" / "bin" / "python"
    if not path.exists():
        missing_host(f"real Blender (bpy {spec}) at {path}", INSTALL_HINT.format(v=version, spec=spec))
    return path


def blender_ext_script(python: Path) -> Path:
    found = sorted(
        python.parent.parent.glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    )
    assert found, f"no blender_ext.py inside the bpy of {python}"
    return found[-1]


class BlenderError(AssertionError):
    pass


class BlenderHost:
    """A running Blender that executes snippets; `run` returns what the snippet put in `result`."""

    def __init__(self, python: Path, user_resources: Path, log_path: Path):
        read_fd, write_fd = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update(BLENDER_USER_RESOURCES=str(user_resources), GANBRIDGE_REPLY_FD=str(write_fd))
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(python), str(HOST_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            env=env,
        )
        os.close(write_fd)
        self._fd = read_fd
        self._buffer = b""
        self.version = self._answer(timeout=180)

    def run(self, code: str, timeout: float = 120.0):
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"code": code}) + "\n").encode())
        self.proc.stdin.flush()
        return self._answer(timeout)

    def _answer(self, timeout: float):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(0.0, left))
            if not ready:
                raise BlenderError(f"Blender did not answer within {timeout} s; its log:\n{self.log_tail()}")
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                raise BlenderError(f"Blender exited (code {self.proc.poll()}); its log:\n{self.log_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer = json.loads(line)
        if not answer["ok"]:
            raise BlenderError(f"the snippet raised inside Blender:\n{answer['error']}")
        return answer["value"]

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self._fd)
        self._log.close()


# Helpers defined inside Blender once the extension is installed.
SETUP = """
import importlib
import base64
import numpy as np

installed = bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
PKG = "bl_ext.user_default.ganbridge"
gb = importlib.import_module(PKG)
conn = importlib.import_module(PKG + ".connection")
hist = importlib.import_module(PKG + ".history")
params_mod = importlib.import_module(PKG + ".params")
STATE = importlib.import_module(PKG + ".state").STATE

def pump(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while True:
        gb.drain()
        if cond():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.01)

def prefs():
    return bpy.context.preferences.addons[PKG].preferences

def op(name, **kw):
    # an ERROR report, which bpy raises to scripts, becomes a result
    try:
        return sorted(getattr(bpy.ops.ganbridge, name)(**kw))
    except RuntimeError as e:
        return ["CANCELLED", str(e)]

def connect(url, token=""):
    p = prefs()
    p.url, p.token = url, token
    return op("connect")

def connected(url, token=""):
    connect(url, token)
    assert pump(lambda: STATE.status == "connected", 30), (STATE.status, STATE.detail)

def job_of(rid):
    return STATE.jobs[rid]

def last_job():
    return list(STATE.jobs.values())[-1]

def wait_job(job, timeout=120):
    assert pump(lambda: not job.active, timeout), job.describe()
    return job.status

def pixels_b64(img):
    a = np.array(img.pixels[:], dtype=np.float32)
    return base64.b64encode(np.round(a * 255).astype(np.uint8).tobytes()).decode()

def datablock_counts():
    return {k: len(getattr(bpy.data, k)) for k in ("images", "materials", "objects", "meshes")}

result = sorted(installed)
"""
