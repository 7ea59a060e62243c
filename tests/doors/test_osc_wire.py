"""The strict OSC reader, without sockets: every fault is refused whole, nothing is misread."""

from __future__ import annotations

import random
import struct

import pytest
from pythonosc.osc_message import OscMessage as PythonOscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from ganbridge.doors.osc_wire import (
    MAX_DEPTH,
    MAX_MESSAGES,
    OscFormatError,
    OscMessage,
    encode_bundle,
    encode_message,
    parse_datagram,
)

PING = encode_message("/ganbridge/ping")
FEEDBACK = encode_message("/ganbridge/feedback", "abc123", 1.0)


def bundle_of(*elements: bytes) -> bytes:
    return encode_bundle(*elements)


def test_a_message_reads_back_what_was_written():
    data = encode_message("/ganbridge/generate", "texture", "width", 512, "scale", 0.5, "loop", True, "x", False)
    assert parse_datagram(data) == [
        OscMessage("/ganbridge/generate", ("texture", "width", 512, "scale", 0.5, "loop", True, "x", False))
    ]


def test_python_osc_and_this_reader_agree_on_what_python_osc_writes():
    builder = OscMessageBuilder("/ganbridge/set")
    for value in ("music", "tempo", 96, 0.25, "é ü", True):
        builder.add_arg(value)
    data = builder.build().dgram
    assert parse_datagram(data) == [OscMessage("/ganbridge/set", tuple(PythonOscMessage(data).params))]


def test_64_bit_numbers_are_read():
    data = _message("/a", ",hd", struct.pack(">q", 2**40) + struct.pack(">d", 1.5))
    assert parse_datagram(data)[0].args == (2**40, 1.5)
    assert parse_datagram(encode_message("/a", 2**40))[0].args == (2**40,)


def test_a_message_without_type_tags_has_no_arguments():
    assert parse_datagram(b"/ganbridge/ping\x00") == [OscMessage("/ganbridge/ping", ())]


def test_bundles_nested_in_bundles_give_their_messages_in_order():
    data = bundle_of(PING, bundle_of(FEEDBACK, PING), encode_message("/x", 1))
    assert [m.address for m in parse_datagram(data)] == [
        "/ganbridge/ping",
        "/ganbridge/feedback",
        "/ganbridge/ping",
        "/x",
    ]


def _message(address: str, tags: str, payload: bytes) -> bytes:
    def pad(raw: bytes) -> bytes:
        return raw + b"\x00" * (4 - len(raw) % 4)

    return pad(address.encode()) + pad(tags.encode()) + payload


def _bundle_with_size(size: int, body: bytes = b"") -> bytes:
    return b"#bundle\x00" + bytes(8) + struct.pack(">i", size) + body


