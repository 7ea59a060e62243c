"""`ganbridge bench --only robustness`: what an outside user can do to a running bridge.

Everything here talks to a real `ganbridge serve` subprocess over its sockets only, as a
stranger's program would:

1. `fuzz(door, n, seed)`: `n` generated inputs for one door (OSC datagrams or WebSocket
   frames), valid ones and mutated ones. An invalid input must get exactly one error; the bridge
   must keep answering other clients about as fast as when idle; it must never hang, crash or
   log a traceback.
2. `hog_and_bystanders()`: one client asks for the largest textures the bridge takes while
   others ask for small ones; a small request should wait at most about one of the hog's
   batches.
3. `soak(clients, seconds)`: many clients generating, varying, rating, cancelling and
   dropping their connections; every reply must match the protocol, every request must end
   exactly once, and the server's memory should not grow.

Fuzzing is seeded and the inputs are made in a fixed order, so a failure is replayed from its
seed and index (`osc_corpus(seed, n)[index]`); each failure is also reported as hex.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as sync_connect

from ganbridge.bench.common import BridgeProcess
from ganbridge.core.protocol import validate_reply
from ganbridge.doors.osc_wire import encode_bundle as osc_bundle
from ganbridge.doors.osc_wire import encode_message as osc_msg

LOOPBACK = "127.0.0.1"
# The OSC door keys its peers by host address: a socket on a second loopback address is a
# separate client, so the probe's pongs never mix with the fuzzed client's replies.
PROBE_HOST = "127.0.0.2"
SLOW_S = 1.0  # an answer (a ping's pong, an input's sentinel) later than this is slow
HANG_S = 5.0  # no pong within this: the bridge hangs
# The other clients' probes, idle and during fuzzing, come at most this often. A probe right
# after the last one finds the bridge's threads and the CPU still awake; after some quiet, the
# wake-up is most of a loopback round trip (measured on an idle bridge: an OSC ping 0.02 ms
# back to back, 0.2 ms after 20 ms of quiet), so idle and during are only comparable at one pace.
PROBE_PACE_S = 0.025
IDLE_PROBES = 200
# A bundle whose only element size is -4: python-osc's parser steps back onto the same size for
# ever (docs/security.md). Sent last, or on its own, so that everything else is measured first.
KILLER = bytes.fromhex("2362756e646c65000000000000000000fffffffc")
BUNDLE = b"#bundle\x00"
# Failures reported in full (hex and replies): every hang and crash, and the first few of each
# kind; the rest are only counted.
KEEP_FAILURES = 20
KEEP_PER_KIND = 3
WS_FINALS = frozenset({"done", "error", "cancelled"})


def _ms(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    a = np.array(values) * 1000.0
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "n": len(values)}


def _ratio(during: dict, idle: dict, key: str) -> float | None:
    if during[key] is None or not idle[key]:
        return None
    return during[key] / idle[key]


def _hex(data: bytes, limit: int = 4096) -> str:
    return data[:limit].hex() + ("..." if len(data) > limit else "")


# --- the server under test ----------------------------------------------------------------------


class ServerUnderTest:
    """A `ganbridge serve` subprocess (bench.BridgeProcess) whose stderr goes to a file, so
    tracebacks can be counted, and which is killed and started afresh when an input hangs or
    crashes it. Restarts and tracebacks are counted over every incarnation."""

    def __init__(self, device: str = "cpu", env: dict[str, str] | None = None):
        self.device = device
        self.env = env
        self._logs = tempfile.TemporaryDirectory(prefix="ganbridge-robustness-")
        self.log_paths: list[Path] = []
        self.restarts = 0
        self.bridge: BridgeProcess
        self._start()

    def _start(self) -> None:
        path = Path(self._logs.name) / f"serve-{len(self.log_paths)}.stderr"
        self.log_paths.append(path)
        with path.open("wb") as log:  # Popen keeps its own copy of the descriptor
            self.bridge = BridgeProcess(self.device, True, self.env, stderr=log)
        asyncio.run(self.bridge.wait_ready())
        _wait_osc_ready(self.osc_addr)

    @property
    def url(self) -> str:
        return self.bridge.url

    @property
    def osc_addr(self) -> tuple[str, int]:
        return (LOOPBACK, self.bridge.osc_port)

    @property
    def pid(self) -> int:
        return self.bridge.proc.pid

    def alive(self) -> bool:
        return self.bridge.proc.poll() is None

    def exit_code(self) -> int | None:
        return self.bridge.proc.poll()

    def kill(self) -> None:
        """SIGKILL: a hung bridge may not get round to handling SIGTERM."""
        if self.alive():
            self.bridge.proc.kill()
            self.bridge.proc.wait(timeout=30)
        self.bridge.tmp.cleanup()

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self._start()

    def close(self) -> None:
        if self.alive():
            self.bridge.close()
        else:
            self.bridge.tmp.cleanup()
        self._logs.cleanup()

    def stderr_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def tracebacks(self) -> int:
        return self.stderr_text().count("Traceback")

    def first_traceback(self, skip: int = 0) -> str | None:
        """The (skip+1)-th traceback on stderr, for the report."""
        parts = self.stderr_text().split("Traceback")
        return None if len(parts) <= skip + 1 else ("Traceback" + parts[skip + 1])[:3000]

    def rss(self) -> int | None:
        try:
            import psutil

            return psutil.Process(self.pid).memory_info().rss
        except Exception:  # psutil missing, or the process is gone
            return None


def _udp(host: str = LOOPBACK) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a bundle of pings answers in bursts
    try:
        sock.bind((host, 0))
    except OSError:  # no second loopback address (macOS): share the host, at the cost of mixed replies
        sock.bind((LOOPBACK, 0))
    return sock


def _ws_open(url: str) -> ClientConnection:
    """A connection kept open across calls and closed with .close(). Entering it is how a
    non-`with` user tells websockets 17 it is not a legacy client (no DeprecationWarning)."""
    return sync_connect(url, compression=None, max_size=None, open_timeout=HANG_S).__enter__()


def _wait_osc_ready(addr: tuple[str, int], timeout: float = 30.0) -> None:
    sock = _udp()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _osc_ping(sock, addr, 0.2) is not None:
                return
        raise TimeoutError("the bridge's OSC door did not answer a ping")
    finally:
        sock.close()


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.recvfrom(65536)
    except (BlockingIOError, OSError):
        pass
    finally:
        sock.setblocking(True)


def _osc_ping(sock: socket.socket, addr: tuple[str, int], timeout: float) -> float | None:
    """Seconds to a pong, or None if none came within `timeout`."""
    _drain(sock)  # a pong that came too late for an earlier ping must not answer this one
    t0 = time.perf_counter()
    sock.sendto(osc_msg("/ganbridge/ping"), addr)
    while (left := t0 + timeout - time.perf_counter()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65536)
        except TimeoutError:
            return None
        if data.startswith(b"/ganbridge/pong\x00"):
            return time.perf_counter() - t0
    return None


# --- OSC on the wire: a small encoder and a strict reader -----------------------------------------


class WireFault(ValueError):
    """Not well-formed OSC 1.0, or a type tag the bridge does not take (docs/reference/protocol.md)."""


OSC_TAGS = frozenset("ifsTFhd")  # i, f, s, T/F per the protocol; h and d too, as the door takes them
_FIXED = {"i": (4, ">i"), "f": (4, ">f"), "h": (8, ">q"), "d": (8, ">d")}


def osc_str(raw: bytes) -> bytes:
    return raw + b"\x00" * (4 - len(raw) % 4)


def osc_raw(address: str, tags: str, payload: bytes = b"") -> bytes:
    return osc_str(address.encode()) + osc_str(tags.encode()) + payload


def read_datagram(data: bytes) -> list[tuple[str, tuple]]:
    """Every message of a datagram, per OSC 1.0 read strictly; WireFault at the first fault.
    This is the harness's own oracle, independent of the bridge's reader: sizes positive,
    multiples of 4 and inside their bundle, `#bundle\\0` exactly, NUL padding, UTF-8 strings,
    every argument's bytes present and nothing after the last. It has no nesting limit (OSC has
    none), and reads bundles with a work list rather than recursion, so any depth is fine."""
    if not data:
        raise WireFault("empty datagram")
    if len(data) % 4:
        raise WireFault(f"size {len(data)} is not a multiple of 4")
    out: list[tuple[str, tuple]] = []
    todo = [(0, len(data))]  # elements still to read, the next one last
    while todo:
        start, end = todo.pop()
        if data.startswith(b"/", start):
            out.append(_read_message(data, start, end))
        else:
            todo.extend(reversed(_bundle_elements(data, start, end)))
    return out


def _bundle_elements(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    if data[start : start + 8] != BUNDLE:
        raise WireFault(f"byte {start}: neither a message ('/') nor a bundle ('#bundle\\0')")
    if start + 16 > end:
        raise WireFault(f"byte {start}: a bundle without its 8-byte time tag")
    elements, pos = [], start + 16
    while pos < end:
        if pos + 4 > end:
            raise WireFault(f"byte {pos}: an element size needs 4 bytes")
        (size,) = struct.unpack_from(">i", data, pos)
        if size <= 0 or size % 4 or pos + 4 + size > end:
            raise WireFault(f"byte {pos}: element size {size} is not a positive multiple of 4 inside the bundle")
        elements.append((pos + 4, pos + 4 + size))
        pos += 4 + size
    return elements


def _read_message(data: bytes, start: int, end: int) -> tuple[str, tuple]:
    address, pos = _read_string(data, start, end)
    if pos == end:  # OSC 1.0 lets old senders leave out the type tags of a message without arguments
        return address, ()
    tags, pos = _read_string(data, pos, end)
    if not tags.startswith(",") or set(tags[1:]) - OSC_TAGS:
        raise WireFault(f"{address}: type tags {tags!r} are not ',' and {''.join(sorted(OSC_TAGS))}")
    args: list[Any] = []
    for tag in tags[1:]:
        if tag in "TF":
            args.append(tag == "T")
        elif tag == "s":
            text, pos = _read_string(data, pos, end)
            args.append(text)
        else:
            size, fmt = _FIXED[tag]
            if pos + size > end:
                raise WireFault(f"{address}: argument {tag!r} runs past the end")
            args.append(struct.unpack_from(fmt, data, pos)[0])
            pos += size
    if pos != end:
        raise WireFault(f"{address}: {end - pos} byte(s) after the last argument")
    return address, tuple(args)


def _read_string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise WireFault(f"byte {pos}: a string without its NUL")
    stop = (nul + 4) & ~3
    if stop > end or data[nul:stop].strip(b"\x00"):
        raise WireFault(f"byte {pos}: a string not padded with NULs to 4 bytes")
    try:
        return data[pos:nul].decode("utf-8"), stop
    except UnicodeDecodeError:
        raise WireFault(f"byte {pos}: a string that is not UTF-8") from None


# --- the OSC corpus -------------------------------------------------------------------------------

PING = osc_msg("/ganbridge/ping")
# Defaults set for the image generator, which this harness never generates with: a mutated key
# must not break every later texture generate from this host.
SET = osc_msg("/ganbridge/set", "image", "temperature", 1.0)
_SIMPLE: list[tuple[float, Callable[[int], bytes]]] = [
    (3, lambda i: PING),
    (3, lambda i: osc_msg("/ganbridge/generate", "texture", "width", 32, "height", 32, "seed", i)),
    (1, lambda i: osc_msg("/ganbridge/generate", "texture", "width", 33)),  # valid OSC, invalid params
    (0.5, lambda i: osc_msg("/ganbridge/generate", 5)),  # valid OSC, wrong argument type
    (1, lambda i: osc_msg("/ganbridge/feedback", f"no-item-{i}", 1.0)),
    (2, lambda i: SET),
    (1, lambda i: osc_msg("/ganbridge/cancel", f"no-job-{i}")),
    (0.5, lambda i: osc_msg("/ganbridge/generators")),
    (0.5, lambda i: osc_msg("/ganbridge/stop")),
    (0.5, lambda i: osc_msg("/ganbridge/nothing-here", 1)),
]
_UNKNOWN_TAGS = [  # tags the bridge must refuse, with the bytes a sender would put after them
    ("S", osc_str(b"sym")),
    ("c", struct.pack(">i", 65)),
    ("I", b""),
    ("[i]", struct.pack(">i", 1)),
    ("[]", b""),
    ("b", struct.pack(">i", 4) + b"blob"),
    ("t", bytes(8)),
    ("N", b""),
    ("m", bytes(4)),
    ("r", bytes(4)),
]
_BAD_BUNDLE_TAGS = (b"#bundleX", b"#bundle ", b"#BUNDLE\x00", b"#bundl\x00\x00", b"#bundle\x01", b"#bundle/")


def _osc_simple(rng: random.Random, i: int) -> bytes:
    weights, makers = zip(*_SIMPLE)
    return rng.choices(makers, weights)[0](i)


def _osc_base(rng: random.Random, i: int) -> bytes:
    if rng.random() < 0.2:
        return osc_bundle(*(_osc_simple(rng, i) for _ in range(rng.randint(1, 4))))
    return _osc_simple(rng, i)


def _as_bundle(d: bytes) -> bytes:
    return d if d.startswith(BUNDLE) else osc_bundle(d)


def _element_sizes(d: bytes) -> list[tuple[int, int]]:
    """(offset, size) of a well-formed bundle's top-level element sizes."""
    out, pos = [], 16
    while pos + 4 <= len(d):
        (size,) = struct.unpack_from(">i", d, pos)
        out.append((pos, size))
        pos += 4 + max(size, 0)
    return out


