"""The OSC door's sans-I/O mapping against a real BridgeCore, without sockets.

Messages go in as (address, args), as osc_wire parses them; replies come out of `receive` (those
due at once) or through the peer's `later` callback (the core's events, from its worker threads).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ganbridge.core.service import BridgeCore
from ganbridge.doors.osc_mapping import PREFIX, SERVER, OscMapping, OscPeer, OscReply
from ganbridge.doors.osc_wire import OscFormatError, encode_message, parse_datagram
from ganbridge.server import build_core
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
FINALS = ("done", "cancelled", "error")


class Inbox:
    """A peer's `later` callback: what the mapping sent after `receive` returned, from any thread."""

    def __init__(self) -> None:
        self.replies: list[OscReply] = []
        self._changed = threading.Condition()

    def __call__(self, reply: OscReply) -> None:
        with self._changed:
            self.replies.append(reply)
            self._changed.notify_all()

    def wait_for(self, *verbs: str, timeout: float = 120.0) -> list[OscReply]:
        """Everything so far, once a reply with one of these verbs has come."""
        wanted = {PREFIX + v for v in verbs}
        with self._changed:
            came = self._changed.wait_for(lambda: any(r.address in wanted for r in self.replies), timeout)
            assert came, f"none of {verbs} came; got {self.replies}"
            return list(self.replies)


def verbs(replies: list[OscReply]) -> list[str]:
    return [r.address.removeprefix(PREFIX) for r in replies]


def error(job: str, code: str, message: str) -> OscReply:
    return OscReply(PREFIX + "error", (job, code, message))


@pytest.fixture
def mapping(shared_core: BridgeCore) -> OscMapping:
    return OscMapping(shared_core)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def peer(mapping: OscMapping, inbox: Inbox) -> Iterator[OscPeer]:
    p = mapping.connect("127.0.0.1", inbox)
    yield p
    mapping.disconnect(p)  # cancels whatever a test left running


def run(mapping: OscMapping, peer: OscPeer, inbox: Inbox, verb: str, *args: object) -> list[OscReply]:
    """Send a request that answers through the core's events; its replies up to its final one."""
    assert mapping.receive(peer, PREFIX + verb, args) == []
    return inbox.wait_for(*FINALS, "ack")


def generate_texture(mapping: OscMapping, peer: OscPeer, inbox: Inbox, *pairs: object) -> str:
    replies = run(mapping, peer, inbox, "generate", "texture", "width", 32, "height", 32, *pairs)
    assert verbs(replies)[-1] == "done", replies
    return next(r.args[1] for r in replies if r.address == PREFIX + "result")


# --- hello and tokens --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_core(tmp_path_factory) -> Iterator[BridgeCore]:
    core = build_core(make_settings(tmp_path_factory.mktemp("token"), token="s3cret"))
    yield core
    core.scheduler.stop()
    core.store.close()


def test_hello_without_a_token_on_an_open_bridge_is_welcome(mapping, peer):
    assert peer.authorized  # an open bridge needs no hello at all
    assert mapping.receive(peer, PREFIX + "hello", ()) == [OscReply(PREFIX + "welcome", (SERVER,))]


def test_a_token_bridge_refuses_everything_but_hello_until_the_token_comes(token_core):
    mapping, inbox = OscMapping(token_core), Inbox()
    peer = mapping.connect("10.0.0.7", inbox)
    refused = [error("", "unauthorized", "this bridge needs a token: send /ganbridge/hello s:token")]
    assert not peer.authorized
    assert mapping.quick_reply(peer, PREFIX + "ping") is None  # not answered on the transport's loop
    assert mapping.receive(peer, PREFIX + "ping", ()) == refused
    assert mapping.receive(peer, PREFIX + "generate", ("texture",)) == refused
    # an address that does not exist is said so before the token is asked for
    assert verbs(mapping.receive(peer, PREFIX + "teleport", ())) == ["error"]
    assert mapping.receive(peer, PREFIX + "hello", (5,)) == [
        error("", "invalid_params", "token must be a string, not 5")
    ]
    assert mapping.receive(peer, PREFIX + "hello", ("guess",)) == []
    assert inbox.wait_for("error")[-1] == error("hello", "unauthorized", "wrong or missing token")
    assert mapping.receive(peer, PREFIX + "hello", ("s3cret",)) == [OscReply(PREFIX + "welcome", (SERVER,))]
    assert peer.authorized
    assert mapping.quick_reply(peer, PREFIX + "ping") == OscReply(PREFIX + "pong", (SERVER,))
    mapping.receive(peer, PREFIX + "hello", ())  # a wrong hello later takes the authorisation back
    assert not peer.authorized and mapping.receive(peer, PREFIX + "ping", ()) == refused
    mapping.disconnect(peer)


