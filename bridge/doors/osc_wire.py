"""OSC 1.0 datagrams <-> (address, arguments), strictly and without sockets.

The door never lets python-osc parse what a stranger sent: its bundle parser trusts the element
sizes it reads (a 20-byte datagram with an element size of -4 makes it step backwards for ever),
it reads a missing float as 0.0, and it skips type tags it does not know without consuming their
bytes. This reader checks a whole datagram before anything of it runs, in one forward pass (so a
datagram of any size is read in well under a millisecond), and refuses it whole at the first
fault, with a message saying where:

- the datagram is a non-empty multiple of 4 bytes;
- a bundle starts with exactly ``#bundle\\0`` and an 8-byte time tag; each element's size is
  positive, a multiple of 4 and inside its bundle; each element is a message or a bundle;
- bundles nest at most MAX_DEPTH deep and hold at most MAX_MESSAGES messages in all;
- a message's address starts with ``/``; its type tags start with ``,`` and are ones we take;
- every argument's bytes are present, strings are valid UTF-8, padding is NUL, and nothing
  follows the last argument.

Time tags are read and ignored: every message runs on arrival, as python-osc and most DAWs do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

BUNDLE_TAG = b"#bundle\x00"
MAX_DEPTH = 8  # bundles inside bundles; real senders use one level, rarely two
MAX_MESSAGES = 64  # in one datagram, nested bundles included
# i, f, s, T and F are what the protocol promises (docs/reference/protocol.md); h (int64) and d (float64) are taken as numbers
# too, since Max and SuperCollider send them. Blobs, symbols, chars, arrays and the rest are not.
ACCEPTED_TAGS = frozenset("ifsTFhd")
_FIXED = {"i": (4, ">i"), "f": (4, ">f"), "h": (8, ">q"), "d": (8, ">d")}


class OscFormatError(ValueError):
    """The datagram is not well-formed OSC 1.0 (or uses what this bridge does not take)."""


@dataclass(frozen=True)
class OscMessage:
    address: str
    args: tuple[Any, ...]


def parse_datagram(data: bytes) -> list[OscMessage]:
    """Every message in a datagram, in order; OscFormatError if any part of it is wrong."""
    if not data:
        raise OscFormatError("empty datagram")
    if len(data) % 4:
        raise OscFormatError(f"a datagram's size must be a multiple of 4, not {len(data)}")
    messages: list[OscMessage] = []
    _read_element(data, 0, len(data), 0, messages)
    return messages


def _read_element(data: bytes, start: int, end: int, depth: int, out: list[OscMessage]) -> None:
    first = data[start : start + 1]
    if first == b"/":
        if len(out) >= MAX_MESSAGES:
            raise OscFormatError(f"more than {MAX_MESSAGES} messages in one datagram")
        out.append(_read_message(data, start, end))
    elif first == b"#":
        _read_bundle(data, start, end, depth + 1, out)
    else:
        raise OscFormatError(f"byte {start}: an element must start with '/' (a message) or '#bundle' (a bundle)")


def _read_bundle(data: bytes, start: int, end: int, depth: int, out: list[OscMessage]) -> None:
    if data[start : start + 8] != BUNDLE_TAG:
        raise OscFormatError(f"byte {start}: a bundle must start with exactly '#bundle\\0'")
    if depth > MAX_DEPTH:
        raise OscFormatError(f"bundles nested more than {MAX_DEPTH} deep")
    pos = start + 16  # the tag and the 8-byte time tag
    if pos > end:
        raise OscFormatError(f"byte {start}: a bundle needs an 8-byte time tag")
    while pos < end:
        if pos + 4 > end:
            raise OscFormatError(f"byte {pos}: an element size needs 4 bytes")
        (size,) = struct.unpack_from(">i", data, pos)
        if size <= 0 or size % 4:
            raise OscFormatError(f"byte {pos}: element size {size} is not a positive multiple of 4")
        if pos + 4 + size > end:
            raise OscFormatError(f"byte {pos}: element size {size} runs past the end of its bundle")
        _read_element(data, pos + 4, pos + 4 + size, depth, out)
        pos += 4 + size


def _read_message(data: bytes, start: int, end: int) -> OscMessage:
    address, pos = _read_string(data, start, end, "the address")
    if pos == end:  # OSC 1.0 lets old senders leave out the type tags of a message without arguments
        return OscMessage(address, ())
    tags, pos = _read_string(data, pos, end, "the type tags")
    if not tags.startswith(","):
        raise OscFormatError(f"{address}: the type tag string must start with ','")
    bad = sorted(set(tags[1:]) - ACCEPTED_TAGS)
    if bad:
        raise OscFormatError(f"{address}: unsupported OSC type tag(s) {''.join(bad)!r}; use i, f, s, T/F (also h, d)")
    args: list[Any] = []
    for tag in tags[1:]:
        value, pos = _read_argument(data, pos, end, tag, address)
        args.append(value)
    if pos != end:
        raise OscFormatError(f"{address}: {end - pos} byte(s) after the last argument")
    return OscMessage(address, tuple(args))


def _read_argument(data: bytes, pos: int, end: int, tag: str, address: str) -> tuple[Any, int]:
    if tag == "T":
        return True, pos
    if tag == "F":
        return False, pos
    if tag == "s":
        return _read_string(data, pos, end, f"a string argument of {address}")
    size, fmt = _FIXED[tag]
    if pos + size > end:
        raise OscFormatError(f"{address}: argument '{tag}' at byte {pos} needs {size} bytes; the message ends first")
    (value,) = struct.unpack_from(fmt, data, pos)
    return value, pos + size


def _read_string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """A NUL-terminated string padded with NULs to a multiple of 4 bytes."""
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise OscFormatError(f"byte {pos}: {what} has no terminating NUL")
    padded_end = (nul + 4) & ~3
    if padded_end > end:
        raise OscFormatError(f"byte {pos}: {what} is not padded to a multiple of 4 bytes")
    if data[nul:padded_end].count(0) != padded_end - nul:
        raise OscFormatError(f"byte {pos}: {what} is padded with bytes other than NUL")
    try:
        text = data[pos:nul].decode("utf-8")
    except UnicodeDecodeError:
        raise OscFormatError(f"byte {pos}: {what} is not valid UTF-8") from None
    return text, padded_end


# --- writing ---------------------------------------------------------------------------------


def _pad(raw: bytes) -> bytes:
    return raw + b"\x00" * (4 - len(raw) % 4)  # at least one NUL ends the string


def encode_message(address: str, *args: Any) -> bytes:
    """One OSC message: bool -> T/F, int -> i (h when it needs 64 bits), float -> f, else s."""
    tags, payload = [","], []
    for arg in args:
        if isinstance(arg, bool):
            tags.append("T" if arg else "F")
        elif isinstance(arg, int):
            wide = not -(2**31) <= arg < 2**31
            tags.append("h" if wide else "i")
            payload.append(struct.pack(">q" if wide else ">i", arg))
        elif isinstance(arg, float):
            tags.append("f")
            payload.append(struct.pack(">f", arg))
        else:
            tags.append("s")
            payload.append(_pad(str(arg).encode("utf-8")))
    return _pad(address.encode("utf-8")) + _pad("".join(tags).encode("ascii")) + b"".join(payload)


def encode_bundle(*elements: bytes, timetag: int = 1) -> bytes:
    """A bundle of already encoded messages or bundles (time tag 1: 'immediately')."""
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return BUNDLE_TAG + struct.pack(">Q", timetag) + body
