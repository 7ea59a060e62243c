"""The OSC door's mapping, sans I/O: OSC messages from a peer <-> BridgeCore requests and events.

In the manner of the websockets library's sans-I/O layer, nothing here opens a socket, runs an
event loop or starts a thread: bridge/doors/osc.py (the UDP transport) reads datagrams with
osc_wire, hands each message in, and sends whatever comes out. Every decision of the OSC door is
made here, with the codes and texts of docs/reference/protocol.md (the OSC address map):

- `receive(peer, address, args)` checks one message and runs it on the core (the same requests a
  WebSocket client makes); it returns the replies due at once (pong, welcome, reply_to, generator,
  playing, stopped, and any error about the message itself).
- Replies that come later go to the peer's `later` callback, from whichever thread: the core's
  events for its requests (`event_replies` maps them: accepted, progress, note and result, done,
  cancelled, ack, error; live/opened, live/frame, live/closed) and the end of a playback (played,
  stopped). A live frame's reply names a preview file and carries its bytes (`OscReply.file`):
  the transport writes the file before it sends the reply.
- `quick_reply` answers what needs no core call (a ping from an authorised peer), so the
  transport may answer it on its event loop; `bad_datagram` is the one error for a datagram that
  osc_wire refused.

A peer is one sending host. Its OscPeer holds its core client (and so whether it is authorised),
the reply port it chose with /ganbridge/reply_to, its defaults from /ganbridge/set and the
feedback requests still waiting for their ack. `receive` may block briefly (SQLite), so the
transport calls it off its event loop, one message at a time per peer.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbridge import __version__
from ganbridge.core.protocol import MAX_LIVE_VALUE, ErrorCode, ProtocolError, shorten
from ganbridge.core.service import BridgeCore, Client
from ganbridge.doors.osc_wire import OscFormatError

log = logging.getLogger("ganbridge.osc")

PREFIX = "/ganbridge/"
SERVER = f"ganbridge {__version__}"
# generate's keys that are request fields, not params (unless a generator has a param of that name)
CONTROL_KEYS: dict[str, type] = {"count": int, "seed": int, "session": str}
HANDLER = "_osc_"  # OscMapping's method for /ganbridge/<verb> is _osc_<verb>, a "/" in the verb as "__"


class OscArgError(ValueError):
    """An argument missing, of the wrong type or out of range: an `invalid_params` error."""


@dataclass(frozen=True)
class OscReply:
    """One OSC message for a peer, ready for osc_wire.encode_message(address, *args)."""

    address: str
    args: tuple[Any, ...] = ()
    file: tuple[Path, bytes] | None = None  # written (replaced whole) before the reply is sent
    remove: Path | None = None  # deleted before the reply is sent (a closed live session's preview)


Later = Callable[[OscReply], None]


def reply(verb: str, *args: Any) -> OscReply:
    return OscReply(PREFIX + verb, args)


def error_reply(job: str, code: str, message: str) -> OscReply:
    # Shortened here whatever made it, so no error reply outgrows a datagram.
    return reply("error", job, code, shorten(message))


@dataclass(eq=False)
class OscPeer:
    """What the mapping keeps about one sending host."""

    host: str
    client: Client
    later: Later  # where replies that come after `receive` has returned go
    reply_port: int | None = None  # from /ganbridge/reply_to; the transport uses the source port until then
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # generator -> key -> value
    # Its ratings' and requests' session unless a message names one: its own per host (so two
    # DAWs' likes do not mix), or what it chose with /ganbridge/session.
    session: str = ""
    feedback_items: dict[str, str] = field(default_factory=dict)  # feedback request id -> its item
    sliders: dict[str, list[float]] = field(default_factory=dict)  # live session -> its sliders' positions
    previews: dict[str, Path] = field(default_factory=dict)  # live session -> its preview file, once written

    @property
    def authorized(self) -> bool:
        return self.client.authorized


def _ignore(event: dict) -> None:
    """The emit of the placeholder client a peer holds until the core's client replaces it."""


