"""A Ray head node on this machine, started as a studio's admin would (`ray start --head`), for
the Ray benchmark and tests: token authentication on, its own temp folder, so exactly this
cluster (not any other Ray on the machine) can be killed and started again on the same port.
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
from pathlib import Path


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

    def processes(self) -> list:
        import psutil

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
        import psutil

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