# --- ping, reply_to, generators, unknown addresses, bad datagrams ----------------------------------


def test_ping_is_answered_inline_and_in_turn(mapping, peer):
    pong = OscReply(PREFIX + "pong", (SERVER,))
    assert mapping.quick_reply(peer, PREFIX + "ping") == pong
    assert mapping.receive(peer, PREFIX + "ping", ()) == [pong]
    assert mapping.quick_reply(peer, PREFIX + "generators") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "missing argument 1 (port)"),
        (("x",), "port must be a number, not 'x'"),
        ((True,), "port must be a number, not True"),
        ((0,), "reply_to: port 0 is out of range 1-65535"),
        ((65536,), "reply_to: port 65536 is out of range 1-65535"),
        ((9000.5,), "port must be a number, not 9000.5"),
    ],
)
def test_reply_to_refuses_bad_ports_and_keeps_the_old_one(mapping, peer, args, message):
    assert mapping.receive(peer, PREFIX + "reply_to", args) == [error("", "invalid_params", message)]
    assert peer.reply_port is None


def test_reply_to_sets_the_port_and_echoes_it(mapping, peer):
    assert mapping.receive(peer, PREFIX + "reply_to", (9001,)) == [OscReply(PREFIX + "reply_to", (9001,))]
    assert peer.reply_port == 9001
    mapping.receive(peer, PREFIX + "reply_to", (9002.0,))  # a whole float is a port too
    assert peer.reply_port == 9002


def test_generators_one_reply_each(mapping, peer, shared_core):
    replies = mapping.receive(peer, PREFIX + "generators", ())
    assert replies == [
        OscReply(PREFIX + "generator", (i["name"], i["kind"], i["description"])) for i in shared_core.generator_infos()
    ]
    assert {r.args[0] for r in replies} == {"texture", "image", "music"}


def test_unknown_addresses(mapping, peer):
    assert mapping.receive(peer, PREFIX + "teleport", ()) == [
        error("", "unknown_type", "unknown address /ganbridge/teleport")
    ]
    assert mapping.receive(peer, "/elsewhere/ping", ()) == [
        error("", "invalid_params", "unknown address /elsewhere/ping; addresses start with /ganbridge/")
    ]


def test_error_texts_are_shortened(mapping, peer):
    address = PREFIX + "x" * 2000
    (reply,) = mapping.receive(peer, address, ())
    text = f"unknown address {address}"
    assert reply == error("", "unknown_type", f"{text[:500]}... ({len(text) - 500} more characters)")


def test_a_failing_handler_is_an_internal_error_not_an_exception(mapping, peer, shared_core, monkeypatch):
    def broken() -> list:
        raise RuntimeError("the registry fell over")

    monkeypatch.setattr(shared_core, "generator_infos", broken)
    assert mapping.receive(peer, PREFIX + "generators", ()) == [
        error("", "internal", "internal error: the registry fell over")
    ]


def test_a_bad_datagram_is_one_bad_message_error():
    with pytest.raises(OscFormatError) as refused:
        parse_datagram(b"/ganbridge/ping\x00,x\x00\x00")
    assert OscMapping.bad_datagram(refused.value) == error(
        "", "bad_message", f"not a well-formed OSC datagram: {refused.value}"
    )


# --- set and generate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("nope", "width", 64), "unknown_generator", "set: no generator named 'nope' (known: texture, image, music)"),
        (
            ("texture", "widht", 64),
            "invalid_params",
            "set: texture has no key 'widht'; known: model, width, height, seed, tileable, temperature, maps, "
            "normal_strength, scale, tint, count, seed, session",
        ),
        (("texture", "width"), "invalid_params", "set takes s:generator s:key value"),
        (("texture", "width", 64, 1), "invalid_params", "set takes s:generator s:key value"),
        (("texture", 7, 64), "invalid_params", "key must be a string, not 7"),
        ((), "invalid_params", "missing argument 1 (generator)"),
    ],
)
def test_set_refuses_what_it_cannot_keep(mapping, peer, args, code, message):
    assert mapping.receive(peer, PREFIX + "set", args) == [error("", code, message)]
    assert peer.defaults == {}


