"""Ray on this machine: a head node started as a studio's admin would (`ray start --head`), for
the Ray benchmark and tests, and the private Ray of the one-machine mode (`ray_address` local).

Both get their own temp folder, so exactly this cluster (not any other Ray on the machine) can be
found, killed and removed.
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
from typing import Any


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_command() -> str | None:
    exe = Path(sys.executable).parent / "ray"
    return str(exe) if exe.is_file() else shutil.which("ray")


def cluster_processes(temp: Path) -> list[Any]:
    """Every live process of the Ray cluster whose temp folder is `temp`, except this one.

    Ray's daemons name the folder on their command line, but its agents and workers rename
    themselves (`ray::DashboardAgent`, `ray::IDLE`) and lose it; they all keep their log files
    open in it, though, also after their raylet died and left them orphaned."""
    import psutil

    folder = str(temp)
    mine = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            if folder in " ".join(proc.info["cmdline"] or []) or any(
                f.path.startswith(folder + os.sep) for f in proc.open_files()
            ):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return mine


def kill_processes(procs: list[Any], timeout: float = 10.0) -> None:
    import psutil

    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=timeout)


class PrivateRay:
    """The one-machine mode's Ray, started by the gateway's `ray.init()`, made private:

    - its own folder (0700, under /tmp because Ray's socket paths must be short), holding Ray's
      temp folder (Ray makes that one 0777, so it must not be the top), its token (0600) and the
      pid of the bridge that owns it; the bridge removes it, and finds the cluster's processes by
      it, when the gateway is gone, and the next one removes it if both were killed at once;
    - its own token: Ray 2.60's `ray.init()` otherwise writes ~/.ray/auth_token world-readable,
      or reuses the studio's token found there;
    - loopback only: `ray.init(_node_ip_address="127.0.0.1")` is turned back into this machine's
      network address by Ray, and then the GCS, raylet, workers and agents listen on every
      interface. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is the single-machine mode Ray uses on macOS
      and Windows: the node's address is 127.0.0.1, and Ray's gRPC servers, agents and metrics
      endpoints then bind to loopback (measured with Ray 2.60: docs/deploy.md).
    """

    PREFIX = "gbray-"

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls) -> PrivateRay:
        """A new folder, owned by this process; first removes those whose owner is gone."""
        import psutil

        cls.sweep()
        private = cls(Path(tempfile.mkdtemp(prefix=cls.PREFIX, dir="/tmp")))  # mkdtemp: 0700
        _write_private(private.token_path, secrets.token_hex(32))
        _write_private(private.root / "owner", f"{os.getpid()} {psutil.Process().create_time()}")
        return private

    @classmethod
    def sweep(cls, parent: Path = Path("/tmp")) -> list[Path]:
        """Remove the private Rays whose owning bridge is gone: a SIGKILL of the bridge and its
        gateway together leaves Ray's agents running and the folder. A folder without an owner
        file is not one (a RayHead's), another user's, or being made right now: left alone."""
        removed = []
        for root in parent.glob(cls.PREFIX + "*"):
            try:
                pid, started = (root / "owner").read_text().split()
                if _running(int(pid), float(started)):
                    continue
            except (OSError, ValueError):
                continue
            cls(root).remove()
            removed.append(root)
        return removed

    @property
    def temp(self) -> Path:
        return self.root / "ray"

    @property
    def token_path(self) -> Path:
        return self.root / "auth_token"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """The environment of the driver that starts it (Ray's processes inherit it). Set before
        Ray is imported: Ray reads these at import."""
        env = {k: v for k, v in base.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
        env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token",
                   RAY_AUTH_TOKEN_PATH=str(self.token_path), RAY_USAGE_STATS_ENABLED="0")  # fmt: skip
        return env

    def processes(self) -> list[Any]:
        return cluster_processes(self.root)

    def remove(self) -> None:
        """Kill what is left of the cluster (after `ray.shutdown()`, or instead of it when the
        driver died) and remove its folder."""
        kill_processes(self.processes())
        shutil.rmtree(self.root, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _running(pid: int, started: float) -> bool:
    """Whether that process still runs (and is not a new one that got its pid)."""
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False


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

        mine = cluster_processes(self.temp)
        for proc in psutil.process_iter(["cmdline"]):
            args = " ".join(proc.info["cmdline"] or [])
            if "ray.util.client.server" in args and f":{self.port} " in args:  # it names the port, not the folder
                mine.append(proc)
        for proc in list(mine):
            try:
                mine += proc.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        return list({p.pid: p for p in mine}.values())

    def kill(self) -> None:
        """The whole cluster dies at once, as when its machine goes down."""
        kill_processes(self.processes())

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.temp, ignore_errors=True)
