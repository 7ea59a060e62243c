"""The one protocol client every plugin bundles: connect, hello, send, receive, reconnect.

Pure Python over the `websockets` threading client, so it runs inside Blender's and Krita's own
Pythons with no numpy, torch or Qt. Nothing here touches a host: the network lives in background
threads, and everything the host needs arrives as `Event`s in a queue that the host drains on its
own UI thread (`BridgeClient.poll`). `send` never blocks: it queues.

Requests that are in flight when the connection drops get a synthetic `error` event with code
`disconnected`, so a host has one path for every way a request can end.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

PROTOCOL = 1
DEFAULT_URL = "ws://127.0.0.1:8765/"
# Replies after which the bridge sends nothing more for that request id.
FINAL_TYPES = frozenset({"done", "cancelled", "error", "ack", "generators", "item", "live_closed"})
# Asked for in hello beyond v1: live sessions (ganbridge_live.py), and results and live frames
# as binary frames. As base64 JSON, parsing a 2048² texture's maps (32 MB) held the host's GIL,
# and so its UI thread, 74 ms in json.loads and 0.2 s in base64 decoding, whichever thread ran
# them; from a binary frame the payloads are sliced out. `payload` reads either form, so a
# bridge that does not grant "binary" still works.
EXTENSIONS = ("live", "binary")
BINARY_MAGIC = b"GBF1"
# Client-side error codes, beside the bridge's own (protocol v1 §2).
DISCONNECTED = "disconnected"
NOT_CONNECTED = "not_connected"


def decode_frame(frame: bytes) -> dict:
    """A binary frame (`result` or `live_frame`) -> the reply, each payload's `data` as bytes:
    BINARY_MAGIC, the header's length (4 bytes, big endian), the header (JSON, each `data` an
    [offset, length] into the rest) and the payloads. Raises ValueError for anything else."""
    if len(frame) < 8 or frame[:4] != BINARY_MAGIC:
        raise ValueError("not a ganbridge binary frame")
    length = int.from_bytes(frame[4:8], "big")
    header = json.loads(frame[8 : 8 + length])
    body = memoryview(frame)[8 + length :]

    def give(holder: Any) -> None:
        span = holder.get("data") if isinstance(holder, dict) else None
        if span is None:
            return
        if not (isinstance(span, list) and len(span) == 2 and all(type(n) is int and n >= 0 for n in span)):
            raise ValueError("a payload's place in a binary frame is not [offset, length]")
        start, size = span
        if start + size > len(body):
            raise ValueError("a payload runs past the end of its binary frame")
        holder["data"] = bytes(body[start : start + size])
        for m in (holder.get("maps") or {}).values():
            give(m)

    if not isinstance(header, dict):
        raise ValueError("a binary frame's header is not an object")
    holders = header.get("items") if header.get("type") == "result" else [header]
    for holder in holders if isinstance(holders, list) else []:
        give(holder)
    return header


def payload(data: Any) -> bytes:
    """A result's or frame's payload as bytes: as a binary frame gave it, or a text frame's base64.
    Raises ValueError when it is neither."""
    if isinstance(data, bytes):
        return data
    if not isinstance(data, str):
        raise ValueError("no payload")
    return base64.b64decode(data, validate=True)


class BadUrl(ValueError):
    """A bridge URL the client refuses before trying to connect."""


def check_url(url: str) -> str:
    """Return the URL if it is a usable ws:// or wss:// address, else raise BadUrl with why."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise BadUrl(f"{url!r} is not a valid URL: {e}") from None
    if parts.scheme not in ("ws", "wss"):
        raise BadUrl(f"{url!r}: the bridge URL must start with ws:// (or wss://), like {DEFAULT_URL}")
    if not parts.hostname:
        raise BadUrl(f"{url!r} has no host name; the bridge's default is {DEFAULT_URL}")
    if port == 0:
        raise BadUrl(f"{url!r}: port 0 is not a port")
    return url.strip()