def test_set_keeps_defaults_and_generate_merges_them(mapping, peer, inbox, shared_core):
    assert mapping.receive(peer, PREFIX + "set", ("texture", "height", 64)) == []
    assert mapping.receive(peer, PREFIX + "set", ("texture", "session", "knobs")) == []  # a request field
    assert peer.defaults == {"texture": {"height": 64, "session": "knobs"}}
    replies = run(mapping, peer, inbox, "generate", "texture", "width", 96, "seed", 11, "maps", "height,normal")
    assert verbs(replies) == ["accepted", "progress", "result", "done"]
    assert {r.args[0] for r in replies} == {"osc1"}
    assert replies[1].args == ("osc1", 1, 1)
    _, item, path = replies[2].args
    assert path.endswith(".png") and Path(path).is_file()
    rec = shared_core.store.get(item)
    assert (rec.params["width"], rec.params["height"], rec.seed, rec.session) == (96, 64, 11, "knobs")
    assert rec.params["maps"] == ["height", "normal"]  # a list param from a comma-separated string


def test_a_pair_in_generate_wins_over_the_default(mapping, peer, inbox, shared_core):
    mapping.receive(peer, PREFIX + "set", ("texture", "width", 64))
    item = generate_texture(mapping, peer, inbox, "seed", 5)  # its own width 32 comes after the default
    assert shared_core.store.get(item).params["width"] == 32


def test_a_bad_default_is_refused_at_generate(mapping, peer, inbox):
    assert mapping.receive(peer, PREFIX + "set", ("texture", "width", "wide")) == []
    replies = run(mapping, peer, inbox, "generate", "texture")
    assert verbs(replies) == ["error"] and replies[0].args[:2] == ("osc1", "invalid_params")
    assert "params.width" in replies[0].args[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "missing argument 1 (generator)"),
        ((5,), "generator must be a string, not 5"),
        (("texture", "width"), "generate takes s:generator followed by key/value pairs"),
        (("texture", 3, 4), "key must be a string, not 3"),
        (("texture", "count", "x"), "count must be a number, not 'x'"),
        (("texture", "count", True), "count must be a number, not True"),
        (("texture", "session", 4), "session must be a string, not 4"),
    ],
)
def test_generate_refuses_bad_arguments_before_the_core(mapping, peer, inbox, args, message):
    assert mapping.receive(peer, PREFIX + "generate", args) == [error("", "invalid_params", message)]
    assert inbox.replies == []  # nothing reached the core


def test_generate_of_an_unknown_generator_is_the_cores_error(mapping, peer, inbox):
    replies = run(mapping, peer, inbox, "generate", "nope")
    assert replies == [error("osc1", "unknown_generator", "no generator named 'nope' (known: texture, image, music)")]


def test_generate_with_count_from_a_float(mapping, peer, inbox):
    replies = run(mapping, peer, inbox, "generate", "texture", "width", 32, "height", 32, "count", 2.0)
    assert verbs(replies).count("result") == 2 and verbs(replies)[-1] == "done"


# --- feedback, steer, cancel ---------------------------------------------------------------------


def test_feedback_is_acked_with_the_item_once_stored(mapping, peer, inbox, shared_core):
    item = generate_texture(mapping, peer, inbox)
    inbox.replies.clear()
    assert run(mapping, peer, inbox, "feedback", item, 1.0) == [OscReply(PREFIX + "ack", (item,))]
    assert shared_core.store.latest_rating(item) == 1
    inbox.replies.clear()
    assert run(mapping, peer, inbox, "feedback", item, -1, "osc-session") == [OscReply(PREFIX + "ack", (item,))]
    assert shared_core.store.latest_rating(item) == -1
    assert peer.feedback_items == {}  # each ack took its entry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("item",), "missing argument 2 (rating)"),
        ((), "missing argument 1 (item)"),
        (("item", "up"), "rating must be a number, not 'up'"),
        (("item", True), "rating must be a number, not True"),
        (("item", 0.5), "feedback: rating must be -1, 0 or 1, not 0.5"),
        ((3, 1.0), "item must be a string, not 3"),
        (("item", 1.0, 2), "session must be a string, not 2"),
    ],
)
def test_feedback_refuses_truncated_or_wrongly_typed_arguments(mapping, peer, inbox, args, message):
    assert mapping.receive(peer, PREFIX + "feedback", args) == [error("", "invalid_params", message)]
    assert inbox.replies == [] and peer.feedback_items == {}


