from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from ganbridge.core.protocol import decode_binary, validate_reply
from ganbridge.core.provenance import without_credentials
from ganbridge.core.settings import Settings
from ganbridge.server import RunningBridge, build_core, start_bridge

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_host(what: str, install: str) -> None:
    """A real host the test needs is not installed: `what` names it, `install` is how .ci/run
    installs it. Under CI that is a failure; on a developer machine, a skip that says both."""
    if IN_CI:
        pytest.fail(f"real host missing under CI=true: {what}; .ci/run should have installed it with: {install}")
    pytest.skip(f"real host missing: {what}; install it with: {install} (as .ci/run does)")


def require_tool(name: str, apt_package: str) -> str:
    """Path of a real host tool (see missing_host)."""
    path = shutil.which(name)
    if path is None:
        missing_host(f"{name} is not installed", f"apt-get install {apt_package}")
    return path


def make_settings(tmp: Path, **overrides) -> Settings:
    s = Settings(
        host="127.0.0.1",
        ws_port=0,
        osc_port=0,
        device="cpu",
        output_dir=tmp / "outputs",
        data_dir=tmp / "data",
        models_dir=tmp / "models",
        midi_out="none",  # tests that play MIDI open their own port
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    return s


class BridgeThread:
    """A real bridge (both doors) on its own event loop thread, as `ganbridge serve` runs it."""

    def __init__(self, settings: Settings, core=None):
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bridge: RunningBridge = asyncio.run_coroutine_threadsafe(start_bridge(settings, core), self.loop).result(
            timeout=120
        )

    @property
    def core(self):
        return self.bridge.core

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.bridge.ws.port}/"

    @property
    def osc_port(self) -> int:
        return self.bridge.osc.port

    def client(self, **kwargs) -> WsClient:
        return WsClient(connect(self.url, compression=None, max_size=None, **kwargs).__enter__())

    def stop(self) -> None:
        if not self.thread.is_alive():
            return  # already stopped (a test took this bridge down on purpose)
        asyncio.run_coroutine_threadsafe(self.bridge.stop(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class WsClient:
    def __init__(self, ws: ClientConnection):
        self.ws = ws

    def send(self, msg: dict | str | bytes) -> None:
        self.ws.send(msg if isinstance(msg, str | bytes) else json.dumps(msg))

    def recv(self, timeout: float = 60.0) -> dict:
        """The next reply. A binary frame comes back with its payloads as bytes (`data`)."""
        frame = self.ws.recv(timeout=timeout)
        if isinstance(frame, bytes):
            msg = decode_binary(frame)
            validate_reply(as_text(msg))  # every reply on the wire matches its protocol model
            return msg
        msg = json.loads(frame)
        validate_reply(msg)
        return msg

    def request(self, msg: dict, timeout: float = 60.0) -> dict:
        """Send and return the first reply."""
        self.send(msg)
        return self.recv(timeout)

    def until_final(self, rid: str, timeout: float = 120.0) -> list[dict]:
        """All messages for `rid` up to its final one (done, cancelled or error)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.1, deadline - time.monotonic()))
            if msg.get("id") != rid:
                continue
            out.append(msg)
            if msg["type"] in ("done", "cancelled", "error", "ack"):
                return out

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="session")
def shared_core(tmp_path_factory):
    """One loaded core for the many tests that only need a bridge, not a fresh one."""
    settings = make_settings(tmp_path_factory.mktemp("bridge"), max_queue=64)
    core = build_core(settings)
    yield core
    core.scheduler.stop()
    core.store.close()


@pytest.fixture(scope="session")
def bridge(shared_core) -> Iterator[BridgeThread]:
    b = BridgeThread(shared_core.settings, shared_core)
    yield b
    b.stop()


@pytest.fixture
def ws(bridge) -> Iterator[WsClient]:
    c = bridge.client()
    yield c
    c.close()


def content(data_b64: str) -> bytes:
    """An item's file without its C2PA signature, which differs each time one is made (the
    recipe, the pixels and every other byte are the same for the same recipe)."""
    return without_credentials(base64.b64decode(data_b64))


def as_text(msg: dict) -> dict:
    """A reply decoded from a binary frame as the same reply in JSON text would be (base64 payloads)."""

    def text(holder: dict) -> dict:
        out = dict(holder)
        if isinstance(out.get("data"), bytes):
            out["data"] = base64.b64encode(out["data"]).decode("ascii")
        if isinstance(out.get("maps"), dict):
            out["maps"] = {name: text(m) for name, m in out["maps"].items()}
        return out

    return {**text(msg), **({"items": [text(it) for it in msg["items"]]} if "items" in msg else {})}


def small_texture(**extra) -> dict:
    return {"width": 64, "height": 64, **extra}