def _set_size(rng: random.Random, d: bytes, sizes: Callable[[int, int], list[int]]) -> bytes:
    out = bytearray(_as_bundle(d))
    offset, size = rng.choice(_element_sizes(bytes(out)))
    struct.pack_into(">i", out, offset, rng.choice(sizes(size, len(out))))
    return bytes(out)


def _first_message(d: bytes) -> tuple[bytes, bool]:
    """A message to mutate inside: `d` itself, or a bundle's first element; and whether it was bundled."""
    if d.startswith(BUNDLE):
        (size,) = struct.unpack_from(">i", d, 16)
        inner = d[20 : 20 + size]
        return (inner, True) if inner.startswith(b"/") else (PING, True)
    return d, False


def _padding_spots(m: bytes) -> list[int]:
    """Offsets of padding NULs (not a string's own terminator) in a well-formed message."""
    spots, pos, strings = [], 0, 2  # the address and the type tags
    tags = ""
    while strings and pos < len(m):
        nul = m.index(b"\x00", pos)
        stop = (nul + 4) & ~3
        spots += range(nul + 1, stop)
        if strings == 1:
            tags = m[pos:nul].decode(errors="replace")
        pos, strings = stop, strings - 1
    for tag in tags[1:]:  # string arguments carry padding too
        if tag == "s":
            nul = m.index(b"\x00", pos)
            stop = (nul + 4) & ~3
            spots += range(nul + 1, stop)
            pos = stop
        else:
            pos += _FIXED.get(tag, (0, ""))[0]
    return spots


def _m_padding(rng: random.Random, d: bytes) -> bytes:
    m, bundled = _first_message(d)
    spots = _padding_spots(m)
    if not spots:
        return d + b"\x00\x00\x00X"
    b = bytearray(m)
    b[rng.choice(spots)] = rng.choice(b"X \x01\xff")
    return osc_bundle(bytes(b)) if bundled else bytes(b)


def _m_unknown_tag(rng: random.Random, d: bytes) -> bytes:
    tags, payload = rng.choice(_UNKNOWN_TAGS)
    address = rng.choice(("/ganbridge/ping", "/ganbridge/generate", "/ganbridge/feedback", "/ganbridge/set"))
    if address == "/ganbridge/generate":  # a real generate with one argument the bridge cannot read
        m = osc_raw(address, ",ssi" + tags, osc_str(b"texture") + osc_str(b"width") + struct.pack(">i", 32) + payload)
    else:
        m = osc_raw(address, "," + tags, payload)
    return osc_bundle(m) if rng.random() < 0.3 else m


def _m_garbage(rng: random.Random, d: bytes) -> bytes:
    junk = bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 4, 8, 16, 64, 512))))
    return rng.choice((b"", b"/", b"/ganbridge/", BUNDLE)) + junk


def _flip(rng: random.Random, d: bytes) -> bytes:
    b = bytearray(d)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
    return bytes(b)


def _nest(rng: random.Random, d: bytes) -> bytes:
    for _ in range(rng.choice((2, 8, 9, 16, 64, 200, 300))):
        d = osc_bundle(d)
    return d


_OSC_MUTATIONS: list[tuple[str, float, Callable[[random.Random, bytes], bytes]]] = [
    ("none", 4, lambda rng, d: d),
    ("truncate", 1, lambda rng, d: d[: rng.randrange(len(d))]),
    ("flip", 2, _flip),
    # zero, unaligned and past-the-end sizes
    (
        "bad_size",
        2,
        lambda rng, d: _set_size(rng, d, lambda s, n: [0, 1, 2, 3, s - 1, s + 1, s + 2, s + 4, s + 64, n, 2**31 - 1]),
    ),
    # Sizes that step backwards. -4 is left out here: it is the known killer, sent on its own.
    (
        "negative_size",
        1,
        lambda rng, d: _set_size(
            rng, d, lambda s, n: [-1, -2, -3, -8, -12, -16, -(2**31), -rng.randrange(17, 1 << 16)]
        ),
    ),
    ("bundle_tag", 1, lambda rng, d: rng.choice(_BAD_BUNDLE_TAGS) + _as_bundle(d)[8:]),
    ("nest", 1, _nest),
    (
        "many",
        1,
        lambda rng, d: osc_bundle(*(rng.choice((PING, SET)) for _ in range(rng.choice((2, 16, 64, 65, 128, 300))))),
    ),
    ("padding", 1, _m_padding),
    ("trailing", 1, lambda rng, d: d + rng.choice((b"\x00" * 4, b"abcd", b"x", b"\x00\x00", b"\x00" * 8))),
    ("unknown_tag", 2, _m_unknown_tag),
    ("garbage", 0.5, _m_garbage),
    ("empty", 0.2, lambda rng, d: b""),
]