def test_feedback_of_an_unknown_item_is_an_error_for_its_request(mapping, peer, inbox):
    replies = run(mapping, peer, inbox, "feedback", "no-such-item", 1.0)
    assert replies == [error("osc1", "unknown_item", "no item with id 'no-such-item'")]
    assert peer.feedback_items == {}


def test_steer_draws_count_items(mapping, peer, inbox):
    replies = run(mapping, peer, inbox, "steer", "texture", "mapping-session", 2)
    assert verbs(replies)[0] == "accepted" and verbs(replies)[-1] == "done"
    assert verbs(replies).count("result") == 2


def test_each_host_has_its_own_session_until_it_names_one(mapping, peer, inbox, shared_core):
    other = mapping.connect("127.0.0.2", Inbox())
    try:
        assert peer.session == "osc:127.0.0.1" and other.session == "osc:127.0.0.2"
        item = generate_texture(mapping, peer, inbox)
        assert shared_core.store.get(item).session == "osc:127.0.0.1"
        inbox.replies.clear()
        run(mapping, peer, inbox, "feedback", item, 1.0)
        assert shared_core.store.ratings(item) == {"osc:127.0.0.1": 1}  # not one `default` for every DAW
        assert mapping.receive(peer, PREFIX + "session", ()) == [OscReply(PREFIX + "session", ("osc:127.0.0.1",))]
        assert mapping.receive(peer, PREFIX + "session", ("live-set",)) == [OscReply(PREFIX + "session", ("live-set",))]
        inbox.replies.clear()
        run(mapping, peer, inbox, "feedback", item, -1.0)
        assert shared_core.store.ratings(item) == {"osc:127.0.0.1": 1, "live-set": -1}
        assert mapping.receive(peer, PREFIX + "session", ("",)) == [
            error("", "invalid_params", "session: a name of 1-128 characters")
        ]
    finally:
        mapping.disconnect(other)


def test_steer_uses_the_hosts_session_and_takes_explore(mapping, peer, inbox, shared_core):
    replies = run(mapping, peer, inbox, "generate", "texture", "width", 32, "height", 32, "count", 4)
    items = [r.args[1] for r in replies if r.address == PREFIX + "result"]
    for item, rating in zip(items, (1, 0, 0, -1)):
        inbox.replies.clear()
        run(mapping, peer, inbox, "feedback", item, float(rating))
    inbox.replies.clear()
    replies = run(mapping, peer, inbox, "steer", "texture", "", 3, 0.0)  # "": this host's session
    new = [r.args[1] for r in replies if r.address == PREFIX + "result"]
    assert len(new) == 3 and verbs(replies)[-1] == "done"
    records = [shared_core.store.get(i) for i in new]
    assert all(r.origin == "steer" and r.how == "near" and r.parents == [items[0]] for r in records)
    assert all(r.session == "osc:127.0.0.1" for r in records)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "missing argument 1 (generator)"),
        (("texture", "s", "two"), "count must be a number, not 'two'"),
        (("texture", "s", 2, "far"), "explore must be a number, not 'far'"),
        (("texture", "s", 2, 0.5, 1), "steer takes s:generator [s:session [i:count [f:explore]]]"),
        ((1, "s"), "generator must be a string, not 1"),
    ],
)
def test_steer_refuses_bad_arguments(mapping, peer, args, message):
    assert mapping.receive(peer, PREFIX + "steer", args) == [error("", "invalid_params", message)]


def test_cancel_stops_a_running_job(mapping, peer, inbox):
    pairs = ("width", 512, "height", 512, "count", 16)
    assert mapping.receive(peer, PREFIX + "generate", ("texture", *pairs)) == []
    job = inbox.wait_for("accepted")[0].args[0]
    assert mapping.receive(peer, PREFIX + "cancel", (job,)) == []
    replies = inbox.wait_for("cancelled", "done")
    assert verbs(replies)[-1] == "cancelled" and replies[-1].args == (job,)


