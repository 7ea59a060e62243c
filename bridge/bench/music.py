"""The music path of `ganbridge bench`: raw generator time for 4 bars, the OSC round trip from
/ganbridge/generate to /ganbridge/done, the OSC ping round trip, and a 5,000 pings/s flood.

The bridge runs as a real `ganbridge serve` subprocess; the OSC peer here is a plain UDP socket
with python-osc's message builder, so the figures include both sides' OSC encoding.
"""

from __future__ import annotations

import socket
import statistics
import time

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder


def _msg(address: str, *args) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def raw_music_times(device: str, bars: int, runs: int) -> list[float]:
    from ganbridge.core.registry import load_generators, resolve_device

    gen = load_generators(None, resolve_device(device))["music"]
    params = gen.params_model.model_validate({"bars": bars})
    times = []
    for i in range(runs + 2):
        latent = gen.random_latent(params, i)
        t0 = time.perf_counter()
        gen.render([params], [latent])
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


class OscPeer:
    """A UDP socket that asked the bridge to reply to it."""

    def __init__(self, bridge_port: int):
        self.addr = ("127.0.0.1", bridge_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.send(_msg("/ganbridge/reply_to", self.sock.getsockname()[1]))
        self.wait("/ganbridge/reply_to")

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.addr)

    def wait(self, address: str, first_arg: str | None = None) -> OscMessage:
        while True:
            data, _ = self.sock.recvfrom(65536)
            msg = OscMessage(data)
            if msg.address == "/ganbridge/error":
                raise RuntimeError(f"bridge error: {msg.params}")
            if msg.address == address and (first_arg is None or (msg.params and msg.params[0] == first_arg)):
                return msg

    def close(self) -> None:
        self.sock.close()


def osc_generate_round_trips(port: int, bars: int, runs: int) -> tuple[list[float], int]:
    """Seconds from sending /ganbridge/generate to receiving its /ganbridge/done; and the notes
    received per 4 bars (the last run)."""
    peer = OscPeer(port)
    times, notes = [], 0
    try:
        for i in range(runs + 2):
            t0 = time.perf_counter()
            peer.send(_msg("/ganbridge/generate", "music", "bars", bars, "seed", i))
            job = peer.wait("/ganbridge/accepted").params[0]
            notes = 0
            while True:
                data, _ = peer.sock.recvfrom(65536)
                msg = OscMessage(data)
                if msg.address == "/ganbridge/note":
                    notes += 1
                elif msg.address == "/ganbridge/done" and msg.params[0] == job:
                    break
                elif msg.address == "/ganbridge/error":
                    raise RuntimeError(f"bridge error: {msg.params}")
            if i >= 2:
                times.append(time.perf_counter() - t0)
    finally:
        peer.close()
    return times, notes


def osc_ping_round_trips(port: int, runs: int) -> list[float]:
    peer = OscPeer(port)
    ping = _msg("/ganbridge/ping")
    times = []
    try:
        for i in range(runs + 20):
            t0 = time.perf_counter()
            peer.send(ping)
            peer.wait("/ganbridge/pong")
            if i >= 20:
                times.append(time.perf_counter() - t0)
    finally:
        peer.close()
    return times


def osc_ping_flood(port: int, count: int = 5000, rate: float = 5000.0) -> dict:
    """Send `count` pings paced at `rate` per second; count the pongs that come back."""
    peer = OscPeer(port)
    ping = _msg("/ganbridge/ping")
    got = 0
    try:
        peer.sock.setblocking(False)
        t0 = time.perf_counter()
        for i in range(count):
            due = t0 + i / rate
            while time.perf_counter() < due:
                got += _drain(peer.sock)
            peer.send(ping)
        sent_in = time.perf_counter() - t0
        deadline = time.perf_counter() + 5.0
        while got < count and time.perf_counter() < deadline:
            got += _drain(peer.sock)
            time.sleep(0.001)
    finally:
        peer.close()
    return {"sent": count, "answered": got, "lost": count - got, "send_rate_per_s": count / sent_in}


def _drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            data, _ = sock.recvfrom(65536)
        except BlockingIOError:
            return n
        n += data.startswith(b"/ganbridge/pong")


def music_figures(device: str, osc_port: int, runs: int, bars: int = 4) -> dict:
    raw = raw_music_times(device, bars, runs)
    gen_rt, notes = osc_generate_round_trips(osc_port, bars, runs)
    ping = osc_ping_round_trips(osc_port, max(runs, 200))
    flood = osc_ping_flood(osc_port)
    return {
        "music_bars": bars,
        "music_notes_per_item": notes,
        "music_raw_p50_ms": statistics.median(raw) * 1000,
        "osc_generate_p50_ms": float(np.percentile(gen_rt, 50)) * 1000,
        "osc_generate_p99_ms": float(np.percentile(gen_rt, 99)) * 1000,
        "osc_ping_p50_ms": float(np.percentile(ping, 50)) * 1000,
        "osc_ping_p99_ms": float(np.percentile(ping, 99)) * 1000,
        "osc_flood": flood,
    }


def print_music(f: dict) -> None:
    raw = f["music_raw_p50_ms"]
    print(f"  music, {f['music_bars']} bars ({f['music_notes_per_item']} notes):")
    print(f"  {'raw generator (forward + MIDI), p50':<44}{raw:>10.1f}ms{1.0:>16.2f}")
    for label, key in (
        ("OSC generate -> done, p50", "osc_generate_p50_ms"),
        ("OSC generate -> done, p99", "osc_generate_p99_ms"),
    ):
        print(f"  {label:<44}{f[key]:>10.1f}ms{f[key] / raw:>16.2f}")
    print(f"  {'OSC ping round trip, p50 / p99':<44}{f['osc_ping_p50_ms']:>7.2f} / {f['osc_ping_p99_ms']:.2f}ms")
    fl = f["osc_flood"]
    print(
        f"  {'OSC ping flood':<44}{fl['answered']}/{fl['sent']} answered at {fl['send_rate_per_s']:.0f}/s ({fl['lost']} lost)"
    )
