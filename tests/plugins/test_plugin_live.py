"""The plugins' shared live-session state, driven by the shared protocol client against a real bridge."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from plugins.client import ganbridge_client as gc
from plugins.client.ganbridge_live import LiveSession


def pump(client: gc.BridgeClient, live: LiveSession, done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Hand the client's messages to `live` until `done()`, as a host's drain tick does."""
    deadline = time.monotonic() + timeout
    while not done():
        for event in client.poll():
            if event.kind == "message":
                live.update(event.data)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def client(bridge):
    c = gc.BridgeClient(bridge.url, client_name="pytest-live")
    c.start()
    deadline = time.monotonic() + 30
    while not c.connected:
        c.poll()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield c
    c.stop()


def test_the_client_asks_for_live_and_the_state_keeps_only_the_newest_frame(client):
    assert client.state.extensions == ["binary", "live"]
    rid = client.request("live_open", generator="texture", seed=2, params={"width": 32, "height": 32})
    live = LiveSession(rid, "texture")
    pump(client, live, lambda: live.status != "opening")
    assert live.status == "open" and len(live.values) == len(live.directions) >= 1
    pump(client, live, lambda: live._frame is not None)
    assert live.take_frame()["seq"] == 0 and live.take_frame() is None  # each frame is taken once
    for value in (0.5, 1.0, 1.5, 2.0, 2.5):  # a drag: moves faster than frames come
        client.request("live_move", **live.move(0, value))
    pump(client, live, lambda: live._frame is not None and live._frame["seq"] == live.seq)
    assert live.take_frame()["seq"] == 5 and live.shown == 5
    with pytest.raises(IndexError):
        live.move(len(live.values), 1.0)
    assert live.move(0, 99.0)["values"][0] == 8.0  # clamped to the bridge's reach
    client.request("live_close", id=live.id)
    pump(client, live, lambda: live.status == "closed")


def test_a_refused_open_is_a_failed_session(client):
    rid = client.request("live_open", generator="oboe")
    live = LiveSession(rid, "oboe")
    pump(client, live, lambda: live.status != "opening")
    assert live.status == "failed" and "oboe" in live.error


def test_a_refused_move_keeps_the_session_and_a_lost_connection_ends_it(bridge):
    """An error for one move is not the session's end; the connection's loss is, with a
    `disconnected` error for the session."""
    c = gc.BridgeClient(bridge.url, client_name="pytest-live-drop", backoff=(30.0, 30.0))
    c.start()
    try:
        deadline = time.monotonic() + 30
        while not c.connected:
            c.poll()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        rid = c.request("live_open", generator="texture", seed=3, params={"width": 32, "height": 32})
        live = LiveSession(rid, "texture")
        pump(c, live, lambda: live.status == "open")
        c.request("live_move", id=rid, values=[1.0] * 40)  # too many sliders: refused
        pump(c, live, lambda: bool(live.error))
        assert live.status == "open" and rid in c._in_flight
        c._ws.close()  # the connection drops
        pump(c, live, lambda: live.status == "failed")
        assert "dropped" in live.error
    finally:
        c.stop()


def test_temperature_and_blend_moves_change_the_frame_and_keep_the_sliders(client, bridge):
    """The two obvious axes beside the directions: a temperature move renders the same latent
    scaled, a blend move walks toward the `toward` item; neither resets the sliders."""
    params = {"width": 32, "height": 32}
    made = client.request("generate", generator="texture", seed=5, params=params)
    toward = None
    deadline = time.monotonic() + 60
    while toward is None:
        for event in client.poll():
            if event.kind == "message" and event.data.get("id") == made and event.data["type"] == "result":
                toward = event.data["items"][0]["item"]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    rid = client.request("live_open", generator="texture", seed=2, params=params, toward=toward)
    live = LiveSession(rid, "texture")
    pump(client, live, lambda: live._frame is not None)
    start = live.take_frame()["data"]
    client.request("live_move", **live.move(0, 2.0))
    pump(client, live, lambda: live._frame is not None and live._frame["seq"] == live.seq)
    moved = live.take_frame()["data"]
    assert moved != start
    sent = live.move_params(temperature=0.5)
    assert sent["params"] == {"temperature": 0.5} and "values" not in sent
    client.request("live_move", **sent)
    pump(client, live, lambda: live._frame is not None and live._frame["seq"] == live.seq)
    cooler = live.take_frame()["data"]
    assert cooler not in (start, moved) and live.values[0] == 2.0
    client.request("live_move", **live.move_blend(1.0))
    pump(client, live, lambda: live._frame is not None and live._frame["seq"] == live.seq)
    blended = live.take_frame()["data"]
    assert blended != cooler and live.blend == 1.0 and live.params == {"temperature": 0.5}
    client.request("live_close", id=live.id)
    pump(client, live, lambda: live.status == "closed")