def test_cancel_of_an_unknown_job_and_bad_arguments(mapping, peer, inbox):
    assert run(mapping, peer, inbox, "cancel", "osc999") == [
        error("osc999", "unknown_request", "no queued or running request with id 'osc999'")
    ]
    assert mapping.receive(peer, PREFIX + "cancel", ()) == [error("", "invalid_params", "missing argument 1 (job)")]


# --- play and stop -----------------------------------------------------------------------------------


class StubPlayer:
    """Stands in for the virtual MIDI port (the test bridge opens none): takes the MIDI file and
    ends the playback when the test says, as MidiPlayer does from its thread."""

    def __init__(self) -> None:
        self.midi: list[bytes] = []
        self.on_end = None

    def play(self, midi: bytes, item: str, on_end) -> float:
        self.midi.append(midi)
        self.on_end = lambda stopped: on_end(item, stopped)
        return 2.5

    def end(self, stopped: bool) -> bool:
        on_end, self.on_end = self.on_end, None
        if on_end is None:
            return False
        on_end(stopped)
        return True

    def stop(self) -> bool:
        return self.end(stopped=True)


@pytest.fixture(scope="module")
def music_item(shared_core: BridgeCore) -> str:
    mapping, inbox = OscMapping(shared_core), Inbox()
    peer = mapping.connect("127.0.0.3", inbox)
    replies = run(mapping, peer, inbox, "generate", "music", "bars", 1, "tempo", 240, "seed", 2)
    mapping.disconnect(peer)
    assert verbs(replies)[-1] == "done", replies
    notes = [r for r in replies if r.address == PREFIX + "note"]
    assert notes and all(isinstance(r.args[4], float) and isinstance(r.args[5], float) for r in notes)
    return next(r.args[1] for r in replies if r.address == PREFIX + "result")


def test_play_and_stop(mapping, peer, inbox, shared_core, music_item, monkeypatch):
    player = StubPlayer()
    monkeypatch.setattr(shared_core, "player", player)
    assert mapping.receive(peer, PREFIX + "play", (music_item,)) == [OscReply(PREFIX + "playing", (music_item, 2.5))]
    assert player.midi[0].startswith(b"MThd")
    player.end(stopped=False)  # it played to its end
    assert inbox.replies == [OscReply(PREFIX + "played", (music_item,))]
    mapping.receive(peer, PREFIX + "play", (music_item,))
    assert mapping.receive(peer, PREFIX + "stop", ()) == []  # the playback's end answers
    assert inbox.replies[-1] == OscReply(PREFIX + "stopped", (music_item,))
    assert mapping.receive(peer, PREFIX + "stop", ()) == [OscReply(PREFIX + "stopped", ("",))]  # nothing played


def test_play_refusals(mapping, peer, inbox, shared_core, music_item):
    texture = generate_texture(mapping, peer, inbox)
    assert mapping.receive(peer, PREFIX + "play", ("no-such-item",)) == [
        error("", "unknown_item", "no item with id 'no-such-item'")
    ]
    assert mapping.receive(peer, PREFIX + "play", (texture,)) == [
        error("", "invalid_params", f"item {texture} is texture, not music: nothing to play")
    ]
    assert shared_core.player is None
    assert mapping.receive(peer, PREFIX + "play", (music_item,)) == [
        error("", "unavailable", "MIDI output is off (start the bridge with --midi-out NAME)")
    ]
    assert mapping.receive(peer, PREFIX + "play", (3,)) == [error("", "invalid_params", "item must be a string, not 3")]
    assert mapping.receive(peer, PREFIX + "stop", ()) == [OscReply(PREFIX + "stopped", ("",))]


# --- core events -> OSC replies ---------------------------------------------------------------------