def osc_corpus(seed: int, n: int, killer: bool = False) -> list[tuple[str, bytes]]:
    """`n` inputs (mutation name, datagram), the same for the same seed. Inputs with element
    sizes that step backwards go after the others (some of them loop today's parser for ever,
    and each hang costs a restart); the known killer, if asked for, is the very last."""
    rng = random.Random(seed)
    names, weights, fns = zip(*_OSC_MUTATIONS)
    inputs = []
    for i in range(n):
        base = _osc_base(rng, i)
        k = rng.choices(range(len(names)), weights)[0]
        inputs.append((names[k], fns[k](rng, base)))
    inputs.sort(key=lambda x: x[0] == "negative_size")  # stable: the rest keep their order
    if killer:
        inputs.append(("known_killer", KILLER))
    return inputs


def _expects_osc_reply(messages: list[tuple[str, tuple]]) -> bool:
    """A well-formed datagram that should be answered: anything but well-formed /set messages."""
    return any(
        addr != "/ganbridge/set" or len(args) != 3 or not all(isinstance(a, str) for a in args[:2])
        for addr, args in messages
    )


# --- fuzzing, common part -----------------------------------------------------------------------


class _ServerLost(Exception):
    def __init__(self, how: str):
        super().__init__(how)
        self.how = how  # "hang", "crash" or "stalled" (the bridge answers others, not this client)


class Probes:
    """Other clients, timing the bridge while something else is sent: an OSC ping from a second
    loopback address and a WebSocket `generators` round trip on a connection of its own."""

    def __init__(self, server: ServerUnderTest):
        self.server = server
        self.n = 0
        self._open()

    def _open(self) -> None:
        self.sock = _udp(PROBE_HOST)
        self.ws: ClientConnection | None = None
        try:
            self.ws = _ws_open(self.server.url)
        except (OSError, WebSocketException, TimeoutError):
            self.ws = None

    def reopen(self) -> None:
        self.close()
        self._open()

    def ping(self, timeout: float = HANG_S) -> float | None:
        return _osc_ping(self.sock, self.server.osc_addr, timeout)

    def round_trip(self, timeout: float = HANG_S) -> float | None:
        if self.ws is None:
            self.reopen()
        if self.ws is None:
            return None
        self.n += 1
        rid, t0 = f"probe{self.n}", time.perf_counter()
        try:
            self.ws.send(json.dumps({"type": "generators", "id": rid}))
            while (left := t0 + timeout - time.perf_counter()) > 0:
                if json.loads(self.ws.recv(timeout=left)).get("id") == rid:
                    return time.perf_counter() - t0
        except (TimeoutError, ConnectionClosed, OSError):
            pass
        return None

    def close(self) -> None:
        self.sock.close()
        if self.ws is not None:
            self.ws.close()


class _Fuzzer:
    """The loop both doors share: idle timings first, then each input followed by a sentinel
    request whose answer marks the end of the input's replies (both doors handle a client's
    messages in order), the probes between inputs at PROBE_PACE_S, and recovery from hangs
    and crashes."""

    door = ""

    def __init__(self, server: ServerUnderTest, seed: int, max_restarts: int, idle_probes: int = IDLE_PROBES):
        self.server, self.seed, self.max_restarts, self.idle_probes = server, seed, max_restarts, idle_probes
        self.counts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()  # failure kind / mutation -> inputs
        self.failures: list[dict] = []
        self.idle_ping: list[float] = []
        self.idle_rt: list[float] = []
        self.fuzz_ping: list[float] = []
        self.fuzz_rt: list[float] = []
        self._last_probe = 0.0
        self.aborted_at: int | None = None
        self._tracebacks0 = server.tracebacks()
        self._restarts0 = server.restarts

    # to be provided by each door
    def connect(self) -> None: ...
    def inputs(self, n: int, killer: bool) -> Iterator[Any]: ...
    def one(self, index: int, item: Any) -> None: ...
    def finish(self) -> None: ...
    def describe(self, item: Any) -> tuple[str, bytes]: ...

    def run(self, n: int, killer: bool) -> dict:
        t0 = time.perf_counter()
        self.probes = Probes(self.server)
        self.connect()
        back_to_back = [p for p in (self.probes.ping() for _ in range(self.idle_probes)) if p is not None]
        for _ in range(self.idle_probes):
            time.sleep(PROBE_PACE_S)
            self.probe(self.idle_ping, self.idle_rt)
        for index, item in enumerate(self.inputs(n, killer)):
            if self.server.restarts - self._restarts0 >= self.max_restarts:
                self.aborted_at = index
                break
            self.counts["inputs"] += 1
            try:
                self.one(index, item)
                if time.perf_counter() - self._last_probe >= PROBE_PACE_S:
                    self.probe(self.fuzz_ping, self.fuzz_rt)
            except _ServerLost as lost:
                self.recover(lost.how, index, item)
        self.finish()
        try:
            self.probe(self.fuzz_ping, self.fuzz_rt)
        except _ServerLost as lost:
            self.recover(lost.how, -1, ("after the last input", b""))
        self.probes.close()
        return self.figures(back_to_back, time.perf_counter() - t0)

    def probe(self, pings: list[float], round_trips: list[float]) -> None:
        """An OSC ping and then a WebSocket round trip from the other clients (a missing answer
        counts as HANG_S)."""
        ping = self.probes.ping()
        if ping is None:
            self.check_server()
        pings.append(ping if ping is not None else HANG_S)
        rt = self.probes.round_trip()
        round_trips.append(rt if rt is not None else HANG_S)
        self._last_probe = time.perf_counter()

    def check_server(self) -> None:
        """Raise _ServerLost unless the bridge is alive and answers a ping within HANG_S."""
        if not self.server.alive():
            raise _ServerLost("crash")
        if self.probes.ping(HANG_S) is None:
            raise _ServerLost("crash" if not self.server.alive() else "hang")

    def recover(self, how: str, index: int, item: Any) -> None:
        self.counts[{"hang": "hangs", "crash": "crashes", "stalled": "stalled"}[how]] += 1
        extra = {"exit_code": self.server.exit_code()} if how == "crash" else {}
        self.fail(index, item, how, [], **extra)
        if how in ("hang", "crash"):
            self.server.restart()  # kills a hung bridge first
            self.probes.reopen()
        self.connect()

    def fail(self, index: int, item: Any, kind: str, replies: list, **extra: Any) -> None:
        mutation, data = self.describe(item)
        key = f"{kind}/{mutation}"
        self.kinds[key] += 1
        if kind in ("hang", "crash") or (self.kinds[key] <= KEEP_PER_KIND and len(self.failures) < 2 * KEEP_FAILURES):
            summary = [str(r)[:200] for r in replies[:5]]
            self.failures.append(
                {"index": index, "mutation": mutation, "kind": kind, "bytes": len(data), "hex": _hex(data),
                 "replies": summary, **extra}
            )  # fmt: skip

    def figures(self, back_to_back: list[float], seconds: float) -> dict:
        idle_p, fuzz_p, idle_r, fuzz_r = _ms(self.idle_ping), _ms(self.fuzz_ping), _ms(self.idle_rt), _ms(self.fuzz_rt)
        ratios = {
            f"{what}_{q}_ratio": _ratio(during, idle, q)
            for what, during, idle in (("ping", fuzz_p, idle_p), ("ws_rt", fuzz_r, idle_r))
            for q in ("p50", "p99")
        }
        return {
            "door": self.door,
            "seed": self.seed,
            **{k: self.counts[k] for k in ("inputs", "hangs", "crashes", "stalled")},
            "restarts": self.server.restarts - self._restarts0,
            "tracebacks": self.server.tracebacks() - self._tracebacks0,
            "aborted_at": self.aborted_at,
            "probe_pace_ms": PROBE_PACE_S * 1000,
            "back_to_back_ping_ms": _ms(back_to_back),
            "idle_ping_ms": idle_p,
            "fuzz_ping_ms": fuzz_p,
            "idle_ws_rt_ms": idle_r,
            "fuzz_ws_rt_ms": fuzz_r,
            **ratios,
            "within_2x": {
                q: all(r is not None and r <= 2 for k, r in ratios.items() if q in k) for q in ("p50", "p99")
            },
            "seconds": seconds,
            "failure_kinds": dict(self.kinds.most_common()),
            "failures": self.failures,
        }


# --- fuzzing the OSC door -----------------------------------------------------------------------

_OSC_JOB_FINALS = ("/ganbridge/done", "/ganbridge/error", "/ganbridge/cancelled")
_OSC_JOB_ADDRESSES = ("/ganbridge/progress", "/ganbridge/note", "/ganbridge/result", *_OSC_JOB_FINALS)


