"""The OSC door (UDP): DESIGN.md §3 on top of BridgeCore.

Each sending host is one core client. Replies go to the sender's address, or to the port
it chose with /ganbridge/reply_to (senders such as liblo's oscsend use a new source port per
message). Datagrams are read by bridge/osc_wire.py, which checks each one whole before any
of it runs: a datagram with any fault gets one /ganbridge/error and nothing of it is done.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ganbridge import __version__
from ganbridge.core.protocol import ErrorCode, ProtocolError, shorten
from ganbridge.core.service import BridgeCore, Client
from ganbridge.doors.osc_wire import OscFormatError, encode_message, parse_datagram

log = logging.getLogger("ganbridge.osc")

PREFIX = "/ganbridge/"
RECEIVE_BUFFER = 4 << 20  # bursts from a control surface must not overflow the default 212 KB
CONTROL_KEYS = {"count": int, "seed": int, "session": str}
MAX_PEERS = 256


class OscArgError(ValueError):
    pass


@dataclass(eq=False)
class OscPeer:
    host: str
    client: Client
    last_port: int
    reply_port: int | None = None
    seen: float = 0.0  # when it last sent something
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # generator -> key -> value
    feedback_items: dict[str, str] = field(default_factory=dict)  # request id -> item
    waiting: int = 0  # its messages handed to the OSC thread and not yet handled (loop thread only)

    @property
    def reply_address(self) -> tuple[str, int]:
        return (self.host, self.reply_port or self.last_port)


class OscDoor(asyncio.DatagramProtocol):
    def __init__(self, core: BridgeCore, host: str, port: int):
        self.core = core
        self.host = host
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: dict[str, OscPeer] = {}
        self._ids = itertools.count(1)
        # One thread keeps each peer's messages in order without blocking the event loop.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osc")
        # The door's own event loop, in its own thread: datagrams are read and pings answered
        # there, so a busy WebSocket door (whose loop is the caller's) does not delay them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((self.host, self.port))  # here, so a port in use fails `start` itself
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="osc-door", daemon=True)
        self._thread.start()
        endpoint = self._loop.create_datagram_endpoint(lambda: self, sock=sock)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(endpoint, self._loop))

    async def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_transport(), loop))
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join, 10)
            if not thread.is_alive():
                loop.close()
        for peer in list(self.peers.values()):
            self.core.disconnect(peer.client)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()
            await asyncio.sleep(0)  # connection_lost runs next and closes the socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    # -- sending ---------------------------------------------------------------------------
    def _send(self, peer: OscPeer, address: str, *args: Any) -> None:
        data = encode_message(address, *args)
        if self._loop is None or self.transport is None:
            return
        try:
            self._loop.call_soon_threadsafe(self.transport.sendto, data, peer.reply_address)
        except RuntimeError:
            log.debug("dropping an OSC reply: the event loop has shut down")

    def _emit_for(self, peer: OscPeer):  # core event (dict) -> OSC replies
        def emit(msg: dict) -> None:
            kind, rid = msg.get("type"), msg.get("id") or ""
            if kind == "accepted":
                self._send(peer, PREFIX + "accepted", rid)
            elif kind == "progress":
                self._send(peer, PREFIX + "progress", rid, msg["done"], msg["total"])
            elif kind == "result":
                for item in msg["items"]:
                    for track, pitch, velocity, start, length in item.get("notes", []):
                        self._send(peer, PREFIX + "note", rid, track, pitch, velocity, float(start), float(length))
                    self._send(peer, PREFIX + "result", rid, item["item"], item["file"])
            elif kind == "done":
                self._send(peer, PREFIX + "done", rid)
            elif kind == "cancelled":
                self._send(peer, PREFIX + "cancelled", rid)
            elif kind == "ack":
                self._send(peer, PREFIX + "ack", peer.feedback_items.pop(rid, rid))
            elif kind == "welcome":
                pass  # OSC peers get /ganbridge/welcome from _osc_hello
            elif kind == "error":
                peer.feedback_items.pop(rid, None)
                self._error(peer, rid, msg["code"], msg["message"])

        return emit

    def _error(self, peer: OscPeer, job: str, code: str, message: str) -> None:
        self._send(peer, PREFIX + "error", job, code, shorten(message))

    def _peer(self, addr: tuple) -> OscPeer:
        host, port = addr[0], addr[1]
        peer = self.peers.get(host)
        if peer is None:
            if len(self.peers) >= MAX_PEERS:  # forget the longest-idle host
                idle = min(self.peers.values(), key=lambda p: p.seen)
                self.core.disconnect(idle.client)
                del self.peers[idle.host]
            peer = OscPeer(host=host, client=Client(emit=lambda m: None), last_port=port)
            # connect() authorizes the client unless the bridge has a token; then /ganbridge/hello does
            peer.client = self.core.connect(self._emit_for(peer), name=f"osc:{host}")
            self.peers[host] = peer
        peer.last_port = port
        peer.seen = time.monotonic()
        return peer

    # -- receiving -------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple) -> None:
        peer = self._peer(addr)
        try:
            messages = parse_datagram(data)
        except OscFormatError as e:
            # In turn, like any message: a reply_to sent just before must take effect first.
            self._in_turn(peer, self._error, peer, "", "bad_message", f"not a well-formed OSC datagram: {e}")
            return
        for message in messages:
            if message.address == PREFIX + "ping" and peer.waiting == 0 and peer.client.authorized:
                # Answered here on the loop, with no thread hop: a liveness check stays fast while
                # other clients load the bridge. Only when nothing of this peer's is waiting, so
                # its replies keep the order of its messages.
                if self.transport is not None:
                    self.transport.sendto(
                        encode_message(PREFIX + "pong", f"ganbridge {__version__}"), peer.reply_address
                    )
                continue
            self._in_turn(peer, self._handle_safely, peer, message.address, list(message.args))

    def _in_turn(self, peer: OscPeer, work: Any, *args: Any) -> None:
        """Run `work` on the OSC thread after everything this peer sent before (loop thread)."""
        peer.waiting += 1
        self._pool.submit(self._run_in_turn, peer, work, *args)

    def _run_in_turn(self, peer: OscPeer, work: Any, *args: Any) -> None:
        try:
            work(*args)
        finally:
            if self._loop is not None:  # after this message's replies, which are queued on the loop first
                try:
                    self._loop.call_soon_threadsafe(self._handled, peer)
                except RuntimeError:
                    pass  # the loop has shut down

    @staticmethod
    def _handled(peer: OscPeer) -> None:
        peer.waiting -= 1

    def _handle_safely(self, peer: OscPeer, address: str, args: list[Any]) -> None:
        try:
            self._handle(peer, address, args)
        except OscArgError as e:
            self._error(peer, "", "invalid_params", str(e))
        except ProtocolError as e:
            self._error(peer, "", str(e.code), e.message)
        except Exception as e:
            log.exception("OSC %s failed", shorten(address, 100))
            self._error(peer, "", "internal", f"internal error: {e}")

    def _handle(self, peer: OscPeer, address: str, args: list[Any]) -> None:
        log.debug("osc %s <- %s %s", peer.host, address, args)
        if not address.startswith(PREFIX):
            raise OscArgError(f"unknown address {address}; addresses start with {PREFIX}")
        verb = address[len(PREFIX) :]
        handler = getattr(self, f"_osc_{verb}", None)
        if handler is None:
            self._error(peer, "", "unknown_type", f"unknown address {address}")
            return
        if not peer.client.authorized and verb != "hello":
            self._error(peer, "", "unauthorized", "this bridge needs a token: send /ganbridge/hello s:token")
            return
        handler(peer, args)

    def _new_id(self) -> str:
        return f"osc{next(self._ids)}"

    def _osc_hello(self, peer: OscPeer, args: list[Any]) -> None:
        token = _arg(args, 0, str, "token") if args else None
        self.core.handle(peer.client, {"type": "hello", "id": "hello", "client": f"osc:{peer.host}", "token": token})
        if peer.client.authorized:
            self._send(peer, PREFIX + "welcome", f"ganbridge {__version__}")

    def _osc_ping(self, peer: OscPeer, args: list[Any]) -> None:
        self._send(peer, PREFIX + "pong", f"ganbridge {__version__}")

    def _osc_reply_to(self, peer: OscPeer, args: list[Any]) -> None:
        port = _arg(args, 0, int, "port")
        if not 1 <= port <= 65535:
            raise OscArgError(f"reply_to: port {port} is out of range 1-65535")
        peer.reply_port = port
        self._send(peer, PREFIX + "reply_to", port)

    def _osc_generators(self, peer: OscPeer, args: list[Any]) -> None:
        for info in self.core.generator_infos():
            self._send(peer, PREFIX + "generator", info["name"], info["kind"], info["description"])

    def _osc_set(self, peer: OscPeer, args: list[Any]) -> None:
        generator = _arg(args, 0, str, "generator")
        key = _arg(args, 1, str, "key")
        if len(args) != 3:
            raise OscArgError("set takes s:generator s:key value")
        # Only known generators and keys are kept: a sender must not grow a peer's defaults
        # without bound, and a knob mapped to a misspelt key should hear so now, not at generate.
        gen = self.core.generators.get(generator)
        if gen is None:
            known = ", ".join(self.core.generators) or "none installed"
            raise ProtocolError(ErrorCode.UNKNOWN_GENERATOR, f"set: no generator named {generator!r} (known: {known})")
        keys = [*gen.params_model.model_fields, *CONTROL_KEYS]
        if key not in keys:
            raise OscArgError(f"set: {generator} has no key {key!r}; known: {', '.join(keys)}")
        peer.defaults.setdefault(generator, {})[key] = args[2]

    def _osc_generate(self, peer: OscPeer, args: list[Any]) -> None:
        generator = _arg(args, 0, str, "generator")
        if len(args) % 2 != 1:
            raise OscArgError("generate takes s:generator followed by key/value pairs")
        values = dict(peer.defaults.get(generator, {}))
        for i in range(1, len(args), 2):
            values[_arg(args, i, str, "key")] = args[i + 1]
        msg: dict[str, Any] = {"type": "generate", "id": self._new_id(), "generator": generator}
        msg.update(self._split(generator, values))
        self.core.handle(peer.client, msg)

    def _osc_feedback(self, peer: OscPeer, args: list[Any]) -> None:
        item = _arg(args, 0, str, "item")
        rating = _arg(args, 1, float, "rating")
        if rating not in (-1.0, 0.0, 1.0):
            raise OscArgError(f"feedback: rating must be -1, 0 or 1, not {rating}")
        rid = self._new_id()
        peer.feedback_items[rid] = item
        msg = {"type": "feedback", "id": rid, "item": item, "rating": int(rating)}
        if len(args) > 2:
            msg["session"] = _arg(args, 2, str, "session")
        self.core.handle(peer.client, msg)

    def _osc_steer(self, peer: OscPeer, args: list[Any]) -> None:
        msg: dict[str, Any] = {
            "type": "steer",
            "id": self._new_id(),
            "generator": _arg(args, 0, str, "generator"),
            "session": _arg(args, 1, str, "session"),
        }
        if len(args) > 2:
            msg["count"] = _arg(args, 2, int, "count")
        self.core.handle(peer.client, msg)

    def _osc_cancel(self, peer: OscPeer, args: list[Any]) -> None:
        self.core.handle(peer.client, {"type": "cancel", "id": _arg(args, 0, str, "job")})

    def _osc_play(self, peer: OscPeer, args: list[Any]) -> None:
        item = _arg(args, 0, str, "item")

        def ended(played: str, stopped: bool) -> None:
            self._send(peer, PREFIX + "stopped" if stopped else PREFIX + "played", played)

        seconds = self.core.play_item(item, ended)
        self._send(peer, PREFIX + "playing", item, float(seconds))

    def _osc_stop(self, peer: OscPeer, args: list[Any]) -> None:
        if not self.core.stop_playback():
            self._send(peer, PREFIX + "stopped", "")  # nothing was playing; still answer

    def _split(self, generator: str, values: dict[str, Any]) -> dict[str, Any]:
        """key/value pairs -> top-level fields (count, seed, session) and params, coerced by schema."""
        gen = self.core.generators.get(generator)
        props = gen.params_model.model_json_schema().get("properties", {}) if gen else {}
        out: dict[str, Any] = {"params": {}}
        for key, value in values.items():
            if key in CONTROL_KEYS and key not in props:
                out[key] = _coerce(key, value, CONTROL_KEYS[key])
            elif props.get(key, {}).get("type") == "array" and isinstance(value, str):
                out["params"][key] = [v for v in value.split(",") if v]
            else:
                out["params"][key] = value
        return out


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise OscArgError(f"{name} must be {'a string' if kind is str else 'a number'}, not {value!r}")
    return value


def _arg(args: list[Any], index: int, kind: type, name: str) -> Any:
    if index >= len(args):
        raise OscArgError(f"missing argument {index + 1} ({name})")
    return _coerce(name, args[index], kind)