def test_events_become_replies(mapping, peer):
    def replies(event: dict) -> list[OscReply]:
        return mapping.event_replies(peer, event)

    assert replies({"type": "accepted", "id": "osc4", "position": 3}) == [OscReply(PREFIX + "accepted", ("osc4",))]
    assert replies({"type": "progress", "id": "osc4", "done": 2, "total": 5}) == [
        OscReply(PREFIX + "progress", ("osc4", 2, 5))
    ]
    assert replies({"type": "done", "id": "osc4"}) == [OscReply(PREFIX + "done", ("osc4",))]
    assert replies({"type": "cancelled", "id": "osc4"}) == [OscReply(PREFIX + "cancelled", ("osc4",))]
    assert replies({"type": "welcome", "id": "hello", "server": SERVER}) == []  # hello answers itself
    assert replies({"type": "generators", "id": "g", "generators": []}) == []


def test_a_result_event_sends_each_items_notes_before_it(mapping, peer):
    items = [
        {"item": "m1", "file": "/out/m1.mid", "notes": [[0, 60, 90, 0, 1], [2, 48, 80, 0.5, 0.25]]},
        {"item": "t1", "file": "/out/t1.png"},
    ]
    replies = mapping.event_replies(peer, {"type": "result", "id": "osc7", "items": items})
    assert replies == [
        OscReply(PREFIX + "note", ("osc7", 0, 60, 90, 0.0, 1.0)),
        OscReply(PREFIX + "note", ("osc7", 2, 48, 80, 0.5, 0.25)),
        OscReply(PREFIX + "result", ("osc7", "m1", "/out/m1.mid")),
        OscReply(PREFIX + "result", ("osc7", "t1", "/out/t1.png")),
    ]
    # on the wire the beats are floats even when the event had ints
    (note,) = parse_datagram(encode_message(replies[0].address, *replies[0].args))
    assert note.args == ("osc7", 0, 60, 90, 0.0, 1.0) and isinstance(note.args[4], float)


def test_ack_and_error_events_use_and_clear_the_feedback_item(mapping, peer):
    peer.feedback_items.update({"osc2": "item-a", "osc3": "item-b"})
    assert mapping.event_replies(peer, {"type": "ack", "id": "osc2"}) == [OscReply(PREFIX + "ack", ("item-a",))]
    assert mapping.event_replies(peer, {"type": "ack", "id": "osc9"}) == [OscReply(PREFIX + "ack", ("osc9",))]
    event = {"type": "error", "id": "osc3", "code": "unknown_item", "message": "no item with id 'item-b'"}
    assert mapping.event_replies(peer, event) == [error("osc3", "unknown_item", "no item with id 'item-b'")]
    assert peer.feedback_items == {}
    long = {"type": "error", "id": None, "code": "invalid_params", "message": "y" * 600}
    assert mapping.event_replies(peer, long) == [error("", "invalid_params", "y" * 500 + "... (100 more characters)")]


def test_the_address_map_lists_every_address_the_mapping_handles():
    spec = json.loads((ROOT / "plugins" / "daw" / "osc_map.json").read_text())
    assert OscMapping.addresses() == {a["address"] for a in spec["to_bridge"]}


# --- live sessions -----------------------------------------------------------------------------


