"""Protocol v1: the one source of truth for every message on the wire.

Requests are parsed here into pydantic models; replies are built from the models here too, so
`ganbridge protocol --schema` prints exactly what the doors speak. Nothing in this module knows
about sockets.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1
# What a client may ask for in `hello` beyond protocol v1 (see docs/reference/protocol.md):
# "binary": payloads in binary frames instead of base64 JSON; "live": live sessions.
EXTENSIONS = ("binary", "live")
MAX_LIVE_VALUE = 8.0  # a live slider's reach, in unit moves along its direction
# An error reply stays small whatever the request was: a message of 1 MB with 60,000 unknown
# keys must not make a 4 MB answer. Past these, text is cut and details are counted, not listed.
MAX_ERROR_DETAILS = 20
MAX_ERROR_TEXT = 500


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_PARAMS = "invalid_params"
    UNKNOWN_GENERATOR = "unknown_generator"
    UNKNOWN_ITEM = "unknown_item"
    UNKNOWN_REQUEST = "unknown_request"
    UNAUTHORIZED = "unauthorized"
    BUSY = "busy"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # needs something this machine lacks (a MIDI system, FluidSynth)
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A request that gets an `error` reply; never closes the connection except `unauthorized`."""

    def __init__(self, code: ErrorCode, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


RequestId = Annotated[str, Field(min_length=1, max_length=128)]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]
Session = Annotated[str, Field(min_length=1, max_length=128)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- client -> bridge ------------------------------------------------------------------------


class Hello(_Message):
    type: Literal["hello"]
    id: RequestId | None = None
    protocol: int = PROTOCOL_VERSION
    client: str = Field("", max_length=200)
    token: str | None = Field(None, max_length=512)
    extensions: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=16, description=f"what the client can take beyond v1: {', '.join(EXTENSIONS)}"
    )


class ListGenerators(_Message):
    type: Literal["generators"]
    id: RequestId


