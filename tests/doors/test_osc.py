"""The OSC door against a foreign implementation: liblo's oscsend and oscdump."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.real_host


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OscDump:
    """oscdump listening on a port; its stdout lines are what the bridge sent."""

    def __init__(self, tmp: Path):
        self.port = free_udp_port()
        self.out = tmp / f"oscdump-{self.port}.txt"
        self.file = open(self.out, "w")
        self.proc = subprocess.Popen(
            [require_tool("oscdump", "liblo-tools"), "-L", str(self.port)], stdout=self.file, stderr=subprocess.STDOUT
        )
        time.sleep(0.3)

    def lines(self) -> list[str]:
        """Received messages as 'address types args', without oscdump's timestamp column."""
        out = []
        for line in self.out.read_text().splitlines():
            line = line.strip()
            if re.match(r"^[0-9a-f]+\.[0-9a-f]+ ", line):
                line = line.split(" ", 1)[1]
            if line:
                out.append(line)
        return out

    def wait_for(self, text: str, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if any(text in line for line in lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"oscdump never showed {text!r}; it got: {self.lines()}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.file.close()


@pytest.fixture
def dump(tmp_path):
    d = OscDump(tmp_path)
    yield d
    d.close()


def oscsend(port: int, address: str, types: str = "", *values: object) -> None:
    cmd = [require_tool("oscsend", "liblo-tools"), "127.0.0.1", str(port), address]
    if types:
        cmd += [types, *map(str, values)]
    subprocess.run(cmd, check=True, timeout=10)


def test_ping_pong_via_reply_to(bridge, dump):
    # oscsend uses a new source port per message, so replies need reply_to
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/ping")
    lines = dump.wait_for("/ganbridge/pong")
    assert any(line.startswith("/ganbridge/pong s") and "ganbridge 0." in line for line in lines)


def test_generate_texture_over_osc(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/set", "ssi", "texture", "height", 64)
    oscsend(bridge.osc_port, "/ganbridge/generate", "ssisi", "texture", "width", 96, "seed", 11)
    lines = dump.wait_for("/ganbridge/done")
    accepted = next(line for line in lines if line.startswith("/ganbridge/accepted"))
    job = accepted.split('"')[1]
    result = next(line for line in lines if line.startswith("/ganbridge/result"))
    _, item, path = re.findall(r'"([^"]*)"', result)
    assert job in result and Path(path).is_file() and path.endswith(".png")
    rec = bridge.core.store.get(item)
    assert rec.params["width"] == 96 and rec.params["height"] == 64 and rec.seed == 11
    # feedback with a float rating, acknowledged with the item id
    oscsend(bridge.osc_port, "/ganbridge/feedback", "sf", item, 1.0)
    assert any(f'/ganbridge/ack s "{item}"' in line for line in dump.wait_for("/ganbridge/ack"))
    assert bridge.core.store.latest_rating(item) == 1


def test_a_live_preview_file_is_written_whole_and_removed_when_its_session_closes(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/live/open", "ssisisi", "texture", "width", 32, "height", 32, "seed", 3)
    frame = next(x for x in dump.wait_for("/ganbridge/live/frame") if x.startswith("/ganbridge/live/frame"))
    live, path = re.findall(r'"([^"]*)"', frame)
    first = Path(path).read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and Path(path).parent == bridge.core.settings.output_dir / "live"
    oscsend(bridge.osc_port, "/ganbridge/live/slider", "sif", live, 0, 3.0)
    deadline = time.monotonic() + 30
    while Path(path).read_bytes() == first:  # replaced whole, so a reader never sees half a frame
        assert time.monotonic() < deadline, "the preview never changed after a slider move"
        time.sleep(0.05)
    oscsend(bridge.osc_port, "/ganbridge/live/close", "s", live)
    dump.wait_for("/ganbridge/live/closed")
    assert not Path(path).exists() and not list(Path(path).parent.glob("*.part"))


def test_unparseable_type_tags_get_an_error_reply(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/generate", "S", "texture")  # a symbol: python-osc would misparse it
    oscsend(bridge.osc_port, "/ganbridge/generate", "c", "x")
    lines = dump.wait_for("unsupported OSC type tag")
    errors = [line for line in lines if line.startswith("/ganbridge/error")]
    assert len(errors) >= 1 and "bad_message" in errors[0] and "'S'" in errors[0]
    dump.wait_for("'c'")
    # the door is still up
    oscsend(bridge.osc_port, "/ganbridge/ping")
    dump.wait_for("/ganbridge/pong")


@pytest.mark.parametrize(
    ("address", "types", "values", "code"),
    [
        ("/ganbridge/teleport", "", (), "unknown_type"),
        ("/elsewhere/ping", "", (), "invalid_params"),
        ("/ganbridge/generate", "s", ("nope",), "unknown_generator"),
        ("/ganbridge/generate", "ssi", ("texture", "width", 20), "invalid_params"),
        ("/ganbridge/generate", "ss", ("texture", "width"), "invalid_params"),
        ("/ganbridge/feedback", "sf", ("missing", 1.0), "unknown_item"),
        ("/ganbridge/feedback", "sf", ("missing", 0.5), "invalid_params"),
        ("/ganbridge/cancel", "s", ("osc999",), "unknown_request"),
        ("/ganbridge/reply_to", "s", ("x",), "invalid_params"),
        ("/ganbridge/set", "ssi", ("nope", "width", 64), "unknown_generator"),
        ("/ganbridge/set", "ssi", ("texture", "widht", 64), "invalid_params"),
    ],
)
def test_bad_osc_messages_get_error_replies(bridge, dump, address, types, values, code):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, address, types, *values)
    lines = dump.wait_for("/ganbridge/error")
    assert code in next(line for line in lines if line.startswith("/ganbridge/error"))


def test_steer_and_cancel_over_osc(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/generate", "ssisisi", "texture", "width", 512, "height", 512, "count", 16)
    job = dump.wait_for("/ganbridge/accepted")[-1].split('"')[1]
    oscsend(bridge.osc_port, "/ganbridge/cancel", "s", job)
    dump.wait_for("/ganbridge/cancelled")
    oscsend(bridge.osc_port, "/ganbridge/steer", "ssi", "texture", "osc-session", 2)
    lines = dump.wait_for("/ganbridge/done")
    assert sum(1 for line in lines if line.startswith("/ganbridge/result")) == 2


def _reply_to(port: int) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder("/ganbridge/reply_to")
    b.add_arg(port, "i")
    return b.build().dgram


def test_burst_of_pings_all_answered(bridge, tmp_path):
    """A control-surface burst: 500 messages from one socket, all answered (no drops)."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    ping = OscMessageBuilder("/ganbridge/ping").build().dgram
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    # reply_to holds per host, and earlier tests pointed it elsewhere: point it at this socket
    rx.sendto(_reply_to(rx.getsockname()[1]), ("127.0.0.1", bridge.osc_port))
    assert rx.recvfrom(65536)[0].startswith(b"/ganbridge/reply_to")
    for _ in range(500):
        rx.sendto(ping, ("127.0.0.1", bridge.osc_port))
    got = 0
    try:
        while got < 500:
            data, _ = rx.recvfrom(65536)
            got += data.startswith(b"/ganbridge/pong")
    except TimeoutError:
        pass
    rx.close()
    assert got == 500


class RawOscClient:
    """A plain UDP socket that sends bytes as they are and reads what the bridge answers."""

    def __init__(self, port: int):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        # reply_to holds per host, and earlier tests pointed it elsewhere: point it at this socket
        self.send(_reply_to(self.sock.getsockname()[1]))
        assert self.replies()[0].address == "/ganbridge/reply_to"

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def replies(self, quiet: float = 0.5) -> list:
        """Everything the bridge sends until it has been quiet for `quiet` seconds."""
        from ganbridge.doors.osc_wire import parse_datagram

        out = []
        self.sock.settimeout(quiet)
        try:
            while True:
                out += parse_datagram(self.sock.recvfrom(65536)[0])
        except TimeoutError:
            return out

    def close(self) -> None:
        self.sock.close()


def test_malformed_datagrams_get_one_error_each_and_none_of_them_runs(bridge):
    """The datagram that hung the old door (a bundle element of size -4), a broken bundle with a
    valid generate beside the fault, and a truncated float: one error each, nothing run."""
    import struct

    from ganbridge.doors.osc_wire import encode_bundle, encode_message

    generate = encode_message("/ganbridge/generate", "texture", "width", 64, "height", 64)
    bad = [
        bytes.fromhex("2362756e646c65000000000000000000fffffffc"),
        encode_bundle(generate) + struct.pack(">i", -8),
        encode_bundle(generate, b"#bundleX" + bytes(8)),
        encode_message("/ganbridge/ping") + b"\x00\x00\x00\x00",
        encode_bundle(*[encode_message("/ganbridge/ping")] * 3000)[:60000],
    ]
    client = RawOscClient(bridge.osc_port)
    try:
        for data in bad:
            client.send(data)
            replies = client.replies()
            assert [m.address for m in replies] == ["/ganbridge/error"], data[:40].hex()
            assert replies[0].args[1] == "bad_message"
        client.send(encode_message("/ganbridge/ping"))
        assert [m.address for m in client.replies()] == ["/ganbridge/pong"]
    finally:
        client.close()


def test_a_truncated_rating_is_refused_and_the_stored_rating_kept(bridge):
    from ganbridge.doors.osc_wire import encode_message

    client = RawOscClient(bridge.osc_port)
    try:
        client.send(encode_message("/ganbridge/generate", "texture", "width", 64, "height", 64, "seed", 3))
        item = next(m.args[1] for m in client.replies(2.0) if m.address == "/ganbridge/result")
        client.send(encode_message("/ganbridge/feedback", item, 1.0))
        assert [m.address for m in client.replies()] == ["/ganbridge/ack"]
        truncated = encode_message("/ganbridge/feedback", item, 1.0)[:-4]  # the float's bytes left out
        client.send(truncated)
        replies = client.replies()
        assert [(m.address, m.args[1]) for m in replies] == [("/ganbridge/error", "bad_message")]
        assert "argument 'f'" in replies[0].args[2]
        assert bridge.core.store.latest_rating(item) == 1
    finally:
        client.close()