BAD = {
    # The datagram that hung the old door: python-osc stepped backwards through it for ever.
    "element size -4": bytes.fromhex("2362756e646c65000000000000000000fffffffc"),
    "element size -8": _bundle_with_size(-8),
    "element size -12": _bundle_with_size(-12),
    "element size 0": _bundle_with_size(0),
    "element size not a multiple of 4": _bundle_with_size(6, PING[:6] + b"\x00\x00"),
    "element size past the end": _bundle_with_size(len(PING) + 4, PING),
    "element neither message nor bundle": _bundle_with_size(8, b"ganbridg"),
    "#bundleX": b"#bundleX" + bytes(8) + struct.pack(">i", len(PING)) + PING,
    "bundle without a time tag": b"#bundle\x00",
    "half an element size": b"#bundle\x00" + bytes(8) + b"\x00\x00\x00\x00"[:2] + b"\x00\x00",
    "valid sibling next to a broken one": bundle_of(PING) + struct.pack(">i", -4),
    "empty": b"",
    "not a multiple of 4": PING + b"\x00",
    "no leading slash": _message("ganbridge/ping", ",", b""),
    "address without NUL": b"/ganbridge/ping!",
    "tags without comma": _message("/a", "i", struct.pack(">i", 1)),
    "truncated float": _message("/ganbridge/feedback", ",sf", b"abc\x00"),
    "truncated int": _message("/a", ",i", b""),
    "truncated double": _message("/a", ",d", b"\x00\x00\x00\x00"),
    "truncated string": _message("/a", ",s", b"abcd"),
    "non-NUL padding in the address": b"/ab\x00/cd\x00xyz" + b",\x00\x00\x00",
    "non-NUL padding in a string": _message("/a", ",s", b"ab\x00x"),
    "bytes after the last argument": _message("/a", ",i", struct.pack(">ii", 1, 2)),
    "bytes after a message without arguments": _message("/a", ",", b"\x00\x00\x00\x00"),
    "unsupported tag S": _message("/a", ",S", b"ab\x00\x00"),
    "unsupported tag c": _message("/a", ",c", struct.pack(">i", 65)),
    "unsupported tag I": _message("/a", ",I", b""),
    "unsupported array": _message("/a", ",[i]", struct.pack(">i", 1)),
    "blob": _message("/a", ",b", struct.pack(">i", 0)),
    "invalid UTF-8 string": _message("/a", ",s", b"\xff\xfe\x00\x00"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_fault_refuses_the_whole_datagram(name):
    with pytest.raises(OscFormatError):
        parse_datagram(BAD[name])


def test_nesting_is_limited():
    data = PING
    for _ in range(MAX_DEPTH):
        data = bundle_of(data)
    assert parse_datagram(data) == [OscMessage("/ganbridge/ping", ())]
    with pytest.raises(OscFormatError, match="nested"):
        parse_datagram(bundle_of(data))


def test_messages_per_datagram_are_limited():
    assert len(parse_datagram(bundle_of(*[PING] * MAX_MESSAGES))) == MAX_MESSAGES
    with pytest.raises(OscFormatError, match="messages in one datagram"):
        parse_datagram(bundle_of(*[PING] * (MAX_MESSAGES + 1)))
    with pytest.raises(OscFormatError, match="messages in one datagram"):
        parse_datagram(bundle_of(bundle_of(*[PING] * MAX_MESSAGES), PING))


def test_the_error_says_where():
    with pytest.raises(OscFormatError, match="byte 16: element size -4"):
        parse_datagram(BAD["element size -4"])
    with pytest.raises(OscFormatError, match="/ganbridge/feedback: argument 'f' at byte 28"):
        parse_datagram(BAD["truncated float"])


def _mutate(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.4 and raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif choice < 0.6:
            del raw[rng.randrange(len(raw) + 1) :]
        elif choice < 0.8 and len(raw) >= 4:
            pos = rng.randrange(0, len(raw) - 3) & ~3
            raw[pos : pos + 4] = struct.pack(">i", rng.choice([-4, -8, 0, 3, 2**31 - 1, -(2**31), 4, 8]))
        else:
            raw += bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 8])))
    return bytes(raw)


def test_fuzzed_datagrams_either_parse_or_raise_the_one_error():
    """Seeded mutations of valid datagrams: nothing but OscFormatError escapes (how fast is in
    `ganbridge bench --only robustness`)."""
    rng = random.Random(16)
    seeds = [PING, FEEDBACK, bundle_of(PING, FEEDBACK), bundle_of(bundle_of(PING)), encode_message("/a", 1, 2.0, "s")]
    refused = 0
    for _ in range(5000):
        data = _mutate(rng, rng.choice(seeds))
        try:
            for message in parse_datagram(data):
                assert message.address.startswith("/")
                assert len(encode_message(message.address, *message.args)) <= len(data) + 16
        except OscFormatError:
            refused += 1
    assert 2500 < refused < 5000  # most mutations break a datagram, some leave it valid


def test_a_datagram_over_the_message_limit_is_refused_before_it_is_read_to_the_end():
    long_string = encode_message("/ganbridge/set", "texture", "model", "x" * 900)
    inner = bundle_of(*[long_string] * 8)
    for _ in range(MAX_DEPTH - 2):
        inner = bundle_of(inner)  # with the outer bundle, as deep as allowed
    data = bundle_of(*[inner] * 9, b"#bundle\x00" + bytes(8) + struct.pack(">i", -4))
    with pytest.raises(OscFormatError, match="more than 64 messages"):
        parse_datagram(data)