class Generate(_Message):
    type: Literal["generate"]
    id: RequestId
    generator: str = Field(max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(1, ge=1)
    seed: Seed | None = None
    session: Session | None = None


class Variations(_Message):
    type: Literal["variations"]
    id: RequestId
    item: ItemId
    strength: float = Field(0.3, ge=0.0, le=1.0)
    count: int = Field(4, ge=1)
    seed: Seed | None = None
    session: Session | None = None


class Interpolate(_Message):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["interpolate"]
    id: RequestId
    from_: ItemId = Field(alias="from")
    to: ItemId
    steps: int = Field(8, ge=2)
    session: Session | None = None


class Feedback(_Message):
    type: Literal["feedback"]
    id: RequestId
    item: ItemId
    rating: Literal[-1, 0, 1] = Field(description="-1 dislike, 0 neutral (clears), +1 like")
    session: Session | None = None


class Steer(_Message):
    type: Literal["steer"]
    id: RequestId
    generator: str = Field(max_length=128)
    session: Session
    count: int = Field(4, ge=1)
    explore: float = Field(
        0.25, ge=0.0, le=1.0, description="0: small steps from the best, no new categories; 1: random samples"
    )
    params: dict[str, Any] | None = Field(None, description="overrides of the params taken from liked items")
    seed: Seed | None = None


class Cancel(_Message):
    type: Literal["cancel"]
    id: RequestId


class GetItem(_Message):
    type: Literal["item"]
    id: RequestId
    item: ItemId
    data: bool = False  # also send the file itself, as stored (recipe and credentials inside)


class LiveOpen(_Message):
    type: Literal["live_open"]
    id: RequestId = Field(description="names the live session in every later message")
    generator: str | None = Field(None, max_length=128, description="for a fresh latent (without `item`)")
    item: ItemId | None = Field(None, description="start from this item's latent and params")
    toward: ItemId | None = Field(None, description="a second item of the same shapes: the blend slider's far end")
    params: dict[str, Any] | None = Field(None, description="the params to render with (with `item`: overrides)")
    seed: Seed | None = Field(None, description="the fresh latent's seed (without `item`)")


SliderValue = Annotated[float, Field(ge=-MAX_LIVE_VALUE, le=MAX_LIVE_VALUE)]


class LiveMove(_Message):
    type: Literal["live_move"]
    id: RequestId = Field(description="the live session's id")
    seq: int | None = Field(
        None, ge=0, le=2**53, description="the client's number for this move, repeated by its frame"
    )
    values: list[SliderValue] | None = Field(
        None, max_length=64, description="every slider's position, in direction order (missing ones 0)"
    )
    blend: float | None = Field(None, ge=0.0, le=1.0, description="how far toward the `toward` item")
    params: dict[str, Any] | None = Field(None, description="params overrides that keep the latent's shapes")


class LiveCommit(_Message):
    type: Literal["live_commit"]
    id: RequestId = Field(description="this request's own id: answered as a generate of one item")
    live: RequestId = Field(description="the live session whose newest state becomes an item")
    onto: ItemId | None = Field(
        None,
        description="apply the sliders (and the params the moves changed) to this item of the same model instead, "
        "at its own size: a session that previews a large item small commits it at full size",
    )
    session: Session | None = None


class LiveClose(_Message):
    type: Literal["live_close"]
    id: RequestId = Field(description="the live session's id")


Request = Annotated[
    Hello
    | ListGenerators
    | Generate
    | Variations
    | Interpolate
    | Feedback
    | Steer
    | Cancel
    | GetItem
    | LiveOpen
    | LiveMove
    | LiveCommit
    | LiveClose,
    Field(discriminator="type"),
]
REQUEST_TYPES = (
    "hello", "generators", "generate", "variations", "interpolate", "feedback", "steer", "cancel", "item",
    "live_open", "live_move", "live_commit", "live_close",
)  # fmt: skip
_request_adapter: TypeAdapter[Request] = TypeAdapter(Request)


# --- bridge -> client ------------------------------------------------------------------------


class TrainingData(BaseModel):
    source: str
    license: str


class CheckpointInfo(BaseModel):
    name: str
    sha256: str
    data_sha256: str | None = Field(None, description="the hash of the model card's list of training files")
    data: TrainingData | None = Field(None, description="what the model card says it was trained on")


class GeneratorInfo(BaseModel):
    name: str
    kind: str
    description: str
    checkpoint: CheckpointInfo
    checkpoints: list[CheckpointInfo]
    device: str
    params_schema: dict[str, Any]
    outputs: list[str]
    backend: dict[str, Any] | None = Field(
        None, description="where batches run: kind local or ray; for ray, the address and each checkpoint's replicas"
    )


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")
    item: str
    generator: str
    seed: int | None
    format: str
    mime: str
    data: str = Field(description="base64 payload")
    file: str | None = Field(None, description="where the bridge wrote it, on the bridge's machine")
    width: int | None = None
    height: int | None = None
    maps: dict[str, dict[str, str]] | None = Field(None, description="name -> {format, mime, data}")


class Welcome(BaseModel):
    type: Literal["welcome"] = "welcome"
    id: str | None = None
    server: str
    protocol: int
    generators: list[GeneratorInfo]
    limits: dict[str, int]
    extensions: list[str] | None = Field(None, description="what the bridge grants of those `hello` asked for")


class DirectionInfo(BaseModel):
    name: str
    change: float = Field(description="how much the output changes per unit move (larger: a stronger slider)")


class LiveOpened(BaseModel):
    type: Literal["live_opened"] = "live_opened"
    id: str
    generator: str
    params: dict[str, Any] = Field(description="the params frames are rendered with")
    directions: list[DirectionInfo] = Field(description="one slider each, in the order of `live_move` values")
    toward: str | None = Field(None, description="the blend slider's far end, when the session has one")
    note: str | None = Field(None, description="why there are no sliders, when there are none")


class LiveFrame(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["live_frame"] = "live_frame"
    id: str
    seq: int = Field(description="the move this frame shows (moves after it are not in it yet)")
    format: str
    mime: str
    data: str | list[int] = Field(description="base64 payload; in a binary frame, [offset, length] of its bytes")
    width: int | None = None
    height: int | None = None
    render_ms: float
    maps: dict[str, dict[str, Any]] | None = None


class LiveClosed(BaseModel):
    type: Literal["live_closed"] = "live_closed"
    id: str


class GeneratorsReply(BaseModel):
    type: Literal["generators"] = "generators"
    id: str
    generators: list[GeneratorInfo]


class Accepted(BaseModel):
    type: Literal["accepted"] = "accepted"
    id: str
    position: int = Field(description="work units queued ahead of this request")


class Queued(BaseModel):
    type: Literal["queued"] = "queued"
    id: str
    position: int = Field(description="work units now queued ahead of this request, which has not started")


class Progress(BaseModel):
    type: Literal["progress"] = "progress"
    id: str
    done: int
    total: int


class Result(BaseModel):
    type: Literal["result"] = "result"
    id: str
    items: list[Item]


class Done(BaseModel):
    type: Literal["done"] = "done"
    id: str


class Ack(BaseModel):
    type: Literal["ack"] = "ack"
    id: str


class Cancelled(BaseModel):
    type: Literal["cancelled"] = "cancelled"
    id: str


class ItemReply(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["item"] = "item"
    id: str
    item: str
    generator: str
    checkpoint: CheckpointInfo = Field(description="`data` while that checkpoint is installed")
    seed: int | None
    params: dict[str, Any]
    format: str
    created: float
    session: str | None
    parents: list[str]
    origin: str
    rating: int | None
    file: str
    data: str | None = Field(None, description="with `data: true`: the file as stored, base64")
    maps: dict[str, str] | None = Field(None, description="with `data: true`: a texture's maps, base64")
    sidecar: str | None = Field(None, description="with `data: true`: a MIDI file's C2PA manifest, base64")


class Error(BaseModel):
    type: Literal["error"] = "error"
    id: str | None
    code: ErrorCode
    message: str
    details: list[dict[str, Any]] | None = None


REPLIES = (
    Welcome, GeneratorsReply, Accepted, Queued, Progress, Result, Done, Ack, Cancelled, ItemReply, Error,
    LiveOpened, LiveFrame, LiveClosed,
)  # fmt: skip
Reply = (
    Welcome
    | GeneratorsReply
    | Accepted
    | Queued
    | Progress
    | Result
    | Done
    | Ack
    | Cancelled
    | ItemReply
    | Error
    | LiveOpened
    | LiveFrame
    | LiveClosed
)
_reply_adapter: TypeAdapter = TypeAdapter(Annotated[Reply, Field(discriminator="type")])


def validate_reply(msg: dict) -> BaseModel:
    """Check a bridge -> client message against its model (raises pydantic.ValidationError)."""
    return _reply_adapter.validate_python(msg)


def shorten(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """Text for an error reply: cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def error_message(request_id: str | None, err: ProtocolError) -> dict:
    msg: dict[str, Any] = {"type": "error", "id": request_id, "code": err.code.value, "message": shorten(err.message)}
    if err.details:
        details = err.details
        # One entry more is the count that validation_details already puts last.
        if len(details) > MAX_ERROR_DETAILS + 1:
            left_out = len(details) - MAX_ERROR_DETAILS
            details = [
                *details[:MAX_ERROR_DETAILS],
                {"path": "(more)", "message": f"{left_out} more error(s) left out"},
            ]
        msg["details"] = [{k: shorten(v, 200) if isinstance(v, str) else v for k, v in d.items()} for d in details]
    return msg


def field_problem(err: Mapping[str, Any]) -> str:
    """One pydantic error's message; a validator's own sentence without the "Value error, "
    pydantic puts before it."""
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ") if err.get("type") == "value_error" else msg


def validation_details(e: ValidationError, prefix: str = "") -> list[dict]:
    """pydantic errors -> [{path, message}] with dotted field paths a person can read. Only the
    first MAX_ERROR_DETAILS are built; the rest are counted in one last entry."""
    out = []
    errors = e.errors(include_url=False, include_context=False, include_input=False)
    for err in errors[:MAX_ERROR_DETAILS]:
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in REQUEST_TYPES and prefix == "":
            loc = loc[1:]  # drop the discriminator tag pydantic puts first
        path = ".".join(([prefix] if prefix else []) + loc)
        out.append({"path": path or "(message)", "message": field_problem(err)})
    if len(errors) > MAX_ERROR_DETAILS:
        out.append({"path": "(more)", "message": f"{len(errors) - MAX_ERROR_DETAILS} more error(s) left out"})
    return out


def decode_json(raw: str | bytes) -> dict:
    """Raw frame -> JSON object, or ProtocolError(bad_message)."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not valid JSON: {e}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"a message must be a JSON object, not {type(obj).__name__}")
    return obj


def request_id_of(obj: dict) -> str | None:
    rid = obj.get("id")
    return rid if isinstance(rid, str) else None


def parse_request(obj: dict) -> Request:
    """JSON object -> typed request, or ProtocolError with the right code."""
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, 'a message needs a "type" field')
    if kind not in REQUEST_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {shorten(repr(kind), 60)}; known: {', '.join(REQUEST_TYPES)}"
        )
    try:
        return _request_adapter.validate_python(obj)
    except ValidationError as e:
        details = validation_details(e)
        summary = "; ".join(f"{d['path']}: {d['message']}" for d in details[:3])
        raise ProtocolError(ErrorCode.INVALID_PARAMS, f"invalid {kind} message: {summary}", details) from None


def protocol_schema() -> dict:
    """JSON Schema of every request and reply, for `ganbridge protocol --schema`."""
    requests = {m.__name__: m.model_json_schema(by_alias=True) for m in get_args(get_args(Request)[0])}
    replies = {m.__name__: m.model_json_schema() for m in REPLIES}
    return {
        "protocol": PROTOCOL_VERSION,
        "requests": requests,
        "replies": replies,
        "error_codes": [c.value for c in ErrorCode],
    }


# --- replies on the wire -----------------------------------------------------------------------

BINARY_MAGIC = b"GBF1"
_HEADER_LENGTH = struct.Struct(">I")
BINARY_TYPES = ("result", "live_frame")  # the replies that carry payloads


def _base64(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} in a reply")


def encode_text(msg: dict) -> str:
    """A reply as one JSON text frame; payloads given as bytes become base64."""
    return orjson.dumps(msg, default=_base64).decode()


def encode_reply(msg: dict, binary: bool) -> str | bytes:
    """A reply as it goes on the wire: JSON text, or, for a client granted "binary", a payload
    reply (BINARY_TYPES) as one binary frame: BINARY_MAGIC, the header's length (4 bytes, big
    endian), the header (the message as JSON, each payload's `data` replaced by [offset, length]
    into what follows) and the payloads' bytes, in order."""
    if not binary or msg.get("type") not in BINARY_TYPES:
        return encode_text(msg)
    payloads: list[bytes] = []
    offset = 0

    def take(holder: dict) -> dict:
        nonlocal offset
        data = holder.get("data")
        if data is None:
            return holder
        raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
        payloads.append(raw)
        holder = {**holder, "data": [offset, len(raw)]}
        offset += len(raw)
        maps = holder.get("maps")
        if isinstance(maps, dict):
            holder["maps"] = {name: take(m) for name, m in maps.items()}
        return holder

    header = take(msg) if msg["type"] == "live_frame" else {**msg, "items": [take(it) for it in msg["items"]]}
    head = orjson.dumps(header)
    return b"".join([BINARY_MAGIC, _HEADER_LENGTH.pack(len(head)), head, *payloads])


def decode_binary(frame: bytes) -> dict:
    """A binary frame (encode_reply) -> the reply, each payload's `data` as bytes."""
    if frame[:4] != BINARY_MAGIC or len(frame) < 8:
        raise ValueError("not a ganbridge binary frame")
    (length,) = _HEADER_LENGTH.unpack_from(frame, 4)
    header = orjson.loads(frame[8 : 8 + length])
    body = memoryview(frame)[8 + length :]

    def give(holder: dict) -> dict:
        start, size = holder["data"]
        holder["data"] = bytes(body[start : start + size])
        for m in (holder.get("maps") or {}).values():
            give(m)
        return holder

    if header["type"] == "live_frame":
        return give(header)
    header["items"] = [give(it) for it in header["items"]]
    return header
