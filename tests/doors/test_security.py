"""Safe by default: loopback only, tokens off loopback, browser Origins refused."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ganbridge.core.settings import Settings, is_loopback, load_settings, secure_settings
from tests.conftest import BridgeThread, make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_default_bind_is_loopback_without_token():
    s = Settings()
    assert s.host == "127.0.0.1" and is_loopback(s.host)
    assert secure_settings(s) is None and s.token is None


def test_non_loopback_bind_generates_a_token():
    s = Settings(host="0.0.0.0")
    token = secure_settings(s)
    assert token and s.token == token and len(token) >= 24
    given = Settings(host="0.0.0.0", token="mine")
    assert secure_settings(given) is None and given.token == "mine"


@pytest.fixture(scope="module")
def open_bridge(tmp_path_factory):
    # Bound to every interface, so a token is required; the tests only ever dial 127.0.0.1.
    settings = make_settings(
        tmp_path_factory.mktemp("open"), host="0.0.0.0", allowed_origins=["https://studio.example"]
    )
    assert secure_settings(settings)
    b = BridgeThread(settings)
    yield b
    b.stop()


def dial(bridge, **kw):
    return connect(f"ws://127.0.0.1:{bridge.bridge.ws.port}/", compression=None, **kw).__enter__()


def test_request_without_token_is_refused_and_closed(open_bridge):
    ws = dial(open_bridge)
    ws.send(json.dumps({"type": "generators", "id": "g"}))
    reply = json.loads(ws.recv(timeout=10))
    assert reply["type"] == "error" and reply["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)
    assert ws.close_code == 1008


def test_wrong_token_is_refused(open_bridge):
    ws = dial(open_bridge)
    ws.send(json.dumps({"type": "hello", "protocol": 1, "token": "guess"}))
    assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)


def test_non_ascii_token_is_refused_cleanly(open_bridge):
    ws = dial(open_bridge)
    ws.send(json.dumps({"type": "hello", "protocol": 1, "token": "pässwörd"}))
    assert json.loads(ws.recv(timeout=10))["code"] == "unauthorized"


def test_right_token_is_welcome(open_bridge):
    ws = dial(open_bridge)
    ws.send(json.dumps({"type": "hello", "protocol": 1, "token": open_bridge.settings.token}))
    assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    ws.send(json.dumps({"type": "generators", "id": "g"}))
    assert json.loads(ws.recv(timeout=10))["type"] == "generators"
    ws.close()


def test_browser_origin_is_refused_and_allow_list_admitted(open_bridge, bridge):
    for b in (bridge, open_bridge):
        with pytest.raises(InvalidStatus) as err:
            dial(b, origin="https://evil.example")
        assert err.value.response.status_code == 403
    ws = dial(open_bridge, origin="https://studio.example")
    ws.send(json.dumps({"type": "hello", "protocol": 1, "token": open_bridge.settings.token}))
    assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
    ws.close()


def test_osc_needs_the_token_too(open_bridge):
    from pythonosc.osc_message_builder import OscMessageBuilder

    def msg(address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        return b.build().dgram

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    target = ("127.0.0.1", open_bridge.osc_port)
    s.sendto(msg("/ganbridge/ping"), target)
    assert b"unauthorized" in s.recvfrom(65536)[0]
    s.sendto(msg("/ganbridge/hello", "wrong"), target)
    assert b"unauthorized" in s.recvfrom(65536)[0]
    s.sendto(msg("/ganbridge/hello", open_bridge.settings.token), target)
    assert s.recvfrom(65536)[0].startswith(b"/ganbridge/welcome")
    s.sendto(msg("/ganbridge/ping"), target)
    assert s.recvfrom(65536)[0].startswith(b"/ganbridge/pong")
    s.close()


def test_serve_on_all_interfaces_prints_a_token(tmp_path):
    env = dict(
        os.environ,
        GANBRIDGE_DATA_DIR=str(tmp_path),
        GANBRIDGE_OUTPUT_DIR=str(tmp_path / "o"),
        GANBRIDGE_MODELS_DIR=str(tmp_path / "m"),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganbridge", "serve", "--host", "0.0.0.0", "--ws-port", "0", "--osc-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert "not a loopback address" in first and "Token: " in first
        assert len(first.split("Token: ")[1].strip()) >= 24
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_config_file_env_and_cli_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('ws_port = 9000\nosc_port = 9001\nmax_count = 4\noutput_dir = "~/gb-out"\n')
    monkeypatch.setenv("GANBRIDGE_OSC_PORT", "9002")
    s = load_settings(cfg, {"max_count": 8})
    assert (s.ws_port, s.osc_port, s.max_count) == (9000, 9002, 8)
    assert s.output_dir == Path("~/gb-out").expanduser()
    cfg.write_text("wsport = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'wsport'"):
        load_settings(cfg)
    monkeypatch.setenv("GANBRIDGE_MAX_COUNT", "lots")
    with pytest.raises(ValueError, match="max_count"):
        load_settings(None)


@pytest.fixture(scope="module")
def small_bridge(tmp_path_factory):
    """A bridge with tight connection limits, so a test can reach them."""
    settings = make_settings(tmp_path_factory.mktemp("limits"), max_connections=2, max_unsent_bytes=1 << 20)
    b = BridgeThread(settings)
    yield b
    b.stop()


def test_connections_past_the_limit_are_closed_with_a_reason(small_bridge):
    first, second = small_bridge.client(), small_bridge.client()
    try:
        third = connect(small_bridge.url, compression=None).__enter__()
        with pytest.raises(ConnectionClosed) as closed:
            third.recv(timeout=10)
        assert closed.value.rcvd.code == 1013
        assert "limit of 2 connections" in closed.value.rcvd.reason
        assert first.request({"type": "generators", "id": "still"})["type"] == "generators"
    finally:
        first.close()
        second.close()
    deadline = time.monotonic() + 10
    while small_bridge.bridge.ws.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    again = small_bridge.client()  # a freed place can be taken again
    assert again.request({"type": "generators", "id": "again"})["type"] == "generators"
    again.close()


def test_a_client_that_does_not_read_is_closed_with_a_reason_and_others_go_on(small_bridge):
    reader = small_bridge.client()
    lazy = connect(small_bridge.url, compression=None, max_size=None).__enter__()
    try:
        params = {"width": 1024, "height": 1024}  # 16 noisy 1024x1024 PNGs: far more than 1 MiB
        lazy.send(
            json.dumps({"type": "generate", "id": "unread", "generator": "texture", "count": 16, "params": params})
        )
        time.sleep(0.2)
        reply = reader.request(
            {"type": "generate", "id": "small", "generator": "texture", "params": {"width": 64, "height": 64}}
        )
        assert reply["type"] == "accepted"
        assert reader.until_final("small")[-1]["type"] == "done"
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                lazy.recv(timeout=120)
        assert closed.value.rcvd.code == 1008 and "max_unsent_bytes" in closed.value.rcvd.reason
    finally:
        reader.close()
        lazy.close()
