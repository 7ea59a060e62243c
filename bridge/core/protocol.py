"""Protocol v1: the one source of truth for every message on the wire.

Requests are parsed here into pydantic models; replies are built from the models here too, so
`ganbridge protocol --schema` prints exactly what the doors speak. Nothing in this module knows
about sockets.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1
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


Request = Annotated[
    Hello | ListGenerators | Generate | Variations | Interpolate | Feedback | Steer | Cancel | GetItem,
    Field(discriminator="type"),
]
REQUEST_TYPES = ("hello", "generators", "generate", "variations", "interpolate", "feedback", "steer", "cancel", "item")
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


REPLIES = (Welcome, GeneratorsReply, Accepted, Queued, Progress, Result, Done, Ack, Cancelled, ItemReply, Error)
Reply = Welcome | GeneratorsReply | Accepted | Queued | Progress | Result | Done | Ack | Cancelled | ItemReply | Error
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
        out.append({"path": path or "(message)", "message": err["msg"]})
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
