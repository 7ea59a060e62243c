"""The protocol client every plugin bundles (plugins/client), against a live bridge."""

from __future__ import annotations

import base64
import time

import pytest

from ganbridge.server import build_core
from plugins.client.ganbridge_client import (
    BadUrl,
    BridgeClient,
    Event,
    check_url,
    decode_frame,
    is_loopback,
    payload,
)
from tests.conftest import BridgeThread, make_settings, small_texture


def wait_for(client: BridgeClient, predicate, timeout: float = 30.0) -> list[Event]:
    """Poll like a host's UI timer until an event satisfies `predicate`; return all events seen."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.poll():
            seen.append(event)
            if predicate(event):
                return seen
        time.sleep(0.01)
    raise AssertionError(f"no matching event in {timeout} s; saw {[(e.kind, e.data) for e in seen][-8:]}")


def is_status(status: str):
    return lambda e: e.kind == "state" and e.data.status == status


def final_for(rid: str):
    return lambda e: (
        e.kind == "message" and e.data.get("id") == rid and e.data["type"] in ("done", "error", "cancelled")
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8765/", "must start with ws://"),
        ("ws:///path", "no host name"),
        ("ws://127.0.0.1:99999/", "not a valid URL"),
        ("ws://127.0.0.1:0/", "port 0"),
    ],
)
def test_bad_urls_are_refused_before_connecting(url, why):
    with pytest.raises(BadUrl, match=why):
        check_url(url)


def test_loopback_detection():
    assert is_loopback("ws://127.0.0.1:8765/") and is_loopback("ws://localhost/") and is_loopback("ws://[::1]:1/")
    assert not is_loopback("ws://192.0.2.7:8765/") and not is_loopback("ws://example.org/")


def test_generate_round_trip_and_not_connected(bridge):
    client = BridgeClient(bridge.url, client_name="test")
    early = client.request("generators")  # before start: answered at once, never lost
    assert wait_for(client, final_for(early))[-1].data["code"] == "not_connected"
    client.start()
    try:
        state = wait_for(client, is_status("connected"))[-1].data
        assert "texture" in [g["name"] for g in state.generators]
        rid = client.request("generate", generator="texture", params=small_texture(), count=2)
        events = wait_for(client, final_for(rid))
        kinds = [e.data["type"] for e in events if e.kind == "message" and e.data.get("id") == rid]
        assert kinds[0] == "accepted" and kinds[-1] == "done" and kinds.count("result") >= 1
        items = [i for e in events if e.kind == "message" and e.data["type"] == "result" for i in e.data["items"]]
        assert len(items) == 2
    finally:
        client.stop()
    assert client.state.status == "stopped"


def test_results_come_as_binary_frames_with_the_stored_bytes(bridge):
    """The client asks for binary frames: a texture's colour and maps arrive as the bytes the
    bridge stored (no base64 for the host to parse), and payload() reads either form."""
    client = BridgeClient(bridge.url, client_name="test")
    client.start()
    try:
        assert "binary" in wait_for(client, is_status("connected"))[-1].data.extensions
        params = small_texture(maps=["height", "normal"])
        rid = client.request("generate", generator="texture", params=params)
        events = wait_for(client, final_for(rid))
    finally:
        client.stop()
    (item,) = [i for e in events if e.kind == "message" and e.data["type"] == "result" for i in e.data["items"]]
    assert isinstance(item["data"], bytes) and item["data"].startswith(b"\x89PNG")
    record = bridge.core.store.get(item["item"])
    assert record is not None and item["data"] == record.file.read_bytes()
    assert sorted(item["maps"]) == ["height", "normal"]
    assert all(isinstance(m["data"], bytes) and m["data"].startswith(b"\x89PNG") for m in item["maps"].values())
    assert payload(item["data"]) is item["data"]
    assert payload(base64.b64encode(item["data"]).decode()) == item["data"]


@pytest.mark.parametrize(
    "frame",
    [
        b"GBF1",  # shorter than its header's length
        b"XXXX\x00\x00\x00\x02{}",  # not ours
        b"GBF1\x00\x00\x00\x02[]",  # a header that is not an object
        b'GBF1\x00\x00\x00\x2c{"type":"live_frame","id":"a","data":[0,99]}ab',  # past the end
        b'GBF1\x00\x00\x00\x29{"type":"live_frame","id":"a","data":"x"}',  # not [offset, length]
        b'GBF1\x00\x00\x00\x05{"typ',  # torn JSON
    ],
)
def test_a_bad_binary_frame_is_refused(frame):
    with pytest.raises(ValueError):
        decode_frame(frame)


def test_a_binary_frame_gives_each_payload_its_bytes():
    head = b'{"type":"result","id":"r","items":[{"item":"i","data":[0,2],"maps":{"height":{"data":[2,3]}}}]}'
    frame = b"GBF1" + len(head).to_bytes(4, "big") + head + b"ab" + b"cde"
    item = decode_frame(frame)["items"][0]
    assert item["data"] == b"ab" and item["maps"]["height"]["data"] == b"cde"
    with pytest.raises(ValueError):
        payload(None)
    with pytest.raises(ValueError):
        payload("not base64!")


def test_wrong_token_is_reported_and_not_hammered(tmp_path):
    b = BridgeThread(make_settings(tmp_path, token="sesame"))
    client = BridgeClient(b.url, token="wrong", backoff=(0.05, 5.0))
    client.start()
    try:
        state = wait_for(client, is_status("unauthorized"))[-1].data
        assert "token" in state.detail
        time.sleep(0.5)
        attempts = [e for e in client.poll() if e.kind == "state" and e.data.status == "connecting"]
        assert len(attempts) <= 1  # a refused token waits the long backoff before trying again
    finally:
        client.stop()
        b.stop()


def test_bridge_restart_mid_job_fails_the_job_then_reconnects(tmp_path):
    settings = make_settings(tmp_path)
    b = BridgeThread(settings, build_core(settings))
    settings.ws_port = b.bridge.ws.port
    client = BridgeClient(b.url, backoff=(0.05, 0.5))
    client.start()
    try:
        wait_for(client, is_status("connected"))
        rid = client.request("generate", generator="texture", params={"width": 1024, "height": 1024}, count=4)
        wait_for(client, lambda e: e.kind == "message" and e.data.get("type") == "accepted")
        b.stop()
        lost = wait_for(client, final_for(rid))[-1].data
        assert lost["type"] == "error" and lost["code"] == "disconnected"
        b = BridgeThread(settings)
        wait_for(client, is_status("connected"))
        rid = client.request("generate", generator="texture", params=small_texture())
        assert wait_for(client, final_for(rid))[-1].data["type"] == "done"
    finally:
        client.stop()
        b.stop()