class OscFuzzer(_Fuzzer):
    """Datagrams from one UDP socket (with /ganbridge/reply_to set, so every reply comes back to
    it). After each input a `/ganbridge/cancel s:sentinel-N` of a job that does not exist: its
    error (first argument the sentinel) ends the input's replies. Jobs an input started are
    followed by their job id to their final message, however late it comes."""

    door = "osc"

    def connect(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
        self.sock = _udp()
        self.jobs_open: dict[str, int] = {}  # job id -> input index; ids restart with each bridge
        self.jobs_closed: set[str] = set()
        port = self.sock.getsockname()[1]
        self.sock.sendto(osc_msg("/ganbridge/reply_to", port), self.server.osc_addr)
        self.sock.settimeout(HANG_S)
        try:
            self.sock.recvfrom(65536)  # the bridge echoes /ganbridge/reply_to
        except TimeoutError:
            self.counts["slow"] += 1  # the next input's sentinel will tell what is wrong

    def inputs(self, n: int, killer: bool) -> Iterator[tuple[str, bytes]]:
        return iter(osc_corpus(self.seed, n, killer))

    def describe(self, item: tuple[str, bytes]) -> tuple[str, bytes]:
        return item

    def one(self, index: int, item: tuple[str, bytes]) -> None:
        _, data = item
        try:
            messages, valid = read_datagram(data), True
        except WireFault:
            messages, valid = [], False
        replies = self.exchange(index, data)
        if replies is not None:
            self.classify(index, item, valid, messages, replies)

    def exchange(self, index: int, data: bytes) -> list[tuple[str, tuple]] | None:
        sentinel = f"sentinel-{index}"
        try:
            self.sock.sendto(data, self.server.osc_addr)
        except OSError:  # too big for one UDP datagram: not an input anyone can send
            self.counts["unsendable"] += 1
            return None
        self.sock.sendto(osc_msg("/ganbridge/cancel", sentinel), self.server.osc_addr)
        replies: list[tuple[str, tuple]] = []
        if self.collect(sentinel, SLOW_S, replies):
            return replies
        self.counts["slow"] += 1
        self.check_server()
        if self.collect(sentinel, HANG_S - SLOW_S, replies):
            return replies
        raise _ServerLost("stalled")

    def collect(self, sentinel: str, seconds: float, replies: list[tuple[str, tuple]]) -> bool:
        """Read replies for up to `seconds`; True once the sentinel's answer came."""
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                return False
            try:
                messages = read_datagram(data)
            except WireFault:
                self.counts["malformed_replies"] += 1
                continue
            for addr, args in messages:
                if addr in ("/ganbridge/error", "/ganbridge/cancelled") and args[:1] == (sentinel,):
                    return True
                if not self.job_message(addr, args):
                    replies.append((addr, args))
        return False

    def job_message(self, addr: str, args: tuple) -> bool:
        """Track a job's messages by its id; True if the message belongs to a job (not an answer)."""
        job = args[0] if args and isinstance(args[0], str) else None
        if addr == "/ganbridge/accepted" and job:
            self.jobs_open[job] = 1
            self.counts["jobs_accepted"] += 1
            return False  # also the answer of the input that made the job
        if job in self.jobs_open and addr in _OSC_JOB_ADDRESSES:
            if addr in _OSC_JOB_FINALS:
                del self.jobs_open[job]
                self.jobs_closed.add(job)
            return True
        if job in self.jobs_closed and addr in _OSC_JOB_ADDRESSES:
            self.counts["after_final"] += 1
            return True
        return False

    def classify(self, index: int, item: tuple, valid: bool, messages: list, replies: list) -> None:
        self.counts["valid" if valid else "invalid"] += 1
        self.counts["answered" if replies else "silent"] += 1
        if not valid:
            if len(replies) == 1 and replies[0][0] == "/ganbridge/error":
                self.counts["invalid_one_error"] += 1
            else:
                kind = "invalid_silent" if not replies else "invalid_misparsed"
                self.counts[kind] += 1
                self.fail(index, item, kind, replies)
        elif not replies and _expects_osc_reply(messages):
            self.counts["valid_silent"] += 1
            self.fail(index, item, "valid_silent", replies)

    def finish(self) -> None:
        """Wait (up to 30 s) for every accepted job's final message."""
        deadline = time.perf_counter() + 30
        while self.jobs_open and time.perf_counter() < deadline:
            self.collect("(none)", 1.0, [])
        self.counts["jobs_unfinished"] = len(self.jobs_open)
        self.sock.close()

    def figures(self, back_to_back: list[float], seconds: float) -> dict:
        keys = ("valid", "invalid", "answered", "silent", "invalid_one_error", "invalid_silent",
                "invalid_misparsed", "valid_silent", "slow", "unsendable", "malformed_replies",
                "jobs_accepted", "jobs_unfinished", "after_final")  # fmt: skip
        return {**super().figures(back_to_back, seconds), **{k: self.counts[k] for k in keys}}


# --- the WebSocket corpus -------------------------------------------------------------------------


@dataclass
class WsInput:
    mutation: str
    kind: str  # the request's type before any mutation
    frame: str | bytes  # str: a text frame; bytes: a binary frame
    expect: frozenset[str]  # reply types that are a right answer
    request_id: str | None  # the id before any mutation (for a cancel: the request it stops)
    count: int | None = None  # items a generation request makes, if it runs


ERR = frozenset({"error"})
_ANSWER = {
    "hello": "welcome", "generators": "generators", "generate": "accepted", "variations": "accepted",
    "interpolate": "accepted", "feedback": "ack", "steer": "accepted", "item": "item",
}  # fmt: skip
_REQUIRED = {
    "hello": ("type",), "generators": ("type", "id"), "generate": ("type", "id", "generator"),
    "variations": ("type", "id", "item"), "interpolate": ("type", "id", "from", "to"),
    "feedback": ("type", "id", "item", "rating"), "steer": ("type", "id", "generator", "session"),
    "cancel": ("type", "id"), "item": ("type", "id", "item"),
}  # fmt: skip
# Values protocol.py never takes for the field (pydantic's lax mode coerces some look-alikes,
# such as "1" for an int, so those are left out).
_WRONG: dict[str, tuple] = {
    "type": (5, None, ["generate"], "Generate", "generat", ""),
    "id": (7, 1.5, ["x"], {"a": 1}, "", "i" * 129, True),
    "generator": (1, [], "g" * 129, "no-such-generator"),
    "params": ("width=32", [32], 5, True),
    "count": ("many", [], 0, -1, 1.5, 10**12, None),
    "seed": (-1, 2**31, "x", 1.5, []),
    "session": (1, "", "s" * 129, []),
    "item": (1, "", "x" * 65, [], "no-such-item"),
    "from": (1, "", [], "no-such-item"),
    "to": (1, "", [], "no-such-item"),
    "strength": (-0.1, 1.5, "x", [], None),
    "steps": (1, 0, 10**9, "x", 2.5),
    "rating": (2, -2, 0.5, "up", [], 5),
    "protocol": (2, 0, [], "one"),
    "client": (5, "c" * 201, []),
}
_HUGE: dict[str, tuple] = {
    "count": (10**12, 10**30),
    "steps": (10**9,),
    "strength": (1e308,),
    "seed": (10**30,),
    "params": ({"width": 10**9, "height": 10**9},),
    "id": ("i" * 100_000,),
    "generator": ("g" * 100_000,),
    "item": ("x" * 100_000,),
    "session": ("s" * 100_000,),
}
_PLACEHOLDER = "\u0000raw\u0000"  # replaced by raw JSON text (deep nesting, 1e400) after dumps


def _ws_base(rng: random.Random, n: int, items: list[str], open_ids: list[str]) -> dict:
    rid = f"w{n}"
    small = {"width": 32, "height": 32}
    kind = rng.choices(list(_REQUIRED), (1, 1, 5, 2, 1, 2, 1, 2, 1))[0]
    if (kind in ("variations", "feedback", "item") and not items) or (kind == "interpolate" and len(items) < 2):
        kind = "generate"
    item = rng.choice(items) if items else ""
    return {
        "hello": lambda: {"type": "hello", "id": rid, "protocol": 1, "client": "ganbridge-fuzz"},
        "generators": lambda: {"type": "generators", "id": rid},
        "generate": lambda: {
            "type": "generate",
            "id": rid,
            "generator": "texture",
            "params": small,
            "seed": n,
            "count": 1,
        },
        "variations": lambda: {"type": "variations", "id": rid, "item": item, "strength": 0.3, "count": 1, "seed": n},
        "interpolate": lambda: {"type": "interpolate", "id": rid, "from": items[-1], "to": items[-2], "steps": 2},
        "feedback": lambda: {
            "type": "feedback",
            "id": rid,
            "item": item,
            "rating": rng.choice((-1, 0, 1)),
            "session": "fuzz",
        },
        "steer": lambda: {
            "type": "steer",
            "id": rid,
            "generator": "texture",
            "session": "fuzz",
            "count": 1,
            "params": small,
            "seed": n,
        },
        "cancel": lambda: {
            "type": "cancel",
            "id": rng.choice(open_ids) if open_ids and rng.random() < 0.7 else f"none{n}",
        },
        "item": lambda: {"type": "item", "id": rid, "item": item},
    }[kind]()


def _dumps(msg: dict, raw: str | None = None) -> str:
    text = json.dumps(msg)
    return text if raw is None else text.replace(json.dumps(_PLACEHOLDER), raw)


def _deep(rng: random.Random) -> str:
    d = rng.choice((32, 200, 999, 1001, 5000, 100_000))
    return "[" * d + "]" * d if rng.random() < 0.5 else '{"a":' * d + "0" + "}" * d


def _w_field(rng: random.Random, msg: dict, table: dict[str, tuple]) -> str:
    field_ = rng.choice([f for f in msg if f in table] or ["type"])
    msg[field_] = rng.choice(table.get(field_, _WRONG["type"]))
    return json.dumps(msg)


def _w_deep(rng: random.Random, msg: dict) -> str:
    field_ = rng.choice(list(msg))
    msg[field_] = {"width": _PLACEHOLDER} if field_ == "params" else _PLACEHOLDER
    return _dumps(msg, _deep(rng))


def _w_drop(rng: random.Random, msg: dict) -> str:
    del msg[rng.choice([f for f in _REQUIRED[msg["type"]] if f in msg])]
    return json.dumps(msg)


def _w_utf8(rng: random.Random, msg: dict) -> bytes:
    raw = json.dumps(msg).encode()
    bad = rng.choice((b"\xff", b"\xc3\x28", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xed\xa0\x80"))
    return raw[:2] + bad + raw[2:]  # inside the first key: `type` is then missing whatever decodes


def _w_huge(rng: random.Random, msg: dict) -> str:
    if "count" in msg and rng.random() < 0.2:
        msg["count"] = _PLACEHOLDER
        return _dumps(msg, "1e400")  # Python's json reads it as infinity
    return _w_field(rng, msg, _HUGE)


# mutation -> (weight, mutate(rng, msg, limit) -> frame, expect: "error" | "either" | "same")
_WS_MUTATIONS: dict[str, tuple[float, Callable[[random.Random, dict, int], str | bytes], str]] = {
    "none": (4, lambda rng, m, lim: json.dumps(m), "same"),
    "drop_field": (2, lambda rng, m, lim: _w_drop(rng, m), "error"),
    "wrong_type": (3, lambda rng, m, lim: _w_field(rng, m, _WRONG), "error"),
    "huge_value": (1, lambda rng, m, lim: _w_huge(rng, m), "error"),
    "deep_nesting": (1, lambda rng, m, lim: _w_deep(rng, m), "error"),
    # extra="forbid" makes these errors today; a bridge that ignores unknown keys is right too
    "unknown_keys": (
        1,
        lambda rng, m, lim: json.dumps(m | {f"x{j}": j for j in range(rng.choice((1, 10, 1000, 5000)))}),
        "either",
    ),
    "binary_json": (1, lambda rng, m, lim: json.dumps(m).encode(), "either"),  # v1 says text frames
    "invalid_utf8": (1, lambda rng, m, lim: _w_utf8(rng, m), "error"),
    "binary_garbage": (0.5, lambda rng, m, lim: bytes(rng.randrange(256) for _ in range(rng.randint(1, 256))), "error"),
    "not_object": (
        0.5,
        lambda rng, m, lim: rng.choice(("[]", "1", '"generate"', "null", "true", json.dumps([m]))),
        "error",
    ),
    "not_json": (1, lambda rng, m, lim: json.dumps(m)[: rng.randrange(1, len(json.dumps(m)))], "error"),
    "empty": (0.2, lambda rng, m, lim: "", "error"),
    "oversize": (0.1, lambda rng, m, lim: json.dumps(m | {"pad": "x" * (lim + 1024)}), "error"),
}


def ws_input(rng: random.Random, n: int, items: list[str], open_ids: list[str], limit: int) -> WsInput:
    """One input, made from the seeded `rng` and what the bridge has made so far (items to vary
    and rate, requests still running to cancel)."""
    msg = _ws_base(rng, n, items, open_ids)
    kind = msg["type"]
    names = list(_WS_MUTATIONS)
    mutation = rng.choices(names, [_WS_MUTATIONS[k][0] for k in names])[0]
    _, mutate, how = _WS_MUTATIONS[mutation]
    right = frozenset({"cancelled", "error"}) if kind == "cancel" else frozenset({_ANSWER[kind]})
    frame = mutate(rng, dict(msg), limit)
    expect = {"same": right, "either": right | ERR, "error": ERR}[how]
    count = msg.get("count", msg.get("steps")) if kind in _GENERATION else None
    return WsInput(mutation, kind, frame, expect, msg.get("id"), count)


# --- fuzzing the WebSocket door -------------------------------------------------------------------


@dataclass
class _Request:
    kind: str
    count: int | None = None  # items a generation request should deliver
    first: str | None = None
    final: str | None = None
    items: int = 0
    cancel_sent: bool = False
    cancel_answered: bool = False
    abandoned: bool = False


_GENERATION = ("generate", "variations", "interpolate", "steer")
_SINGLE_REPLY = {"hello": "welcome", "generators": "generators", "feedback": "ack", "item": "item"}


class Ledger:
    """Every request a client sent and what the bridge said about it: messages of the right
    types, `accepted` first for generation requests, exactly one final message, nothing after
    it, the promised number of items, and exactly one answer to each cancel. An `error` with
    code unknown_request for a request we cancelled is the cancel's answer (the request had
    finished), not a second final."""

    def __init__(self, violations: Counter[str], examples: list[str]):
        self.reqs: dict[str, _Request] = {}
        self.violations = violations
        self.examples = examples

    def sent(self, rid: str, kind: str, count: int | None = None) -> None:
        self.reqs[rid] = _Request(kind, count)

    def cancel(self, rid: str) -> None:
        if rid in self.reqs:
            self.reqs[rid].cancel_sent = True

    def violate(self, what: str, msg: dict) -> None:
        self.violations[what] += 1
        if len(self.examples) < KEEP_FAILURES:
            self.examples.append(f"{what}: {json.dumps(msg)[:300]}")

    def receive(self, msg: dict) -> str | None:
        """None: not one of ours; 'cancel_answer'; or 'lifecycle'."""
        req = self.reqs.get(msg.get("id"))  # type: ignore[arg-type]
        if req is None:
            return None
        kind = msg.get("type")
        if req.cancel_sent and (kind == "cancelled" or (kind == "error" and msg.get("code") == "unknown_request")):
            if req.cancel_answered:
                self.violate("two answers to one cancel", msg)
            req.cancel_answered = True
            if kind == "error":
                return "cancel_answer"
        self._lifecycle(req, kind, msg)
        return "cancel_answer" if kind == "cancelled" and req.cancel_sent else "lifecycle"

    def _lifecycle(self, req: _Request, kind: Any, msg: dict) -> None:
        if req.final is not None:
            self.violate(f"{kind} after {req.final}", msg)
            return
        if req.kind in _GENERATION:
            if req.first is None and kind not in ("accepted", "error"):
                self.violate(f"{kind} before accepted", msg)
            if kind == "result":
                req.items += len(msg.get("items", []))
            if kind in WS_FINALS:
                req.final = kind
                if kind == "done" and req.count is not None and req.items != req.count:
                    self.violate(f"done after {req.items} of {req.count} items", msg)
        elif kind in (_SINGLE_REPLY[req.kind], "error"):
            req.final = kind
        else:
            self.violate(f"{kind} for a {req.kind} request", msg)
        req.first = req.first or kind

    def open(self) -> list[str]:
        return [rid for rid, r in self.reqs.items() if r.final is None and not r.abandoned]

    def abandon_open(self) -> None:
        for rid in self.open():
            self.reqs[rid].abandoned = True


class WsFuzzer(_Fuzzer):
    """Frames on one connection; after each, `{"type": "cancel", "id": "sentinel-N"}` of a
    request that does not exist: its error ends the input's answers. An input must get exactly
    one answer (progress, result and done of a request it started are followed in the ledger,
    not counted as answers), of a right type, and the connection must stay open."""

    door = "ws"

    def __init__(self, server: ServerUnderTest, seed: int, max_restarts: int, idle_probes: int = IDLE_PROBES):
        super().__init__(server, seed, max_restarts, idle_probes)
        # kept across reconnects: the run's totals
        self.violations: Counter[str] = Counter()
        self.examples: list[str] = []
        self.answer_types: Counter[str] = Counter()
        self.ws: Any = None

    def connect(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.counts["reconnects"] += 1
        self.ws = _ws_open(self.server.url)
        self.ledger = Ledger(self.violations, self.examples)
        self.items: list[str] = []
        self.ws.send(json.dumps({"type": "hello", "id": "fuzz-hello", "protocol": 1, "client": "ganbridge-fuzz"}))
        welcome = json.loads(self.ws.recv(timeout=HANG_S))
        self.limit = int(welcome.get("limits", {}).get("max_message_bytes", 1 << 20))

    def inputs(self, n: int, killer: bool) -> Iterator[WsInput]:
        rng = random.Random(self.seed)
        for i in range(n):
            yield ws_input(rng, i, self.items, self.ledger.open(), self.limit)

    def describe(self, item: WsInput) -> tuple[str, bytes]:
        frame = item.frame.encode("utf-8", "surrogateescape") if isinstance(item.frame, str) else item.frame
        return f"{item.kind}/{item.mutation}", frame

    def one(self, index: int, item: WsInput) -> None:
        self.counts["error_expected" if item.expect == ERR else "valid_or_either"] += 1
        sentinel = f"sentinel-{index}"
        try:
            self.ws.send(item.frame)
            self.ws.send(json.dumps({"type": "cancel", "id": sentinel}))
            answers = self.until_sentinel(sentinel, item)
        except ConnectionClosed as e:
            self.counts["closed"] += 1
            self.fail(index, item, f"closed {e.rcvd.code if e.rcvd else ''}".strip(), [])
            self.check_server()
            self.connect()
            return
        self.check_answers(index, item, answers)

    def until_sentinel(self, sentinel: str, item: WsInput) -> list[dict]:
        answers: list[dict] = []
        if self.collect(sentinel, SLOW_S, answers, item):
            return answers
        self.counts["slow"] += 1
        self.check_server()
        if self.collect(sentinel, HANG_S - SLOW_S, answers, item):
            return answers
        raise _ServerLost("stalled")

    def collect(self, sentinel: str, seconds: float, answers: list[dict], item: WsInput | None = None) -> bool:
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return False
            if msg.get("id") == sentinel and msg.get("type") == "error":
                return True
            self.receive(msg, answers, item)
        return False

    def receive(self, msg: dict, answers: list[dict], item: WsInput | None) -> None:
        try:
            validate_reply(msg)
        except ValidationError:
            self.ledger.violate("reply not matching protocol.py", msg)
        kind = msg.get("type")
        if kind == "result":
            self.items = (self.items + [i["item"] for i in msg.get("items", []) if "item" in i])[-64:]
        if (
            item is not None
            and item.kind == "cancel"
            and msg.get("id") == item.request_id
            and kind in ("cancelled", "error")
        ):
            answers.append(msg)  # a cancel's answer carries the id of the request it stops
            if kind == "cancelled":
                self.ledger.receive(msg)  # ... and `cancelled` is also that request's final message
            return
        if self.ledger.receive(msg) is not None:
            return
        answers.append(msg)
        if kind == "accepted" and item is not None:  # followed from here to its final message
            self.ledger.sent(msg["id"], item.kind if item.kind in _GENERATION else "generate", item.count)
            self.ledger.receive(msg)

    def check_answers(self, index: int, item: WsInput, answers: list[dict]) -> None:
        if len(answers) != 1:
            self.fail(index, item, f"{len(answers)} answers", answers)
            return
        answer = answers[0]
        kind = answer.get("type", "?")
        self.counts["one_answer"] += 1
        self.answer_types[kind if kind != "error" else f"error:{answer.get('code')}"] += 1
        if kind not in item.expect:
            self.fail(index, item, f"answered {kind}, expected {'/'.join(sorted(item.expect))}", answers)
        elif kind == "error" and answer.get("code") == "internal":
            self.fail(index, item, "internal error", answers)
        elif item.expect == ERR:
            self.counts["invalid_one_error"] += 1

    def fail(self, index: int, item: Any, kind: str, replies: list, **extra: Any) -> None:
        if kind not in ("hang", "crash", "stalled"):
            self.counts["violations"] += 1
        super().fail(index, item, kind, replies, **extra)

    def finish(self) -> None:
        deadline = time.perf_counter() + 30
        while self.ledger.open() and time.perf_counter() < deadline:
            try:
                self.collect("(none)", 1.0, [])
            except ConnectionClosed:
                break
        self.counts["requests_unfinished"] = len(self.ledger.open())
        self.ws.close()

    def figures(self, back_to_back: list[float], seconds: float) -> dict:
        keys = ("error_expected", "valid_or_either", "one_answer", "invalid_one_error", "violations", "closed",
                "reconnects", "slow", "requests_unfinished")  # fmt: skip
        return {
            **super().figures(back_to_back, seconds),
            **{k: self.counts[k] for k in keys},
            "answers": dict(self.answer_types.most_common()),
            "lifecycle_violations": sum(self.violations.values()),
            "lifecycle_kinds": dict(self.violations),
            "lifecycle_examples": self.examples,
            "hard_limits": ws_hard_limit_probes(self.server.url, self.limit),
        }


def ws_hard_limit_probes(url: str, limit: int) -> dict[str, str]:
    """What the websockets library itself does below the protocol (reported, not judged):
    RFC 6455 makes invalid UTF-8 in a text frame a reason to close (1007), and frames past the
    library's max_size are closed on too (1009)."""
    return {
        "invalid_utf8_text_frame": _probe_frame(url, b'{"type":"generators","id":"\xff"}', text=True),
        "frame_9x_message_limit": _probe_frame(url, "x" * (9 * limit)),
    }


def _probe_frame(url: str, frame: str | bytes, text: bool | None = None) -> str:
    try:
        with sync_connect(url, compression=None, max_size=None, open_timeout=HANG_S) as ws:
            ws.send(frame, text=text)
            reply = json.loads(ws.recv(timeout=HANG_S))
            return f"reply {reply.get('type')} {reply.get('code', '')}".strip()
    except ConnectionClosed as e:
        return f"closed {e.rcvd.code} {e.rcvd.reason}".strip() if e.rcvd else "closed"
    except (TimeoutError, OSError, WebSocketException) as e:
        return f"{type(e).__name__}: {e}"


def fuzz(
    door: str,
    n: int,
    seed: int,
    server: ServerUnderTest | None = None,
    *,
    killer: bool = False,
    max_restarts: int = 10,
    idle_probes: int = IDLE_PROBES,
) -> dict:
    """Fuzz one door ("osc" or "ws") with `n` seeded inputs (plus the known killer last, for OSC,
    if asked), timing the other clients `idle_probes` times idle first. A bridge that hangs or
    crashes is killed and started afresh, up to `max_restarts` times; after that the run stops
    and says where (`aborted_at`)."""
    own = server is None
    server = server or ServerUnderTest()
    try:
        runner = {"osc": OscFuzzer, "ws": WsFuzzer}[door](server, seed, max_restarts, idle_probes)
        return runner.run(n, killer and door == "osc")
    finally:
        if own:
            server.close()


# --- a hog and its bystanders -------------------------------------------------------------------


def _generate(rid: str, size: int, count: int = 1, seed: int | None = None) -> dict:
    msg = {"type": "generate", "id": rid, "generator": "texture", "params": {"width": size, "height": size}}
    return msg | {"count": count} | ({"seed": seed} if seed is not None else {})


async def _final(ws: AsyncConnection, rid: str, timeout: float, on_result: Callable[[], None] | None = None) -> dict:
    """Read up to `rid`'s final message (done, error or cancelled) and return it."""
    deadline = time.perf_counter() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.perf_counter())))
        if msg.get("id") != rid:
            continue
        if msg["type"] == "result" and on_result is not None:
            on_result()
        if msg["type"] in WS_FINALS:
            return msg


async def _bystander(url: str, c: int, size: int, n: int, timeout: float) -> tuple[list[float], int]:
    """`n` single small generates, one after another; (latencies, errors). The first is a warm-up."""
    latencies, errors = [], 0
    async with async_connect(url, compression=None, max_size=None) as ws:
        for r in range(n + 1):
            rid = f"b{c}-{r}"
            t0 = time.perf_counter()
            await ws.send(json.dumps(_generate(rid, size, seed=r)))
            final = await _final(ws, rid, timeout)
            if final["type"] != "done":
                errors += 1
            elif r > 0:
                latencies.append(time.perf_counter() - t0)
    return latencies, errors


async def _bystanders(url: str, m: int, size: int, n: int, timeout: float) -> tuple[list[float], int]:
    runs = await asyncio.gather(*(_bystander(url, c, size, n, timeout) for c in range(m)))
    return [t for lat, _ in runs for t in lat], sum(e for _, e in runs)


async def _negotiate(ws: AsyncConnection, size: int, count: int) -> tuple[int, int, list[str]]:
    """Send the hog's first request, halving what the bridge refuses as too_large (the count
    when the error points at it, else the side) until it is accepted; (side, count, refusals)."""
    refusals: list[str] = []
    while True:
        await ws.send(json.dumps(_generate("hog0", size, count)))
        while (reply := json.loads(await asyncio.wait_for(ws.recv(), 60))).get("id") != "hog0":
            pass
        if reply["type"] == "accepted":
            return size, count, refusals
        if reply.get("code") != "too_large":
            raise RuntimeError(f"the hog's request was refused: {reply}")
        refusals.append(f"{size}x{size}x{count}: {reply.get('message')}")
        paths = {d.get("path") for d in reply.get("details") or []}
        if count > 1 and ("count" in paths or size <= 32):
            count //= 2
        elif size > 32:
            size = max(32, size // 2 // 32 * 32)
        else:
            raise RuntimeError(f"the bridge refuses even the smallest hog: {reply}")


async def _hog(url: str, size: int, count: int, started: asyncio.Event, stop: asyncio.Event, out: dict) -> None:
    """Back-to-back large generates until `stop`; the time of every `result` goes into out["results"]."""
    async with async_connect(url, compression=None, max_size=None) as ws:
        size, count, refusals = await _negotiate(ws, size, count)
        out.update(size=size, count=count, refusals=refusals, results=[], errors=0)

        def on_result() -> None:
            out["results"].append(time.perf_counter())
            started.set()

        n, stopper = 0, asyncio.create_task(stop.wait())
        while True:
            rid = f"hog{n}"
            reading = asyncio.create_task(_final(ws, rid, 3600, on_result))
            await asyncio.wait([reading, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():  # stopped mid-request: cancel it and read to its end
                await ws.send(json.dumps({"type": "cancel", "id": rid}))
                await reading
                return
            out["errors"] += reading.result()["type"] != "done"
            if stop.is_set():
                return
            n += 1
            await ws.send(json.dumps(_generate(f"hog{n}", size, count)))


def hog_and_bystanders(
    server: ServerUnderTest | None = None,
    *,
    hog_size: int = 2048,
    hog_count: int = 16,
    bystanders: int = 4,
    bystander_size: int = 128,
    requests: int = 20,
    timeout: float = 600.0,
) -> dict:
    """Bystanders' small-request latency alone, then next to a hog sending the largest request
    the bridge takes, back to back. The goal: a bystander's request finishes within one hog
    batch (the time between the hog's consecutive results) plus its own time alone."""
    own = server is None
    server = server or ServerUnderTest()
    try:
        return asyncio.run(_hog_figures(server, hog_size, hog_count, bystanders, bystander_size, requests, timeout))
    finally:
        if own:
            server.close()


async def _hog_figures(
    server: ServerUnderTest, size: int, count: int, m: int, small: int, n: int, timeout: float
) -> dict:
    t0, tracebacks0 = time.perf_counter(), server.tracebacks()
    alone, errors_alone = await _bystanders(server.url, m, small, n, timeout)
    started, stop, hog = asyncio.Event(), asyncio.Event(), {}
    task = asyncio.create_task(_hog(server.url, size, count, started, stop, hog))
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiting], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # the hog failed before its first result: say why
    if not started.is_set():
        raise TimeoutError(f"the hog got no result in {timeout} s")
    with_hog, errors_hog = await _bystanders(server.url, m, small, n, timeout)
    stop.set()
    await asyncio.wait_for(task, timeout)
    batches = list(np.diff(hog["results"])) if len(hog["results"]) > 1 else []
    batch, alone_ms, with_ms = _ms(batches), _ms(alone), _ms(with_hog)
    goal = batch["p50"] + alone_ms["p50"] if batch["p50"] is not None and alone_ms["p50"] is not None else None
    return {
        "hog": {k: hog[k] for k in ("size", "count", "refusals", "errors")} | {"batches": len(batches)},
        "hog_batch_ms": batch,
        "bystanders": m,
        "bystander_size": small,
        "alone_ms": alone_ms,
        "with_hog_ms": with_ms,
        "goal_ms": goal,
        "meets_goal": goal is not None and with_ms["p50"] is not None and with_ms["p50"] <= goal,
        "bystander_errors": errors_alone + errors_hog,
        "tracebacks": server.tracebacks() - tracebacks0,
        "crashed": not server.alive(),
        "seconds": time.perf_counter() - t0,
    }


# --- soak -----------------------------------------------------------------------------------------


@dataclass
class _SoakTally:
    requests: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    replies: int = 0
    connections: int = 0
    disconnects: int = 0

    def fault(self, what: str, detail: str = "") -> None:
        self.faults[what] += 1
        if len(self.examples) < KEEP_FAILURES:
            self.examples.append(f"fault {what}: {detail[:300]}")


class _SoakConnection:
    """One connection of a soak client: a reader task files every reply in the ledger."""

    def __init__(self, ws: AsyncConnection, tally: _SoakTally, rng: random.Random, name: str):
        self.ws, self.tally, self.rng, self.name = ws, tally, rng, name
        self.ledger = Ledger(tally.violations, tally.examples)
        self.items: list[str] = []
        self.seq = 0
        self.closing = False
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._on(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.tally.fault("connection closed by the bridge", self.name)
            self.changed.set()

    def _on(self, msg: dict) -> None:
        self.tally.replies += 1
        try:
            validate_reply(msg)
        except ValidationError:
            self.ledger.violate("reply not matching protocol.py", msg)
        if msg.get("type") == "error" and msg.get("code") == "internal":
            self.tally.fault("internal error", msg.get("message", ""))
        if self.ledger.receive(msg) is None:
            self.ledger.violate("reply for an id this client never sent", msg)
        if msg.get("type") == "result":
            self.items = (self.items + [i["item"] for i in msg.get("items", [])])[-16:]
        self.changed.set()

    async def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not done():
            if self.reader.done() or (left := deadline - time.perf_counter()) <= 0:
                return done()
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass
        return True

    def _id(self) -> str:
        self.seq += 1
        return f"{self.name}-{self.seq}"

    async def request(self, msg: dict, count: int | None = None, timeout: float = 120.0) -> None:
        self.ledger.sent(msg["id"], msg["type"], count)
        self.tally.requests[msg["type"]] += 1
        await self.ws.send(json.dumps(msg))
        req = self.ledger.reqs[msg["id"]]
        if not await self._wait(lambda: req.final is not None, timeout) and not self.reader.done():
            self.tally.fault("no final message in time", msg["id"])
            req.abandoned = True

    async def cancel_own(self) -> None:
        rid = self._id()
        self.ledger.sent(rid, "generate", 4)
        self.tally.requests["cancel"] += 1
        await self.ws.send(json.dumps(_generate(rid, 64, 4)))
        await asyncio.sleep(self.rng.uniform(0, 0.03))
        self.ledger.cancel(rid)
        await self.ws.send(json.dumps({"type": "cancel", "id": rid}))
        req = self.ledger.reqs[rid]
        if not await self._wait(lambda: req.final is not None and req.cancel_answered, 120) and not self.reader.done():
            self.ledger.violate("a cancel without its answer or a request without its final", {"id": rid})
            req.abandoned = True

    async def abort(self) -> None:
        """Drop the TCP connection with a request in flight, no closing handshake."""
        await self.ws.send(json.dumps(_generate(self._id(), 64, 2)))
        self.closing = True
        self.ws.transport.abort()
        self.ledger.abandon_open()
        self.tally.disconnects += 1

    async def step(self) -> bool:
        """One action; False when this connection is over."""
        r, rng, item = self.rng.random(), self.rng, self.rng.choice(self.items) if self.items else None
        if r < 0.40 or (item is None and r < 0.70):
            count = rng.choice((1, 1, 2))
            await self.request(_generate(self._id(), rng.choice((32, 64)), count), count)
        elif r < 0.55:
            await self.request({"type": "variations", "id": self._id(), "item": item, "count": 1, "strength": 0.4}, 1)
        elif r < 0.70:
            await self.request({"type": "feedback", "id": self._id(), "item": item, "rating": rng.choice((-1, 1))})
        elif r < 0.85:
            await self.cancel_own()
        elif r < 0.90:
            await self.abort()
            return False
        elif r < 0.93:
            return False  # a clean close, then a new connection
        else:
            await self.request({"type": "generators", "id": self._id()})
        return not self.reader.done()

    async def close(self) -> None:
        if not self.closing:
            self.closing = True
            await self.ws.close()
        await asyncio.gather(self.reader, return_exceptions=True)
        for rid in self.ledger.open():
            self.ledger.violate("no final message before the connection closed", {"id": rid})


async def _soak_client(url: str, c: int, seed: int, stop: threading.Event, tally: _SoakTally) -> None:
    rng = random.Random(seed * 1000 + c)
    while not stop.is_set():
        try:
            ws = await async_connect(url, compression=None, max_size=None, open_timeout=HANG_S)
        except (OSError, WebSocketException, TimeoutError) as e:
            tally.fault("cannot connect", repr(e))
            await asyncio.sleep(0.5)
            continue
        tally.connections += 1
        conn = _SoakConnection(ws, tally, rng, f"c{c}.{tally.connections}")
        try:
            if rng.random() < 0.5:
                await conn.request({"type": "hello", "id": conn._id(), "protocol": 1, "client": f"soak {c}"})
            while not stop.is_set() and await conn.step():
                pass
        except ConnectionClosed:
            pass  # counted by the reader, unless we closed it
        finally:
            await conn.close()


class _Watch(threading.Thread):
    """Pings the OSC door and samples the server's RSS every second; stops the soak on a hang
    or a crash."""

    def __init__(self, server: ServerUnderTest, stop: threading.Event):
        super().__init__(daemon=True)
        self.server, self.stop_soak = server, stop
        self.pings: list[float] = []
        self.rss: list[tuple[float, int]] = []
        self.measure_from = float("inf")  # the end of the warm-up: what came before is not the soak's
        self.hung = self.crashed = False
        self.done = threading.Event()

    def run(self) -> None:
        sock = _udp(PROBE_HOST)
        try:
            while not self.done.wait(1.0):
                rss = self.server.rss()
                if rss is not None:
                    self.rss.append((time.perf_counter(), rss))
                ping = _osc_ping(sock, self.server.osc_addr, HANG_S)
                if ping is not None:
                    self.pings.append(ping)
                elif not self.done.is_set():
                    self.crashed = not self.server.alive()
                    self.hung = not self.crashed
                    if self.hung:
                        self.server.kill()  # so the clients' waits end now, and nothing is left spinning
                    self.stop_soak.set()
                    return
        finally:
            sock.close()


def soak(server: ServerUnderTest | None = None, *, clients: int = 32, seconds: float = 600.0, seed: int = 1) -> dict:
    """`clients` concurrent WebSocket clients for `seconds`; RSS is sampled after a warm-up
    (a tenth of the time, at most 30 s) and at the end."""
    own = server is None
    server = server or ServerUnderTest()
    try:
        return asyncio.run(_soak(server, clients, seconds, seed))
    finally:
        if own:
            server.close()


async def _soak(server: ServerUnderTest, clients: int, seconds: float, seed: int) -> dict:
    t0, tracebacks0 = time.perf_counter(), server.tracebacks()
    stop, tally = threading.Event(), _SoakTally()
    watch = _Watch(server, stop)
    watch.start()
    tasks = [asyncio.create_task(_soak_client(server.url, c, seed, stop, tally)) for c in range(clients)]
    warm = min(30.0, seconds / 10)
    await asyncio.sleep(warm)
    rss_start, watch.measure_from = server.rss(), time.perf_counter()
    await asyncio.to_thread(stop.wait, max(0.0, seconds - warm))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 180)
    await asyncio.sleep(1.0)  # let the bridge let go of what the last connections held
    rss_end = server.rss()
    watch.done.set()
    watch.join(timeout=HANG_S + 2)
    return _soak_figures(server, tally, watch, clients, rss_start, rss_end, tracebacks0, time.perf_counter() - t0)


def _soak_figures(server, tally, watch, clients, rss_start, rss_end, tracebacks0, seconds) -> dict:
    mb = 1 / (1 << 20)
    rss_max = max((r for t, r in watch.rss if t >= watch.measure_from), default=None)
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": dict(tally.requests),
        "replies": tally.replies,
        "connections": tally.connections,
        "disconnects": tally.disconnects,
        "violations": sum(tally.violations.values()),
        "violation_kinds": dict(tally.violations),
        "faults": sum(tally.faults.values()),
        "fault_kinds": dict(tally.faults),
        "examples": tally.examples,
        "ping_ms": _ms(watch.pings),
        "hangs": int(watch.hung),
        "crashes": int(watch.crashed or (not server.alive() and not watch.hung)),
        "tracebacks": server.tracebacks() - tracebacks0,
        "rss_start_mb": rss_start * mb if rss_start else None,
        "rss_end_mb": rss_end * mb if rss_end else None,
        "rss_max_mb": rss_max * mb if rss_max else None,
        "rss_change_pct": (rss_end - rss_start) / rss_start * 100 if rss_start and rss_end else None,
    }


# --- `ganbridge bench --only robustness` ----------------------------------------------------------


def osc_read_times(seed: int, n: int) -> dict:
    """How long the door's strict reader (bridge/osc_wire.py, which runs on the event loop) takes
    per datagram: the fuzz corpus, and the largest datagrams it can be sent (64 KB of nested
    bundles; 64 KB of one message's strings), in process."""
    from ganbridge.doors.osc_wire import MAX_DEPTH, OscFormatError, parse_datagram

    def timed(data: bytes) -> float:
        t0 = time.perf_counter()
        try:
            parse_datagram(data)
        except OscFormatError:
            pass
        return time.perf_counter() - t0

    corpus = [timed(d) for _, d in osc_corpus(seed, n, killer=True)]
    inner = osc_bundle(*[osc_msg("/ganbridge/set", "texture", "model", "x" * 900)] * 8)
    for _ in range(MAX_DEPTH - 2):
        inner = osc_bundle(inner)  # with the outer bundle, as deep as the reader allows
    largest = {  # each under UDP's 65,507 bytes, each read to its end or to the 64-message limit
        "nested, 64 messages": osc_bundle(*[inner] * 8),
        "one message, 60 strings": osc_msg("/ganbridge/generate", *["y" * 1000] * 60),
        "5,000 tiny elements": osc_bundle(*[osc_msg("/a")] * 5000),
    }
    assert all(len(d) <= 65507 for d in largest.values())
    worst = {name: 1000 * max(timed(d) for _ in range(20)) for name, d in largest.items()}
    return {"corpus": _ms(corpus), "corpus_max_ms": 1000 * max(corpus), "largest_max_ms": worst}


def run_robustness(args: Any, device: str) -> dict:
    """All three parts against one bridge (restarted when an input takes it down)."""
    seed = args.seed
    reads = osc_read_times(seed, args.fuzz)
    print(f"  OSC reader, in process: {args.fuzz} fuzzed datagrams p50/p99 {_p(reads['corpus'])}, "
          f"max {reads['corpus_max_ms']:.3f} ms")  # fmt: skip
    for name, ms in reads["largest_max_ms"].items():
        _row(f"largest datagram ({name}), max of 20", f"{ms:.3f} ms")
    server = ServerUnderTest(device)
    try:
        figures = {
            "seed": seed,
            "osc_read": reads,
            "fuzz_osc": fuzz("osc", args.fuzz, seed, server, killer=True),
            "fuzz_ws": fuzz("ws", args.fuzz, seed, server),
        }
        print_fuzz(figures["fuzz_osc"])
        print_fuzz(figures["fuzz_ws"])
        figures["hog"] = hog_and_bystanders(
            server, hog_size=args.hog_size, hog_count=args.hog_count, bystanders=args.bystanders
        )
        print_hog(figures["hog"])
        figures["soak"] = soak(server, clients=args.soak_clients, seconds=args.soak_seconds, seed=seed)
        print_soak(figures["soak"])
        tb = server.first_traceback()
        if tb:
            print(f"  first traceback on the bridge's stderr:\n{tb}")
        return {"robustness": figures}
    finally:
        server.close()


def _p(d: dict) -> str:
    if d["p50"] is None:
        return "n/a"
    return f"{d['p50']:.2f} / {d['p99']:.2f} ms"


def _row(label: str, value: Any) -> None:
    print(f"    {label:<52} {value}")


def print_fuzz(f: dict) -> None:
    stopped = "" if f["aborted_at"] is None else f" (stopped at input {f['aborted_at']} after {f['restarts']} restarts)"
    print(f"  fuzz {f['door']}: {f['inputs']} inputs, seed {f['seed']}, {f['seconds']:.1f} s{stopped}")
    if f["door"] == "osc":
        _row("valid / invalid", f"{f['valid']} / {f['invalid']}")
        _row("answered / silent", f"{f['answered']} / {f['silent']}")
        _row("invalid answered with exactly one error", f"{f['invalid_one_error']} / {f['invalid']}")
        _row("invalid silent / misparsed (ran, or >1 reply)", f"{f['invalid_silent']} / {f['invalid_misparsed']}")
        _row("valid but silent (a reply was due)", f["valid_silent"])
        _row("jobs accepted / unfinished", f"{f['jobs_accepted']} / {f['jobs_unfinished']}")
    else:
        _row("invalid (one error due) / valid or either", f"{f['error_expected']} / {f['valid_or_either']}")
        _row("invalid answered with exactly one error", f"{f['invalid_one_error']} / {f['error_expected']}")
        _row("protocol violations (answers) / lifecycle", f"{f['violations']} / {f['lifecycle_violations']}")
        _row("connections closed by the bridge", f["closed"])
        _row("requests unfinished", f["requests_unfinished"])
        for k, v in f["hard_limits"].items():
            _row(f"library limit: {k}", v)
    _row("hangs / crashes / stalled / restarts / tracebacks",
         f"{f['hangs']} / {f['crashes']} / {f['stalled']} / {f['restarts']} / {f['tracebacks']}")  # fmt: skip
    _row("OSC ping p50/p99, idle back to back", _p(f["back_to_back_ping_ms"]))
    _row(f"OSC ping p50/p99, idle -> fuzzing, {f['probe_pace_ms']:.0f} ms apart",
         f"{_p(f['idle_ping_ms'])} -> {_p(f['fuzz_ping_ms'])}")  # fmt: skip
    _row("WebSocket round trip p50/p99, idle -> fuzzing", f"{_p(f['idle_ws_rt_ms'])} -> {_p(f['fuzz_ws_rt_ms'])}")
    _row("other clients within 2x of idle (p50, p99)", f"{f['within_2x']['p50']}, {f['within_2x']['p99']}")
    for kind, n in list(f["failure_kinds"].items())[:10]:
        _row(f"failures: {kind}", n)
    if f["door"] == "ws":
        _row("answers", ", ".join(f"{k} {v}" for k, v in f["answers"].items()))
    shown = sorted(f["failures"], key=lambda x: x["kind"] not in ("hang", "crash"))[:6]
    for fail in shown:  # hangs and crashes first, in full: they are what to replay
        text = fail["hex"] if fail["kind"] in ("hang", "crash") else fail["hex"][:160]
        print(f"      seed {f['seed']} #{fail['index']} {fail['mutation']} -> {fail['kind']}: {text}")


def print_hog(f: dict) -> None:
    hog = f["hog"]
    print(
        f"  hog {hog['size']}x{hog['size']}x{hog['count']} and {f['bystanders']} bystanders at {f['bystander_size']}^2:"
    )
    for r in hog["refusals"]:
        _row("refused", r)
    _row("hog batch (between results) p50/p99", _p(f["hog_batch_ms"]))
    _row("bystander alone p50/p99", _p(f["alone_ms"]))
    _row("bystander next to the hog p50/p99", _p(f["with_hog_ms"]))
    goal = f"{f['goal_ms']:.1f} ms" if f["goal_ms"] is not None else "n/a"
    _row("goal (one hog batch + alone p50) / met", f"{goal} / {f['meets_goal']}")


def print_soak(f: dict) -> None:
    print(f"  soak: {f['clients']} clients, {f['seconds']:.0f} s, {f['connections']} connections "
          f"({f['disconnects']} dropped abruptly)")  # fmt: skip
    _row("requests", ", ".join(f"{k} {v}" for k, v in sorted(f["requests"].items())))
    _row("protocol violations / faults", f"{f['violations']} / {f['faults']}")
    _row("hangs / crashes / tracebacks", f"{f['hangs']} / {f['crashes']} / {f['tracebacks']}")
    if f["rss_change_pct"] is not None:
        _row("server RSS start -> end (max)",
             f"{f['rss_start_mb']:.0f} -> {f['rss_end_mb']:.0f} MB ({f['rss_change_pct']:+.1f}%, max after warm-up {f['rss_max_mb']:.0f})")  # fmt: skip
    for e in f["examples"][:5]:
        print(f"      {e}")
