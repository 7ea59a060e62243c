"""A real Ray head node on this machine, and a real `ganbridge serve --backend ray` against it.

The head runs as `ray start --head` does for a studio, with token authentication and its own
temp folder, so the tests can kill exactly this cluster (not any other Ray on the machine) and
start it again on the same port. The bridge runs as a subprocess, as an artist would run it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_command() -> str | None:
    exe = Path(sys.executable).parent / "ray"
    return str(exe) if exe.is_file() else shutil.which("ray")


class RayHead:
    def __init__(self) -> None:
        self.port = free_port()
        self.temp = Path(tempfile.mkdtemp(prefix="gbray-", dir="/tmp"))  # Ray's socket paths must be short
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [ray_command(), "start", "--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
               "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", str(self.temp)]  # fmt: skip
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"ray start failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")

    def processes(self) -> list[psutil.Process]:
        mine = []
        for proc in psutil.process_iter(["cmdline"]):
            args = " ".join(proc.info["cmdline"] or [])
            # The head's daemons name its temp folder; Ray's client server names its port.
            if str(self.temp) in args or ("ray.util.client.server" in args and f":{self.port} " in args):
                mine.append(proc)
        for proc in list(mine):
            try:
                mine += proc.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        return list({p.pid: p for p in mine}.values())

    def kill(self) -> None:
        """The whole cluster dies at once, as when its machine goes down."""
        procs = self.processes()
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.temp, ignore_errors=True)


class RayBridge:
    """`ganbridge serve --backend ray --ray-address HEAD` with throw-away data folders."""

    def __init__(self, head: RayHead, tmp: Path, **settings: str) -> None:
        self.ws_port = free_port()
        self.osc_port = free_port(socket.SOCK_DGRAM)
        self.log_path = tmp / "bridge.log"
        env = dict(head.env, GANBRIDGE_DATA_DIR=str(tmp / "data"), GANBRIDGE_OUTPUT_DIR=str(tmp / "out"),
                   GANBRIDGE_MODELS_DIR=str(tmp / "models"), GANBRIDGE_MIDI_OUT="none",
                   **{f"GANBRIDGE_{k.upper()}": v for k, v in settings.items()})  # fmt: skip
        env.pop("GANBRIDGE_CONFIG", None)
        cmd = [sys.executable, "-m", "bridge.cli", "serve", "--backend", "ray", "--ray-address", head.address,
               "--ws-port", str(self.ws_port), "--osc-port", str(self.osc_port), "--log-level", "info"]  # fmt: skip
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ganbridge serve --backend ray exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.ws_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the Ray-backed bridge did not start listening in {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def deploy_cli(head: RayHead, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = dict(head.env, **{f"GANBRIDGE_{k.upper()}": v for k, v in settings.items()})
    cmd = [sys.executable, "-m", "bridge.cli", "deploy", "--ray-address", head.address, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
