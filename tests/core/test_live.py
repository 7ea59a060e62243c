"""Live sessions over a real WebSocket: sliders in, frames out, only the newest state rendered,
commit to an ordinary item; binary frames for a client that asks; every bad move answered."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from ganbridge.core.live import MAX_DEFER, MAX_SESSIONS_PER_CLIENT, LiveRenderer, LiveSession, LiveState
from ganbridge.core.protocol import decode_binary, encode_reply
from ganbridge.core.scheduler import InProcessExecutor
from tests.conftest import WsClient, small_texture


def payload(msg: dict) -> bytes:
    data = msg["data"]
    return data if isinstance(data, bytes) else base64.b64decode(data)


def pixels(msg: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(payload(msg))).convert("RGBA"), np.int16)


def hello(ws: WsClient, *extensions: str) -> dict:
    return ws.request({"type": "hello", "protocol": 1, "client": "pytest", "extensions": list(extensions)})


def frame(ws: WsClient, live: str, seq: int | None = None, timeout: float = 60) -> dict:
    """The next frame of `live` (with `seq` at least, when given); errors for it raise."""
    deadline = time.monotonic() + timeout
    while True:
        msg = ws.recv(max(0.1, deadline - time.monotonic()))
        if msg.get("id") != live:
            continue
        assert msg["type"] == "live_frame", msg
        if seq is None or msg["seq"] >= seq:
            return msg


def open_texture(ws: WsClient, live: str, **params) -> dict:
    ws.send({"type": "live_open", "id": live, "generator": "texture", "seed": 3, "params": small_texture(**params)})
    opened = until(ws, live, ("live_opened", "error"))
    assert opened["type"] == "live_opened", opened
    return opened


def until(ws: WsClient, rid: str, kinds: tuple[str, ...]) -> dict:
    while (msg := ws.recv())["id"] != rid or msg["type"] not in kinds:
        pass
    return msg


@pytest.fixture
def live_ws(bridge):
    c = bridge.client()
    hello(c, "live")
    yield c
    c.close()


def test_extensions_are_granted_only_when_asked(ws):
    assert "extensions" not in hello(ws)  # a v1 client gets v1 exactly
    assert hello(ws, "live", "binary", "teleport")["extensions"] == ["binary", "live"]


def test_live_needs_the_extension(ws):
    hello(ws)
    reply = ws.request({"type": "live_open", "id": "l", "generator": "texture", "params": small_texture()})
    assert reply["type"] == "error" and reply["code"] == "unknown_type" and "extensions" in reply["message"]


def test_sliders_change_the_frame_and_zero_gives_it_back(live_ws):
    opened = open_texture(live_ws, "tex")
    assert opened["generator"] == "texture" and opened["params"]["width"] == 64
    changes = [d["change"] for d in opened["directions"]]
    assert len(changes) >= 4 and changes == sorted(changes, reverse=True)
    first = frame(live_ws, "tex")
    assert first["seq"] == 0 and (first["width"], first["height"]) == (64, 64)
    start = pixels(first)
    live_ws.send({"type": "live_move", "id": "tex", "seq": 1, "values": [3.0]})
    moved = pixels(frame(live_ws, "tex", 1))
    assert np.abs(moved - start).mean() > 2  # direction 1 changes the picture
    live_ws.send({"type": "live_move", "id": "tex", "seq": 2, "values": [0.0, 0.0]})
    assert np.array_equal(pixels(frame(live_ws, "tex", 2)), start)


def test_a_flood_of_moves_renders_the_newest_and_drops_the_rest(live_ws):
    open_texture(live_ws, "flood")
    frame(live_ws, "flood")
    for seq in range(1, 61):
        live_ws.send({"type": "live_move", "id": "flood", "seq": seq, "values": [seq / 20, -seq / 30]})
    seqs = []
    while not seqs or seqs[-1] < 60:
        seqs.append(frame(live_ws, "flood")["seq"])
    assert seqs == sorted(seqs) and seqs[-1] == 60
    assert len(seqs) < 60  # stale moves were dropped, not queued


def test_commit_makes_an_ordinary_item_with_the_frames_pixels(live_ws):
    live_ws.send({"type": "generate", "id": "b", "generator": "texture", "seed": 8, "params": small_texture()})
    item = until(live_ws, "b", ("result",))["items"][0]
    live_ws.send({"type": "live_open", "id": "it", "item": item["item"]})
    opened = until(live_ws, "it", ("live_opened", "error"))
    assert opened["type"] == "live_opened" and opened["params"]["seed"] is None
    assert np.array_equal(pixels(frame(live_ws, "it")), pixels(item))  # it starts from the item's latent
    live_ws.send({"type": "live_move", "id": "it", "seq": 5, "values": [1.5, -2.0, 0.5]})
    shown = pixels(frame(live_ws, "it", 5))
    live_ws.send({"type": "live_commit", "id": "c1", "live": "it", "session": "live-test"})
    result = until(live_ws, "c1", ("result",))
    assert until(live_ws, "c1", ("done",))["type"] == "done"
    (made,) = result["items"]
    assert np.array_equal(pixels(made), shown)
    info = live_ws.request({"type": "item", "id": "i", "item": made["item"]})
    assert info["origin"] == "live" and info["parents"] == [item["item"]] and info["session"] == "live-test"
    live_ws.send({"type": "variations", "id": "v", "item": made["item"], "count": 2, "strength": 0.2})
    assert len(until(live_ws, "v", ("result",))["items"]) == 2  # an item like any other


def test_blend_slides_to_the_second_item(live_ws):
    live_ws.send({"type": "generate", "id": "ab", "generator": "texture", "count": 2, "params": small_texture()})
    a, b = until(live_ws, "ab", ("result",))["items"]
    live_ws.send({"type": "live_open", "id": "bl", "item": a["item"], "toward": b["item"]})
    assert until(live_ws, "bl", ("live_opened", "error"))["toward"] == b["item"]
    frame(live_ws, "bl")
    live_ws.send({"type": "live_move", "id": "bl", "seq": 1, "blend": 1.0})
    assert np.array_equal(pixels(frame(live_ws, "bl", 1)), pixels(b))
    live_ws.send({"type": "live_move", "id": "bl", "seq": 2, "blend": 0.5})
    half = pixels(frame(live_ws, "bl", 2))
    assert not np.array_equal(half, pixels(a)) and not np.array_equal(half, pixels(b))


def test_params_that_keep_the_shapes_can_move(live_ws):
    open_texture(live_ws, "temp")
    start = pixels(frame(live_ws, "temp"))
    live_ws.send({"type": "live_move", "id": "temp", "seq": 1, "params": {"temperature": 0.2}})
    calmer = frame(live_ws, "temp", 1)
    assert not np.array_equal(pixels(calmer), start)
    live_ws.send({"type": "live_move", "id": "temp", "seq": 2, "params": {"temperature": 0.2, "tint": "#3060c0"}})
    tinted = pixels(frame(live_ws, "temp", 2))
    assert tinted[..., 2].mean() > tinted[..., 0].mean() + 40  # blue now, the relief unchanged
    for seq, change in ((3, {"width": 128}), (4, {"scale": 2.0})):
        live_ws.send({"type": "live_move", "id": "temp", "seq": seq, "params": change})
        reply = until(live_ws, "temp", ("error",))
        assert reply["code"] == "invalid_params" and "shapes" in reply["message"], change


def test_every_bad_live_message_gets_one_clear_error(live_ws):
    open_texture(live_ws, "bad")
    frame(live_ws, "bad")
    cases = [
        ({"type": "live_move", "id": "nope", "values": [1]}, "unknown_request"),
        ({"type": "live_move", "id": "bad", "values": [1.0] * 40}, "invalid_params"),
        ({"type": "live_move", "id": "bad", "values": [99.0]}, "invalid_params"),
        ({"type": "live_move", "id": "bad", "blend": 0.5}, "invalid_params"),
        ({"type": "live_move", "id": "bad", "params": {"model": "grass"}}, "invalid_params"),
        ({"type": "live_move", "id": "bad", "params": {"temperature": "hot"}}, "invalid_params"),
        ({"type": "live_open", "id": "bad", "generator": "texture", "params": small_texture()}, "invalid_params"),
        ({"type": "live_open", "id": "x1"}, "invalid_params"),
        ({"type": "live_open", "id": "x2", "generator": "oboe"}, "unknown_generator"),
        ({"type": "live_open", "id": "x3", "item": "0000000000000000"}, "unknown_item"),
        ({"type": "live_open", "id": "x4", "generator": "texture", "params": {"width": 4096}}, "invalid_params"),
        ({"type": "live_commit", "id": "x5", "live": "nope"}, "unknown_request"),
        ({"type": "live_close", "id": "nope"}, "unknown_request"),
    ]
    for msg, code in cases:
        live_ws.send(msg)
        reply = until(live_ws, str(msg["id"]), ("error",))
        assert reply["code"] == code, (msg, reply)
    live_ws.send({"type": "live_move", "id": "bad", "seq": 9, "values": [0.5]})
    assert frame(live_ws, "bad", 9)["seq"] == 9  # the session still works after all that


def test_sessions_per_client_are_bounded_and_close_cleanly(bridge, live_ws):
    for n in range(MAX_SESSIONS_PER_CLIENT):
        open_texture(live_ws, f"s{n}")
    live_ws.send({"type": "live_open", "id": "one-more", "generator": "texture", "params": small_texture()})
    assert until(live_ws, "one-more", ("error",))["code"] == "busy"
    for n in range(MAX_SESSIONS_PER_CLIENT):
        live_ws.send({"type": "live_move", "id": f"s{n}", "seq": 7, "values": [1.0]})
        live_ws.send({"type": "live_close", "id": f"s{n}"})
        assert until(live_ws, f"s{n}", ("live_closed",))["type"] == "live_closed"
    # nothing of a closed session follows its live_closed
    live_ws.send({"type": "generate", "id": "after", "generator": "texture", "params": small_texture()})
    while (msg := live_ws.recv())["id"] != "after" or msg["type"] != "done":
        assert not str(msg["id"]).startswith("s"), msg
    other = bridge.client()
    hello(other, "live")
    open_texture(other, "gone")
    other.close()  # a client that goes away takes its sessions with it
    deadline = time.monotonic() + 10
    while any(key[1] == "gone" for key in bridge.core.live._sessions) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(key[1] == "gone" for key in bridge.core.live._sessions)


def test_binary_frames_carry_the_same_payloads(bridge):
    text, binary = bridge.client(), bridge.client()
    hello(text, "live")
    assert hello(binary, "live", "binary")["extensions"] == ["binary", "live"]
    for ws in (text, binary):
        open_texture(ws, "bin", maps=["height"])
    a, b = frame(text, "bin"), frame(binary, "bin")
    assert isinstance(a["data"], str) and isinstance(b["data"], bytes)
    assert payload(a) == payload(b) and payload(a["maps"]["height"]) == payload(b["maps"]["height"])
    binary.send({"type": "generate", "id": "g", "generator": "texture", "seed": 4, "params": small_texture()})
    item = until(binary, "g", ("result",))["items"][0]
    assert isinstance(item["data"], bytes) and item["data"][:8] == b"\x89PNG\r\n\x1a\n"
    text.close()
    binary.close()


def test_glyph_sliders_keep_the_character(live_ws):
    live_ws.send({"type": "live_open", "id": "g", "generator": "image", "seed": 11, "params": {"size": 64}})
    opened = until(live_ws, "g", ("live_opened", "error"))
    assert opened["type"] == "live_opened" and opened["directions"]
    first = frame(live_ws, "g")
    live_ws.send({"type": "live_move", "id": "g", "seq": 1, "values": [2.5, 2.5]})
    second = frame(live_ws, "g", 1)
    assert second["category"] == first["category"]
    assert not np.array_equal(pixels(first), pixels(second))


def test_music_frames_carry_notes(live_ws):
    live_ws.send({"type": "live_open", "id": "m", "generator": "music", "seed": 2, "params": {"bars": 2}})
    assert until(live_ws, "m", ("live_opened", "error"))["type"] == "live_opened"
    first = frame(live_ws, "m")
    assert first["format"] == "mid" and first["notes"]
    live_ws.send({"type": "live_move", "id": "m", "seq": 1, "values": [3.0, -3.0, 3.0]})
    assert frame(live_ws, "m", 1)["notes"] != first["notes"]


def test_binary_frame_layout():
    msg = {"type": "live_frame", "id": "x", "seq": 3, "data": b"abc", "maps": {"height": {"data": b"hh"}}}
    frame = encode_reply(msg, True)
    assert isinstance(frame, bytes) and frame[:4] == b"GBF1" and frame.endswith(b"abchh")
    assert decode_binary(frame) == msg
    assert encode_reply(msg, False).startswith('{"type":"live_frame"')  # base64 text otherwise
    assert encode_reply({"type": "ack", "id": "a"}, True) == '{"type":"ack","id":"a"}'  # no payload: text


def test_the_renderer_takes_clients_in_turn(shared_core):
    """A client that floods moves on three sessions gets no more frames than one that moves one."""
    gen = shared_core.generators["texture"]
    # frames that take longer than a round of moves, so the renderer is what they wait for
    params = gen.params_model.model_validate(small_texture(width=128, height=128))
    frames: dict[str, int] = {"flood": 0, "calm": 0}
    renderer = LiveRenderer(InProcessExecutor().run)

    def session(client: str, live_id: str) -> LiveSession:
        def emit(msg: dict, client: str = client) -> None:
            frames[client] += msg["type"] == "live_frame"

        base = gen.random_latent(params, 1)
        return LiveSession(
            live_id, client, emit, gen, base, None, gen.directions(params), set(), [], LiveState(0, (), 0.0, params)
        )

    sessions = [session("flood", f"f{n}") for n in range(3)] + [session("calm", "c")]
    for s in sessions:
        renderer.open(s, lambda: None)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # every session always has a newer state waiting
        for s in sessions:
            renderer.move(s, LiveState(s.state.seq + 1, (float(np.sin(s.state.seq)),), 0.0, params))
        time.sleep(0.002)
    renderer.stop()
    assert frames["calm"] >= 0.8 * frames["flood"] > 0, frames


def test_a_small_preview_commits_onto_the_full_size_item(live_ws):
    big_params = small_texture(width=128, height=128, seed=21)
    live_ws.send({"type": "generate", "id": "big", "generator": "texture", "params": big_params})
    big = until(live_ws, "big", ("result",))["items"][0]
    # the preview: the same seed at a quarter of the pixels
    live_ws.send({"type": "live_open", "id": "small", "generator": "texture", "seed": 21, "params": small_texture()})
    until(live_ws, "small", ("live_opened",))
    live_ws.send({"type": "live_move", "id": "small", "seq": 1, "values": [2.0, -1.0], "params": {"temperature": 0.7}})
    frame(live_ws, "small", 1)
    live_ws.send({"type": "live_commit", "id": "onto", "live": "small", "onto": big["item"]})
    (made,) = until(live_ws, "onto", ("result",))["items"]
    assert (made["width"], made["height"]) == (128, 128)
    live_ws.send({"type": "item", "id": "i", "item": made["item"]})
    info = until(live_ws, "i", ("item",))
    assert info["parents"] == [big["item"]] and info["params"]["temperature"] == 0.7
    # what a session on the big item itself shows with the same sliders
    live_ws.send({"type": "live_open", "id": "full", "item": big["item"], "params": {"temperature": 0.7}})
    until(live_ws, "full", ("live_opened",))
    live_ws.send({"type": "live_move", "id": "full", "seq": 1, "values": [2.0, -1.0]})
    assert np.array_equal(pixels(frame(live_ws, "full", 1)), pixels(made))
    live_ws.send({"type": "generate", "id": "img", "generator": "image", "params": {"size": 64}})
    glyph = until(live_ws, "img", ("result",))["items"][0]
    live_ws.send({"type": "live_commit", "id": "wrong", "live": "small", "onto": glyph["item"]})
    assert until(live_ws, "wrong", ("error",))["code"] == "invalid_params"


def first_frame_after(gen, params, busy_for: float) -> float:
    """Seconds from opening a session to its first frame, with requests "running" for `busy_for`."""
    came: list[float] = []
    start = time.monotonic()

    def give_way(timeout: float) -> None:  # requests "run" until busy_for
        time.sleep(max(0.0, min(timeout, start + busy_for - time.monotonic())))

    renderer = LiveRenderer(InProcessExecutor().run, give_way)
    session = LiveSession(
        "s", "c", lambda msg: came.append(time.monotonic() - start), gen, gen.random_latent(params, 1),
        None, [], set(), [], LiveState(0, (), 0.0, params),
    )  # fmt: skip
    renderer.open(session, lambda: None)
    while not came and time.monotonic() - start < 5:
        time.sleep(0.005)
    renderer.stop()
    assert came, "no frame came"
    return came[0]


def test_frames_give_way_to_requests_but_never_starve(shared_core):
    gen = shared_core.generators["texture"]
    params = gen.params_model.model_validate(small_texture(width=32, height=32))
    assert 0.06 <= first_frame_after(gen, params, 0.06) < 1.0  # after the requests
    assert MAX_DEFER <= first_frame_after(gen, params, 60.0) < 1.0  # not after an hour of them