def is_loopback(url: str) -> bool:
    """True when the URL points at this machine (the only place a host may go without asking)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Event:
    """Something the host applies on its UI thread.

    kind: "state" (data: ConnectionState), "message" (data: a bridge message dict; includes the
    synthetic errors for lost requests).
    """

    kind: str
    data: Any


@dataclass
class ConnectionState:
    status: str = "disconnected"  # disconnected | connecting | connected | unauthorized | stopped
    detail: str = ""
    server: str = ""
    generators: list[dict] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)  # what the bridge granted of EXTENSIONS
    retry_in: float = 0.0


class BridgeClient:
    """A reconnecting protocol-v1 connection driven by background threads."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str = "",
        client_name: str = "ganbridge-plugin",
        *,
        open_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.5, 10.0),
        max_message_bytes: int = 256 * 2**20,
    ):
        self.url = check_url(url)
        self.token = token
        self.client_name = client_name
        self.open_timeout = open_timeout
        self.backoff = backoff
        self.max_message_bytes = max_message_bytes
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.state = ConnectionState()
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time() * 1000) % 10**8:x}"
        self._outbox: queue.SimpleQueue[dict | None] | None = None  # one per connection
        self._in_flight: set[str] = set()
        self._live: set[str] = set()  # live sessions open, of those in flight
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._thread: threading.Thread | None = None

    # --- host side (any thread; the UI thread in practice) -----------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ganbridge-client", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the threads (waits at most `timeout`)."""
        self._stop.set()
        with self._lock:
            if self._outbox is not None:
                self._outbox.put(None)
        ws = self._ws
        if ws is not None:
            threading.Thread(target=ws.close, daemon=True).start()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state(status="stopped", detail="")

    @property
    def connected(self) -> bool:
        return self.state.status == "connected"

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def request(self, kind: str, **fields: Any) -> str:
        """Queue a request and return its id; its replies (or a synthetic error) arrive as events."""
        rid = fields.pop("id", None) or self.new_id()
        msg = {"type": kind, "id": rid, **fields}
        with self._lock:
            ok = self._outbox is not None
            if ok:
                self._in_flight.add(rid)
                self._outbox.put(msg)
        if not ok:
            self._emit_error(rid, NOT_CONNECTED, self._not_connected_reason())
        return rid

    def poll(self, limit: int = 1000) -> list[Event]:
        """Events that arrived since the last poll, oldest first; never blocks."""
        out: list[Event] = []
        while len(out) < limit:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    # --- background threads --------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            self._set_state(status="connecting", detail=f"connecting to {self.url}")
            try:
                outcome = self._session()
            except Exception as e:  # a bug here must not kill the thread: the host would wait forever
                self._set_state(status="disconnected", detail=f"connection error: {_reason(e)}")
                outcome = "failed"
            if self._stop.is_set():
                break
            if outcome == "welcomed":
                delay = self.backoff[0]  # it worked once: retry quickly after a drop
            wait = self.backoff[1] if outcome == "unauthorized" else delay
            self._set_state(retry_in=wait)
            if self._stop.wait(wait):
                break
            delay = min(delay * 2, self.backoff[1])

    def _session(self) -> str:
        """One connection from open to close. Returns how it went: failed | unauthorized | welcomed."""
        try:
            opening = connect(
                self.url, open_timeout=self.open_timeout, compression=None, max_size=self.max_message_bytes, proxy=None
            )
            ws = opening.__enter__()  # the library's context-manager form, entered here to catch its errors
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, InvalidStatus) as e:
            self._set_state(status="disconnected", detail=f"cannot reach the bridge at {self.url}: {_reason(e)}")
            return "failed"
        self._ws = ws
        try:
            return self._converse(ws)
        finally:
            self._ws = None
            ws.close()
            self._lose_in_flight()

    def _converse(self, ws: ClientConnection) -> str:
        welcome = self._handshake(ws)
        if welcome is None:
            return "unauthorized" if self.state.status == "unauthorized" else "failed"
        outbox: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        with self._lock:
            self._outbox = outbox
        self._set_state(
            status="connected",
            detail=f"connected to {welcome.get('server', 'the bridge')}",
            server=str(welcome.get("server", "")),
            generators=list(welcome.get("generators", [])),
            limits=dict(welcome.get("limits", {})),
            extensions=[e for e in welcome.get("extensions", []) if isinstance(e, str)],
            retry_in=0.0,
        )
        threading.Thread(target=self._write, args=(ws, outbox), name="ganbridge-client-send", daemon=True).start()
        self._read(ws)
        return "welcomed"

    def _handshake(self, ws: ClientConnection) -> dict | None:
        hello: dict[str, Any] = {
            "type": "hello",
            "protocol": PROTOCOL,
            "client": self.client_name,
            "extensions": list(EXTENSIONS),
        }
        if self.token:
            hello["token"] = self.token
        try:
            ws.send(json.dumps(hello))
            reply = json.loads(ws.recv(timeout=self.open_timeout))
        except (ConnectionClosed, TimeoutError, OSError, ValueError) as e:
            self._set_state(
                status="disconnected", detail=f"the bridge at {self.url} did not answer hello: {_reason(e)}"
            )
            return None
        if reply.get("type") == "welcome":
            return reply
        if reply.get("code") == "unauthorized":
            hint = (
                "check the token in the settings" if self.token else "this bridge needs a token: set it in the settings"
            )
            self._set_state(status="unauthorized", detail=f"the bridge refused the token: {hint}")
        else:
            self._set_state(status="disconnected", detail=f"unexpected answer to hello: {reply.get('message', reply)}")
        return None

    def _read(self, ws: ClientConnection) -> None:
        try:
            for raw in ws:
                try:
                    msg = decode_frame(raw) if isinstance(raw, bytes) else json.loads(raw)
                except ValueError:
                    continue  # the bridge only sends these; a torn frame is not the host's problem
                if not isinstance(msg, dict):
                    continue
                rid = msg.get("id")
                if isinstance(rid, str):
                    self._track(msg.get("type"), rid)
                self.events.put(Event("message", msg))
        except (ConnectionClosed, OSError) as e:
            if not self._stop.is_set():
                self._set_state(status="disconnected", detail=f"lost the connection to the bridge: {_reason(e)}")
            return
        if not self._stop.is_set():
            self._set_state(status="disconnected", detail="the bridge closed the connection")

    def _track(self, kind: object, rid: str) -> None:
        """Forget a request once its final reply is in. An open live session stays in flight
        until `live_closed` (an error there refused one move, not the session), so a lost
        connection still ends it with a `disconnected` error."""
        with self._lock:
            if kind == "live_opened":
                self._live.add(rid)
            elif kind in FINAL_TYPES and not (kind == "error" and rid in self._live):
                self._in_flight.discard(rid)
                self._live.discard(rid)

    def _write(self, ws: ClientConnection, outbox: queue.SimpleQueue[dict | None]) -> None:
        while True:
            msg = outbox.get()
            if msg is None:
                return
            try:
                ws.send(json.dumps(msg))
            except (ConnectionClosed, OSError):
                return

    def _lose_in_flight(self) -> None:
        with self._lock:
            outbox, self._outbox = self._outbox, None
            lost, self._in_flight = sorted(self._in_flight), set()
            self._live.clear()
        if outbox is not None:
            outbox.put(None)  # wakes this connection's writer so it ends
        for rid in lost:
            self._emit_error(rid, DISCONNECTED, "the connection to the bridge dropped before this request finished")

    # --- helpers -------------------------------------------------------------------------------

    def _not_connected_reason(self) -> str:
        detail = self.state.detail or self.state.status
        return f"not connected to the bridge ({detail})"

    def _emit_error(self, rid: str, code: str, message: str) -> None:
        self.events.put(Event("message", {"type": "error", "id": rid, "code": code, "message": message}))

    def _set_state(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self.state, k, v)
            snapshot = ConnectionState(**{k: getattr(self.state, k) for k in ConnectionState.__dataclass_fields__})
        self.events.put(Event("state", snapshot))


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is `ganbridge serve` running?)"
    if isinstance(e, TimeoutError):
        return "timed out"
    text = str(e) or type(e).__name__
    return text