def frames_after(inbox: Inbox, live: str, seq: int) -> OscReply:
    """The first live/frame of `live` showing move `seq` or a later one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for r in inbox.wait_for("live/frame"):
            if r.address == PREFIX + "live/frame" and r.args[0] == live and r.args[1] >= seq:
                return r
        time.sleep(0.02)
    raise AssertionError(f"no frame of {live} at seq {seq}: {inbox.replies}")


def test_live_over_osc_faders_in_frames_out(mapping, peer, inbox, tmp_path):
    mapping.previews = tmp_path
    assert mapping.receive(peer, PREFIX + "live/open", ("texture", "width", 32, "height", 32, "seed", 4)) == []
    opened = inbox.wait_for("live/opened")
    (live, count) = next(r.args for r in opened if r.address == PREFIX + "live/opened")
    directions = [r.args for r in opened if r.address == PREFIX + "live/direction"]
    assert count == len(directions) >= 4 and [d[1] for d in directions] == list(range(count))
    first = frames_after(inbox, live, 0)
    assert first.file is not None and first.args[2] == str(tmp_path / f"127.0.0.1-{live}.png")
    assert first.file[1][:8] == b"\x89PNG\r\n\x1a\n"  # what the transport writes before sending
    assert mapping.receive(peer, PREFIX + "live/slider", (live, 1, 2.5)) == []
    assert peer.sliders[live][:2] == [0.0, 2.5]
    moved = frames_after(inbox, live, 1)
    assert moved.file is not None and moved.file[1] != first.file[1]
    assert mapping.receive(peer, PREFIX + "live/move", (live, 0.0, 0.0)) == []
    assert frames_after(inbox, live, 2).file[1] == first.file[1]  # type: ignore[index]
    assert mapping.receive(peer, PREFIX + "live/commit", (live,)) == []
    replies = inbox.wait_for("result")
    assert any(r.address == PREFIX + "result" for r in replies)
    assert mapping.receive(peer, PREFIX + "live/close", (live,)) == []
    preview = tmp_path / f"127.0.0.1-{live}.png"
    assert inbox.wait_for("live/closed")[-1] == OscReply(PREFIX + "live/closed", (live,), remove=preview)
    assert peer.previews == {}


def test_live_over_osc_refuses_bad_faders(mapping, peer, inbox):
    assert mapping.receive(peer, PREFIX + "live/slider", ("x", 1)) == [
        error("", "invalid_params", "live/slider takes s:live i:index f:value")
    ]
    assert mapping.receive(peer, PREFIX + "live/slider", ("x", 99, 1.0)) == [
        error("", "invalid_params", "live/slider: index 99 is out of range 0-63")
    ]
    assert mapping.receive(peer, PREFIX + "live/move", ("x", "loud")) == [
        error("", "invalid_params", "value 1 must be a number, not 'loud'")
    ]
    assert mapping.receive(peer, PREFIX + "live__move", ("x", 1.0)) == [
        error("", "unknown_type", "unknown address /ganbridge/live__move")
    ]
    assert mapping.receive(peer, PREFIX + "live/move", ("nope", 1.0)) == []
    assert inbox.wait_for("error")[-1] == error("nope", "unknown_request", "no live session with id 'nope' is open")


def test_live_music_over_osc_sends_its_notes(mapping, peer, inbox, tmp_path):
    mapping.previews = tmp_path
    assert mapping.receive(peer, PREFIX + "live/open", ("music", "bars", 1, "seed", 5)) == []
    live = next(r.args[0] for r in inbox.wait_for("live/opened") if r.address == PREFIX + "live/opened")
    frame = frames_after(inbox, live, 0)
    notes = [r for r in inbox.replies if r.address == PREFIX + "live/note" and r.args[0] == live]
    assert notes and all(n.args[1] == 0 for n in notes) and frame.args[2].endswith(".mid")


def test_osc_faders_keep_only_what_an_open_session_takes(mapping, peer, inbox, tmp_path):
    """A set default that live/open has not (count) does not break it; positions are kept only
    for an open session and only when valid, so a bad fader never sticks in later moves."""
    mapping.previews = tmp_path
    assert mapping.receive(peer, PREFIX + "set", ("texture", "count", 4)) == []
    assert mapping.receive(peer, PREFIX + "live/open", ("texture", "width", 32, "height", 32)) == []
    opened = inbox.wait_for("live/opened", "error")
    (live, count) = next(r.args for r in opened if r.address == PREFIX + "live/opened")
    assert mapping.receive(peer, PREFIX + "live/slider", (live, count, 1.0)) == [
        error("", "invalid_params", f"live/slider: session {live} has {count} sliders (indexes 0-{count - 1})")
    ]
    assert mapping.receive(peer, PREFIX + "live/slider", (live, 0, 9.5)) == [
        error("", "invalid_params", "live/slider: 9.5 is outside -8 to 8")
    ]
    assert mapping.receive(peer, PREFIX + "live/move", (live, *[1.0] * (count + 3))) == []  # refused by the core
    assert peer.sliders[live] == [0.0] * count  # nothing bad was kept
    assert mapping.receive(peer, PREFIX + "live/slider", (live, 0, 1.5)) == []
    assert frames_after(inbox, live, 1).args[1] == 1  # the next move works (refused ones count no seq)
    assert mapping.receive(peer, PREFIX + "live/slider", ("never-opened", 0, 1.0)) == [
        error("", "unknown_request", "no live session with id 'never-opened' is open")
    ]
    for n in range(50):  # made-up sessions keep nothing
        mapping.receive(peer, PREFIX + "live/move", (f"fake{n}", *[0.5] * 64))
    assert set(peer.sliders) == {live}
