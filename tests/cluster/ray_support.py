"""A real Ray head node on this machine, and a real `ganbridge serve --backend ray` against it
(or in the one-machine mode, with its private Ray).

The head runs as `ray start --head` does for a studio, with token authentication and its own
temp folder, so the tests can kill exactly this cluster (not any other Ray on the machine) and
start it again on the same port. The bridge runs as a subprocess, as an artist would run it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ganbridge.cluster.head import RayHead, free_port, ray_command

__all__ = ["RayBridge", "RayHead", "deploy_cli", "is_loopback", "listening", "ray_command"]

ROOT = Path(__file__).resolve().parents[2]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RayBridge:
    """`ganbridge serve --backend ray --ray-address HEAD` with throw-away data folders; with no
    head, the one-machine mode (`--ray-address local`) with a throw-away home folder too, so
    that what Ray would write there shows."""

    def __init__(self, head: RayHead | None, tmp: Path, **settings: str) -> None:
        self.ws_port = free_port()
        self.osc_port = free_port(socket.SOCK_DGRAM)
        tmp.mkdir(parents=True, exist_ok=True)
        self.home = tmp / "home"
        self.log_path = tmp / "bridge.log"
        base = head.env if head else dict(os.environ, HOME=str(self.home))
        env = dict(base, GANBRIDGE_DATA_DIR=str(tmp / "data"), GANBRIDGE_OUTPUT_DIR=str(tmp / "out"),
                   GANBRIDGE_MODELS_DIR=str(tmp / "models"), GANBRIDGE_MIDI_OUT="none",
                   **{f"GANBRIDGE_{k.upper()}": v for k, v in settings.items()})  # fmt: skip
        env.pop("GANBRIDGE_CONFIG", None)
        cmd = [sys.executable, "-m", "ganbridge", "serve", "--backend", "ray",
               "--ray-address", head.address if head else "local",
               "--ws-port", str(self.ws_port), "--osc-port", str(self.osc_port), "--log-level", "info"]  # fmt: skip
        self._log = self.log_path.open("w")
        # Ctrl-C reaches the bridge as from a terminal even when these tests run as a background
        # job, whose children start with SIGINT ignored (POSIX shells do that without job control).
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_default_sigint)  # fmt: skip

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

    def private_root(self) -> Path:
        """The folder of the one-machine mode's private Ray, as the bridge logs it."""
        found = re.search(r"private Ray on this machine \(loopback only\) in (\S+)", self.log())
        assert found, self.log()
        return Path(found.group(1))

    def processes(self) -> list[Any]:
        """The bridge's whole process tree now (its Ray driver, and a private Ray's processes)."""
        import psutil

        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (::ffff:127.0.0.1: a dual-stack socket
    bound to 127.0.0.1)."""
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)
    return addr.is_loopback or (mapped is not None and mapped.is_loopback)


def listening(procs: list[Any]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket these processes listen on."""
    import psutil

    found = []
    for proc in procs:
        try:
            name = proc.name()
            conns = proc.net_connections("inet")
        except psutil.NoSuchProcess:
            continue
        found += [(name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def deploy_cli(head: RayHead, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = dict(head.env, **{f"GANBRIDGE_{k.upper()}": v for k, v in settings.items()})
    cmd = [sys.executable, "-m", "ganbridge", "deploy", "--ray-address", head.address, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
