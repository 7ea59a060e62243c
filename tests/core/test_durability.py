"""`kill -9` at any moment loses no acknowledged rating and no delivered item.

A real `ganbridge serve` process is killed three times while a client streams generate and
feedback requests at it; after each restart on the same data folder, every item whose `result`
reached the client is in the store with exactly the bytes the client got, and every rating whose
`ack` reached it is the item's stored rating. (What a power cut keeps is in tests/core/test_store.py:
ratings commit with synchronous=FULL after syncing their item's files.) And every file delivered
is signed with credentials that verify: the C2PA library no longer reads each signature back, so
the bridge refuses at start an identity that cannot make one.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ganbridge.core.credentials import Identity, _new_identity, credentials_for
from ganbridge.core.settings import ConfigError
from ganbridge.core.store import ItemStore
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`ganbridge serve` as a user runs it, on fixed ports and a data folder that outlives it."""

    def __init__(self, data: Path):
        self.data = data
        self.port, self.osc_port = free_port(), free_port(socket.SOCK_DGRAM)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, GANBRIDGE_DATA_DIR=str(self.data), GANBRIDGE_OUTPUT_DIR=str(self.data / "out"),
                   GANBRIDGE_MODELS_DIR=str(self.data / "models"), GANBRIDGE_MIDI_OUT="none")  # fmt: skip
        cmd = [sys.executable, "-m", "ganbridge", "serve", "--ws-port", str(self.port), "--osc-port",
               str(self.osc_port), "--device", "cpu", "--log-level", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ganbridge serve exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("ganbridge serve did not listen within 120 s")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Artist:
    """Generates small textures and rates each one, until the bridge goes away."""

    def __init__(self, url: str, rng: random.Random):
        self.url, self.rng = url, rng
        self.delivered: dict[str, bytes] = {}  # item -> the PNG bytes the client received
        self.acked: dict[str, int] = {}  # item -> the rating the bridge acknowledged
        self.n = 0

    def run(self) -> None:
        try:
            with connect(self.url, compression=None, max_size=None) as ws:
                while True:
                    self.n += 1
                    item = self._generate(ws)
                    if item is not None:
                        self._rate(ws, item, self.rng.choice([-1, 1]))
        except (ConnectionClosed, OSError):
            return  # killed

    def _generate(self, ws) -> str | None:
        rid = f"g{self.n}"
        params = {"width": 64, "height": 64, "seed": self.rng.randrange(2**31)}
        ws.send(json.dumps({"type": "generate", "id": rid, "generator": "texture", "params": params}))
        item = None
        while True:
            msg = json.loads(ws.recv(timeout=60))
            if msg.get("id") != rid:
                continue
            if msg["type"] == "result":
                for it in msg["items"]:
                    self.delivered[it["item"]] = base64.b64decode(it["data"])
                    item = it["item"]
            if msg["type"] in ("done", "error", "cancelled"):
                return item

    def _rate(self, ws, item: str, rating: int) -> None:
        rid = f"f{self.n}"
        ws.send(json.dumps({"type": "feedback", "id": rid, "item": item, "rating": rating, "session": "s"}))
        while True:
            msg = json.loads(ws.recv(timeout=60))
            if msg.get("id") == rid:
                if msg["type"] == "ack":
                    self.acked[item] = rating
                return


def test_kill_9_loses_no_acknowledged_rating_and_no_delivered_item(tmp_path):
    rng = random.Random(9)
    bridge = Serve(tmp_path / "data")
    delivered: dict[str, bytes] = {}
    acked: dict[str, int] = {}
    try:
        for _ in range(3):
            bridge.start()
            artist = Artist(f"ws://127.0.0.1:{bridge.port}/", rng)
            thread = threading.Thread(target=artist.run, daemon=True)
            thread.start()
            time.sleep(rng.uniform(1.0, 3.0))
            bridge.kill()
            thread.join(timeout=60)
            delivered |= artist.delivered
            acked |= artist.acked
        assert len(delivered) >= 10 and len(acked) >= 10, (len(delivered), len(acked))
    finally:
        bridge.stop()
    store = ItemStore(tmp_path / "data" / "items.sqlite3", tmp_path / "data" / "out")
    try:
        for item, data in delivered.items():
            record = store.get(item)
            assert record is not None, f"delivered item {item} is not in the store"
            assert record.file.read_bytes() == data, f"delivered item {item}'s file differs"
        for item, rating in acked.items():
            assert store.latest_rating(item) == rating, f"acknowledged rating of {item} lost"
    finally:
        store.close()


def test_an_identity_whose_signatures_do_not_verify_stops_the_bridge_at_start(tmp_path):
    (chain, _), (_, other_key) = _new_identity(), _new_identity()
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.write_bytes(chain)
    key.write_bytes(other_key)  # not the certificate's key
    settings = make_settings(tmp_path, credentials_cert=cert, credentials_key=key)
    with pytest.raises(ConfigError, match="claimSignature.mismatch"):
        credentials_for(settings)
    settings = make_settings(tmp_path, credentials_cert=None, credentials_key=None)
    assert credentials_for(settings) is not None  # the local identity is fine
    assert Identity.local(settings.data_dir / "identity").chain