class OscMapping:
    def __init__(self, core: BridgeCore, previews: Path | None = None) -> None:
        self.core = core
        self.previews = previews or Path(core.settings.output_dir) / "live"  # live frames' files
        self._ids = itertools.count(1)  # request ids, unique across this door's peers

    @classmethod
    def addresses(cls) -> frozenset[str]:
        """Every address this mapping handles (plugins/daw/osc_map.json lists the same)."""
        return frozenset(
            PREFIX + name[len(HANDLER) :].replace("__", "/") for name in dir(cls) if name.startswith(HANDLER)
        )

    # -- peers ------------------------------------------------------------------------------
    def connect(self, host: str, later: Later) -> OscPeer:
        peer = OscPeer(host=host, client=Client(emit=_ignore), later=later, session=f"osc:{host}")
        # connect() authorises the client unless the bridge has a token; then /ganbridge/hello does
        peer.client = self.core.connect(lambda event: self._deliver(peer, event), name=f"osc:{host}")
        peer.client.extensions = frozenset({"live"})  # live/... answers in OSC's own way
        return peer

    def disconnect(self, peer: OscPeer) -> list[Path]:
        """The peer is forgotten: its queued and running requests are cancelled and its live
        sessions closed. Returns its sessions' preview files, for the transport to delete."""
        self.core.disconnect(peer.client)
        previews, peer.previews = list(peer.previews.values()), {}
        return previews

    # -- messages in ------------------------------------------------------------------------
    def quick_reply(self, peer: OscPeer, address: str) -> OscReply | None:
        """The reply to a message that needs nothing of the core, or None if it does."""
        if address == PREFIX + "ping" and peer.authorized:
            return reply("pong", SERVER)
        return None

    @staticmethod
    def bad_datagram(error: OscFormatError) -> OscReply:
        return error_reply("", ErrorCode.BAD_MESSAGE.value, f"not a well-formed OSC datagram: {error}")

    def receive(self, peer: OscPeer, address: str, args: Sequence[Any]) -> list[OscReply]:
        """Handle one message; the replies due now. Nothing is raised: a fault is an error reply."""
        try:
            return self._dispatch(peer, address, args)
        except OscArgError as e:
            return [error_reply("", ErrorCode.INVALID_PARAMS.value, str(e))]
        except ProtocolError as e:
            return [error_reply("", str(e.code), e.message)]
        except Exception as e:  # one bad message never takes the door down
            log.exception("OSC %s failed", shorten(address, 100))
            return [error_reply("", ErrorCode.INTERNAL.value, f"internal error: {e}")]

    def _dispatch(self, peer: OscPeer, address: str, args: Sequence[Any]) -> list[OscReply]:
        log.debug("osc %s <- %s %s", peer.host, address, args)
        if not address.startswith(PREFIX):
            raise OscArgError(f"unknown address {address}; addresses start with {PREFIX}")
        verb = address[len(PREFIX) :]
        handler = None if "__" in verb else getattr(self, HANDLER + verb.replace("/", "__"), None)
        if handler is None:
            return [error_reply("", ErrorCode.UNKNOWN_TYPE.value, f"unknown address {address}")]
        if not peer.authorized and verb != "hello":
            text = "this bridge needs a token: send /ganbridge/hello s:token"
            return [error_reply("", ErrorCode.UNAUTHORIZED.value, text)]
        return handler(peer, args)

    def _new_id(self) -> str:
        return f"osc{next(self._ids)}"

    # -- one handler per address ------------------------------------------------------------
    def _osc_hello(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        token = _arg(args, 0, str, "token") if args else None
        # A wrong token comes back from the core as an `unauthorized` error event, through `later`.
        self.core.handle(peer.client, {"type": "hello", "id": "hello", "client": f"osc:{peer.host}", "token": token})
        return [reply("welcome", SERVER)] if peer.authorized else []

    def _osc_ping(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        return [reply("pong", SERVER)]

    def _osc_reply_to(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        port = _arg(args, 0, int, "port")
        if not 1 <= port <= 65535:
            raise OscArgError(f"reply_to: port {port} is out of range 1-65535")
        peer.reply_port = port  # before the echo, which already goes there
        return [reply("reply_to", port)]

    def _osc_session(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        if args:
            name = _arg(args, 0, str, "session")
            if not 1 <= len(name) <= 128:
                raise OscArgError("session: a name of 1-128 characters")
            peer.session = name
        return [reply("session", peer.session)]

    def _osc_generators(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        return [reply("generator", i["name"], i["kind"], i["description"]) for i in self.core.generator_infos()]

    def _osc_set(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
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
        peer.defaults.setdefault(generator, {})[key] = args[2]  # its value is checked at generate
        return []

    def _osc_generate(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        generator = _arg(args, 0, str, "generator")
        if len(args) % 2 != 1:
            raise OscArgError("generate takes s:generator followed by key/value pairs")
        values = dict(peer.defaults.get(generator, {}))
        for i in range(1, len(args), 2):
            values[_arg(args, i, str, "key")] = args[i + 1]
        msg: dict[str, Any] = {"type": "generate", "id": self._new_id(), "generator": generator}
        msg.update(self._split(generator, values))
        msg.setdefault("session", peer.session)
        self.core.handle(peer.client, msg)
        return []

    def _osc_feedback(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        item = _arg(args, 0, str, "item")
        rating = _arg(args, 1, float, "rating")
        if rating not in (-1.0, 0.0, 1.0):
            raise OscArgError(f"feedback: rating must be -1, 0 or 1, not {rating}")
        rid = self._new_id()
        session = _arg(args, 2, str, "session") if len(args) > 2 else ""
        msg: dict[str, Any] = {
            "type": "feedback",
            "id": rid,
            "item": item,
            "rating": int(rating),
            "session": session or peer.session,
        }
        # Kept before the request runs: its ack (which names the item, not the id) may come at once.
        peer.feedback_items[rid] = item
        self.core.handle(peer.client, msg)
        return []

    def _osc_steer(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        if len(args) > 4:
            raise OscArgError("steer takes s:generator [s:session [i:count [f:explore]]]")
        session = _arg(args, 1, str, "session") if len(args) > 1 else ""
        msg: dict[str, Any] = {
            "type": "steer",
            "id": self._new_id(),
            "generator": _arg(args, 0, str, "generator"),
            "session": session or peer.session,  # "" or none: this host's session
        }
        if len(args) > 2:
            msg["count"] = _arg(args, 2, int, "count")
        if len(args) > 3:
            msg["explore"] = _arg(args, 3, float, "explore")
        self.core.handle(peer.client, msg)
        return []

    def _osc_cancel(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        self.core.handle(peer.client, {"type": "cancel", "id": _arg(args, 0, str, "job")})
        return []

    def _osc_play(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        item = _arg(args, 0, str, "item")
        seconds = self.core.play_item(item, _playback_end(peer))
        return [reply("playing", item, float(seconds))]

    def _osc_stop(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        if self.core.stop_playback():
            return []  # the playback's end says /ganbridge/stopped
        return [reply("stopped", "")]  # nothing was playing; still answer

    # -- live sessions: faders in, frames out -------------------------------------------------
    def _osc_live__open(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        generator = _arg(args, 0, str, "generator")
        if len(args) % 2 != 1:
            raise OscArgError("live/open takes s:generator followed by key/value pairs")
        values = dict(peer.defaults.get(generator, {}))
        for i in range(1, len(args), 2):
            values[_arg(args, i, str, "key")] = args[i + 1]
        for key in ("count", "session"):  # a generate's defaults (from /ganbridge/set) that live/open has not
            values.pop(key, None)
        msg: dict[str, Any] = {"type": "live_open", "id": self._new_id()}
        for key in ("item", "toward"):  # the items a session starts from and blends toward
            if key in values:
                msg[key] = _coerce(key, values.pop(key), str)
        if "item" not in msg:
            msg["generator"] = generator
        msg.update(self._split(generator, values))
        self.core.handle(peer.client, msg)
        return []

    def _osc_live__move(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        live = _arg(args, 0, str, "live")
        values = [_arg(args, i, float, f"value {i}") for i in range(1, len(args))]
        kept = peer.sliders.get(live)
        # Kept (for live/slider) only for an open session and only what the core will take, so a
        # sender cannot grow this without bound nor leave a bad value in every later move.
        if kept is not None and len(values) <= len(kept) and all(_fits(v) for v in values):
            peer.sliders[live] = values + [0.0] * (len(kept) - len(values))
        self.core.handle(peer.client, {"type": "live_move", "id": live, "values": values})
        return []

    def _osc_live__slider(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        if len(args) != 3:
            raise OscArgError("live/slider takes s:live i:index f:value")
        live, index, value = _arg(args, 0, str, "live"), _arg(args, 1, int, "index"), _arg(args, 2, float, "value")
        if not 0 <= index < 64:
            raise OscArgError(f"live/slider: index {index} is out of range 0-63")
        kept = peer.sliders.get(live)
        if kept is None:
            raise ProtocolError(ErrorCode.UNKNOWN_REQUEST, f"no live session with id {live!r} is open")
        if index >= len(kept):
            raise OscArgError(f"live/slider: session {live} has {len(kept)} sliders (indexes 0-{len(kept) - 1})")
        if not _fits(value):
            raise OscArgError(f"live/slider: {value} is outside -{MAX_LIVE_VALUE:g} to {MAX_LIVE_VALUE:g}")
        kept[index] = value
        self.core.handle(peer.client, {"type": "live_move", "id": live, "values": list(kept)})
        return []

    def _osc_live__blend(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        live, blend = _arg(args, 0, str, "live"), _arg(args, 1, float, "blend")
        self.core.handle(peer.client, {"type": "live_move", "id": live, "blend": blend})
        return []

    def _osc_live__commit(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        msg = {"type": "live_commit", "id": self._new_id(), "live": _arg(args, 0, str, "live"), "session": peer.session}
        self.core.handle(peer.client, msg)
        return []

    def _osc_live__close(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        self.core.handle(peer.client, {"type": "live_close", "id": _arg(args, 0, str, "live")})
        return []

    def _osc_live__loop(self, peer: OscPeer, args: Sequence[Any]) -> list[OscReply]:
        live = _arg(args, 0, str, "live")
        seconds = self.core.loop_live(peer.client, live, _playback_end(peer))
        return [reply("live/looping", live, float(seconds))]

    def _live_replies(self, peer: OscPeer, event: dict) -> list[OscReply]:
        kind, live = event["type"], event["id"]
        if kind == "live_opened":
            directions = event["directions"]
            peer.sliders[live] = [0.0] * len(directions)
            return [
                reply("live/opened", live, len(directions)),
                *(reply("live/direction", live, i, d["name"], float(d["change"])) for i, d in enumerate(directions)),
            ]
        if kind == "live_closed":
            peer.sliders.pop(live, None)
            return [OscReply(PREFIX + "live/closed", (live,), remove=peer.previews.pop(live, None))]
        notes = [
            reply("live/note", live, event["seq"], track, pitch, velocity, float(start), float(length))
            for track, pitch, velocity, start, length in event.get("notes", [])
        ]
        path = peer.previews[live] = self.previews / f"{_safe(peer.host)}-{live}.{event['format']}"
        frame = OscReply(
            PREFIX + "live/frame", (live, event["seq"], str(path), float(event["render_ms"])), (path, event["data"])
        )
        return [*notes, frame]

    def _split(self, generator: str, values: dict[str, Any]) -> dict[str, Any]:
        """key/value pairs -> top-level fields (count, seed, session) and params, coerced by schema."""
        gen = self.core.generators.get(generator)
        props = gen.params_model.model_json_schema().get("properties", {}) if gen else {}
        out: dict[str, Any] = {"params": {}}
        for key, value in values.items():
            if key in CONTROL_KEYS and key not in props:
                out[key] = _coerce(key, value, CONTROL_KEYS[key])
            elif props.get(key, {}).get("type") == "array" and isinstance(value, str):
                out["params"][key] = [v for v in value.split(",") if v]  # OSC has no lists
            else:
                out["params"][key] = value
        return out

    # -- core events out ----------------------------------------------------------------------
    def _deliver(self, peer: OscPeer, event: dict) -> None:
        for message in self.event_replies(peer, event):
            peer.later(message)

    def event_replies(self, peer: OscPeer, event: dict) -> list[OscReply]:
        """The OSC replies to one core event for this peer (none for those OSC does not show)."""
        kind, rid = event.get("type"), event.get("id") or ""
        if kind in ("accepted", "done", "cancelled"):
            return [reply(kind, rid)]
        if kind == "progress":
            return [reply("progress", rid, event["done"], event["total"])]
        if kind == "result":
            return [message for item in event["items"] for message in _item_replies(rid, item)]
        if kind == "ack":
            return [reply("ack", peer.feedback_items.pop(rid, rid))]  # OSC acks name the item
        if kind == "error":
            peer.feedback_items.pop(rid, None)
            return [error_reply(rid, event["code"], event["message"])]
        if kind in ("live_opened", "live_frame", "live_closed"):
            return self._live_replies(peer, event)
        return []  # welcome: _osc_hello answers it; OSC never asks for the others


def _item_replies(job: str, item: dict) -> list[OscReply]:
    """A music item's notes (in start order), then the item itself."""
    notes = [
        reply("note", job, track, pitch, velocity, float(start), float(length))
        for track, pitch, velocity, start, length in item.get("notes", [])
    ]
    return [*notes, reply("result", job, item["item"], item["file"])]


def _fits(value: float) -> bool:
    """A slider position the bridge takes (NaN is outside every range)."""
    return -MAX_LIVE_VALUE <= value <= MAX_LIVE_VALUE


def _playback_end(peer: OscPeer) -> Callable[[str, bool], None]:
    """What a playback's end tells its peer (on the player's thread): played, or stopped."""

    def ended(played: str, stopped: bool) -> None:
        peer.later(reply("stopped" if stopped else "played", played))

    return ended


def _safe(host: str) -> str:
    """A host address as part of a file name (an IPv6 address has colons)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", host)


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise OscArgError(f"{name} must be {'a string' if kind is str else 'a number'}, not {value!r}")
    return value


def _arg(args: Sequence[Any], index: int, kind: type, name: str) -> Any:
    if index >= len(args):
        raise OscArgError(f"missing argument {index + 1} ({name})")
    return _coerce(name, args[index], kind)
