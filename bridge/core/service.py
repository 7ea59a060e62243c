"""BridgeCore: protocol v1 without sockets.

A door (WebSocket, OSC, a test) creates a `Client` with an `emit` callback and feeds it
messages through `handle`; everything the bridge says to that client comes back through
`emit` as plain dicts, possibly from a worker thread. `handle` may block briefly (SQLite),
so doors call it off their event loop.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from ganbridge import __version__
from ganbridge.core import provenance
from ganbridge.core.credentials import ContentCredentials, seal
from ganbridge.core.live import REQUEST_GRACE, LiveLimit, LiveRenderer, LiveSession, LiveState, moved
from ganbridge.core.protocol import (
    EXTENSIONS,
    PROTOCOL_VERSION,
    Cancel,
    ErrorCode,
    Feedback,
    Generate,
    GetItem,
    Hello,
    Interpolate,
    ListGenerators,
    LiveClose,
    LiveCommit,
    LiveMove,
    LiveOpen,
    ProtocolError,
    Steer,
    Variations,
    decode_json,
    error_message,
    parse_request,
    request_id_of,
    validation_details,
)
from ganbridge.core.scheduler import Job, JobScheduler, QueueFull, WorkUnit
from ganbridge.core.settings import Settings
from ganbridge.core.store import ItemRecord, ItemStore, SeenItem, new_item_id
from ganbridge.doors.midi import MidiPlayer, MidiUnavailable
from ganbridge.generators import latent as latent_ops
from ganbridge.generators import steering
from ganbridge.generators.base import Control, Generator, Output, Unavailable, seeded_rng
from ganbridge.generators.directions import shifted
from ganbridge.generators.gallery import Gallery

log = logging.getLogger("ganbridge.core")
MAX_STEERING_ITEMS = 128  # rated items (the 64 latest) and their unrated batch mates
Emit = Callable[[dict], None]


@dataclass(eq=False)
class Client:
    emit: Emit
    name: str = ""
    authorized: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    extensions: frozenset[str] = frozenset()  # granted in `hello`: what it can take beyond v1


def _random_seed() -> int:
    return secrets.randbelow(2**31)


class BridgeCore:
    def __init__(
        self,
        settings: Settings,
        generators: dict[str, Generator],
        store: ItemStore,
        scheduler: JobScheduler,
        player: MidiPlayer | None = None,
        credentials: ContentCredentials | None = None,
    ):
        self.settings = settings
        self.credentials = credentials  # None: files carry their recipe, unsigned
        self.generators = generators
        self.store = store
        self.scheduler = scheduler
        self.player = player
        self.steering_rows = steering.RowCache()
        self.live = LiveRenderer(
            lambda gen, params, latents: self.scheduler.executor.run(gen, params, latents),
            lambda timeout: self.scheduler.wait_until_idle(REQUEST_GRACE, timeout),
        )
        self._clients_lock = threading.Lock()
        self.clients: set[Client] = set()

    # -- connection lifecycle -------------------------------------------------------------
    def connect(self, emit: Emit, name: str = "") -> Client:
        client = Client(emit=emit, name=name, authorized=self.settings.token is None)
        with self._clients_lock:
            self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        """A client that goes away has its queued and running jobs cancelled."""
        with self._clients_lock:
            self.clients.discard(client)
        self.live.close_client(client.id)
        n = self.scheduler.cancel_client(client.id)
        if n:
            log.info("client %s disconnected; cancelled %d request(s)", client.name or client.id, n)

    def generator_infos(self) -> list[dict[str, Any]]:
        return [self._info(g) for g in self.generators.values()]

    def _info(self, generator: Generator) -> dict[str, Any]:
        """The generator's own description, plus where its batches run (this process or a cluster)."""
        info = generator.info()
        try:
            info["backend"] = self.scheduler.executor.describe(generator)
        except Exception as e:  # an unreachable cluster must not break the welcome message
            info["backend"] = {"kind": "unknown", "error": f"{type(e).__name__}: {e}"}
        info["device"] = info["backend"].get("device", info["device"])
        return info

    # -- entry points -----------------------------------------------------------------------
    def handle_raw(self, client: Client, raw: str | bytes) -> None:
        """One frame from a client. Errors go back as `error` messages; nothing is raised."""
        request_id = None
        limit = self.settings.max_message_bytes
        try:
            size = len(raw.encode()) if isinstance(raw, str) and len(raw) * 4 > limit else len(raw)
            if size > limit:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"message of {size} bytes is over the {limit}-byte limit")
            obj = decode_json(raw)
            request_id = request_id_of(obj)
            self.handle(client, obj)
        except ProtocolError as e:
            client.emit(error_message(request_id, e))
        except Exception as e:  # never let one frame take the connection down
            log.exception("internal error on a frame")
            client.emit(error_message(request_id, ProtocolError(ErrorCode.INTERNAL, f"internal error: {e}")))

    def handle(self, client: Client, obj: dict) -> None:
        request_id = request_id_of(obj)
        try:
            request = parse_request(obj)
            log.debug("%s <- %s %s", client.name or client.id, request.type, request_id or "")
            if not client.authorized and not isinstance(request, Hello):
                raise ProtocolError(ErrorCode.UNAUTHORIZED, "this bridge needs a token: send hello with it first")
            self._dispatch(client, request)
        except ProtocolError as e:
            client.emit(error_message(request_id, e))
        except Exception as e:  # one bad request never takes the bridge down
            log.exception("internal error handling %s", obj.get("type"))
            client.emit(error_message(request_id, ProtocolError(ErrorCode.INTERNAL, f"internal error: {e}")))

    def _dispatch(self, client: Client, request: BaseModel) -> None:
        handlers: dict[type, Callable[[Client, Any], None]] = {
            Hello: self._hello,
            ListGenerators: self._generators,
            Generate: self._generate,
            Variations: self._variations,
            Interpolate: self._interpolate,
            Feedback: self._feedback,
            Steer: self._steer,
            Cancel: self._cancel,
            GetItem: self._item,
            LiveOpen: self._live_open,
            LiveMove: self._live_move,
            LiveCommit: self._live_commit,
            LiveClose: self._live_close,
        }
        handlers[type(request)](client, request)

    # -- simple requests ----------------------------------------------------------------------
    def _hello(self, client: Client, msg: Hello) -> None:
        if self.settings.token is not None and not secrets.compare_digest(
            (msg.token or "").encode(), self.settings.token.encode()
        ):
            client.authorized = False
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "wrong or missing token")
        if msg.protocol != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"this bridge speaks protocol {PROTOCOL_VERSION}, not {msg.protocol}",
                [{"path": "protocol", "message": f"must be {PROTOCOL_VERSION}"}],
            )
        client.authorized = True
        client.name = msg.client or client.name
        welcome: dict[str, Any] = {
            "type": "welcome",
            "id": msg.id,
            "server": f"ganbridge {__version__}",
            "protocol": PROTOCOL_VERSION,
            "generators": self.generator_infos(),
            "limits": self.settings.limits(),
        }
        if msg.extensions:  # a client that asks for nothing gets v1 exactly
            client.extensions = frozenset(e for e in EXTENSIONS if e in msg.extensions)
            welcome["extensions"] = sorted(client.extensions)
        client.emit(welcome)

    def _generators(self, client: Client, msg: ListGenerators) -> None:
        client.emit({"type": "generators", "id": msg.id, "generators": self.generator_infos()})

    def _cancel(self, client: Client, msg: Cancel) -> None:
        if self.scheduler.cancel(client.id, msg.id) is None:  # it sends `cancelled` itself
            raise ProtocolError(ErrorCode.UNKNOWN_REQUEST, f"no queued or running request with id {msg.id!r}")

    def _item(self, client: Client, msg: GetItem) -> None:
        rec = self._record(msg.item)
        reply = {"type": "item", "id": msg.id, **self.describe(rec)}
        if msg.data:
            reply.update(self._stored_files(rec))
        client.emit(reply)

    def describe(self, rec: ItemRecord) -> dict[str, Any]:
        return {
            "item": rec.id,
            "generator": rec.generator,
            "checkpoint": self._checkpoint_of(rec),
            "seed": rec.seed,
            "params": rec.params,
            "format": rec.format,
            "created": rec.created,
            "session": rec.session,
            "parents": rec.parents,
            "origin": rec.origin,
            "how": rec.how,
            # `rating`: in the item's own session (any, for an item made without one);
            # `ratings`: the latest of every session that rated it
            "rating": self.store.latest_rating(rec.id, rec.session),
            "ratings": self.store.ratings(rec.id),
            "file": str(rec.file),
        }

    def _checkpoint_of(self, rec: ItemRecord) -> dict[str, Any]:
        """The item's checkpoint and, while that checkpoint is installed, its training data."""
        gen = self.generators.get(rec.generator)
        for ref in gen.checkpoints() if gen is not None else []:
            if ref.sha256 == rec.checkpoint_sha256:
                return ref.describe()
        return {"name": rec.checkpoint_name, "sha256": rec.checkpoint_sha256}

    def _stored_files(self, rec: ItemRecord) -> dict[str, Any]:
        """An item's files as the bridge wrote them (base64): `data`, a texture's `maps` and a MIDI
        file's C2PA `sidecar`; unknown_item when they were deleted from the output folder."""

        def read(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode("ascii")

        try:
            files: dict[str, Any] = {"format": rec.format, "data": read(rec.file)}
            sidecar = rec.file.with_name(rec.file.name + ".c2pa")
            if rec.format == "mid" and sidecar.is_file():
                files["sidecar"] = read(sidecar)
            maps = {
                path.stem.removeprefix(f"{rec.id}_"): read(path)
                for path in sorted(rec.file.parent.glob(f"{rec.id}_*.{rec.format}"))
            }
        except OSError as e:
            raise ProtocolError(
                ErrorCode.UNKNOWN_ITEM, f"item {rec.id!r}: its file cannot be read ({e.strerror})"
            ) from None
        if maps:
            files["maps"] = maps
        return files

    def _feedback(self, client: Client, msg: Feedback) -> None:
        rec = self._record(msg.item)
        self.store.add_feedback(rec.id, msg.session or rec.session or "default", msg.rating)
        client.emit({"type": "ack", "id": msg.id})

    # -- generation requests ------------------------------------------------------------------
    def _generator(self, name: str) -> Generator:
        gen = self.generators.get(name)
        if gen is None:
            known = ", ".join(self.generators) or "none installed"
            raise ProtocolError(ErrorCode.UNKNOWN_GENERATOR, f"no generator named {name!r} (known: {known})")
        return gen

    def _record(self, item_id: str) -> ItemRecord:
        rec = self.store.get(item_id)
        if rec is None:
            raise ProtocolError(ErrorCode.UNKNOWN_ITEM, f"no item with id {item_id!r}")
        return rec

    def _params(self, gen: Generator, params: dict) -> BaseModel:
        try:
            return gen.params_model.model_validate(params)
        except ValidationError as e:
            details = validation_details(e, prefix="params")
            summary = "; ".join(f"{d['path']}: {d['message']}" for d in details[:3])
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS, f"invalid params for {gen.name}: {summary}", details
            ) from None

    def _check_count(self, count: int, field_name: str = "count", limit: int | None = None) -> None:
        limit = limit or self.settings.max_count
        if count > limit:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"{field_name} {count} is over this bridge's limit of {limit}",
                [{"path": field_name, "message": f"at most {limit}"}],
            )

    def _stored_params(self, gen: Generator, rec: ItemRecord, overrides: dict | None = None) -> BaseModel:
        return self._item_params(gen, rec.id, rec.params, overrides)

    def _item_params(self, gen: Generator, item_id: str, stored: dict, overrides: dict | None = None) -> BaseModel:
        """Item `item_id`'s stored params with `overrides` (as the generator combines them), validated anew."""
        params = gen.with_overrides(stored, overrides or {})
        try:
            return gen.params_model.model_validate(params)
        except ValidationError as e:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"item {item_id}'s params no longer fit generator {gen.name} (was its model removed?)",
                validation_details(e, prefix="params"),
            ) from None

    def _generate(self, client: Client, msg: Generate) -> None:
        gen = self._generator(msg.generator)
        self._check_count(msg.count)
        params = self._params(gen, msg.params)
        base = msg.seed if msg.seed is not None else getattr(params, "seed", None)
        base = _random_seed() if base is None else base
        units = []
        for i in range(msg.count):
            seed = (base + i) % 2**31
            p = params.model_copy(update={"seed": seed}) if "seed" in type(params).model_fields else params
            units.append(WorkUnit(p, gen.random_latent(p, seed), seed, {"origin": "generate", "parents": []}))
        self._submit(client, msg.id, gen, units, msg.session)

    def _variations(self, client: Client, msg: Variations) -> None:
        self._check_count(msg.count)
        rec = self._record(msg.item)
        gen = self._generator(rec.generator)
        params = _derived(self._stored_params(gen, rec))
        base = msg.seed if msg.seed is not None else _random_seed()
        discrete = gen.discrete_parts(params)
        units = []
        for i in range(msg.count):
            seed = (base + i) % 2**31
            z = latent_ops.perturb(rec.latent, msg.strength, seeded_rng(seed), discrete)
            units.append(WorkUnit(params, z, seed, {"origin": "variations", "parents": [rec.id]}))
        self._submit(client, msg.id, gen, units, msg.session or rec.session)

    def _interpolate(self, client: Client, msg: Interpolate) -> None:
        self._check_count(msg.steps, "steps", self.settings.max_steps)
        start, end = self._record(msg.from_), self._record(msg.to)
        if start.generator != end.generator:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"cannot interpolate between generators {start.generator!r} and {end.generator!r}",
                [{"path": "to", "message": "must be an item of the same generator as 'from'"}],
            )
        gen = self._generator(start.generator)
        if _without_seed(start.params) != _without_seed(end.params):
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                "cannot interpolate between items made with different params (apart from the seed)",
                [{"path": "to", "message": "must have the same params as 'from', except the seed"}],
            )
        params = _derived(self._stored_params(gen, start))
        try:
            latents = latent_ops.interpolate(start.latent, end.latent, msg.steps, gen.discrete_parts(params))
        except ValueError as e:
            raise ProtocolError(ErrorCode.INVALID_PARAMS, str(e), [{"path": "to", "message": str(e)}]) from None
        meta = {"origin": "interpolate", "parents": [start.id, end.id]}
        units = [WorkUnit(params, z, None, dict(meta, step=i)) for i, z in enumerate(latents)]
        self._submit(client, msg.id, gen, units, msg.session or start.session)

    def _steer(self, client: Client, msg: Steer) -> None:
        gen = self._generator(msg.generator)
        self._check_count(msg.count)
        seed = msg.seed if msg.seed is not None else _random_seed()
        plan, drawn = self.steered(gen, msg, seed)
        units = [
            WorkUnit(plan.params_for(d), d.latent, seed, {"origin": "steer", "how": d.how, "parents": d.parents})
            for d in drawn
        ]
        self._submit(client, msg.id, gen, units, msg.session, plan.summary(drawn))

    def steered(self, gen: Generator, msg: Steer, seed: int) -> tuple[SteeringPlan, list[steering.Drawn]]:
        """A steer's plan and its new latents: all that steering adds to a request."""
        plan = self.steering_plan(gen, msg)
        drawn = steering.steer(
            plan.items,
            gen.latent_shapes(plan.params),
            gen.discrete_parts(plan.params),
            msg.count,
            msg.explore,
            seeded_rng(seed),
            self.steering_rows,
            (msg.session, gen.name),
            plan.gallery,
        )
        return plan, drawn

    def steering_plan(self, gen: Generator, msg: Steer) -> SteeringPlan:
        """The params a steered batch is made with and the session's items that can steer it:
        items of the same checkpoint and latent shapes, each rated one with the rest of its batch."""
        ratings = dict(self.store.session_ratings(msg.session, gen.name))
        rated = self.store.seen_items(list(ratings))
        # the most recent like, else the most recent rating: whose params the batch is made with
        first = ([it.id for it in rated if ratings[it.id] > 0] or [it.id for it in rated])[:1]
        reference = self.store.params_of(first[0]) if first else None  # its latent is not needed
        if reference is None:
            params = self._params(gen, msg.params or {})
        else:  # the liked item's params, with the request's overrides (a `model` among them)
            params = self._item_params(gen, first[0], reference, msg.params)
        params = _derived(params)
        checkpoint = gen.checkpoint_for(params)
        shapes = {k: tuple(s) for k, s in gen.latent_shapes(params).items()}

        def fits(it: SeenItem) -> bool:
            return it.checkpoint_sha256 == checkpoint.sha256 and {k: v.shape for k, v in it.latent.items()} == shapes

        usable = [it for it in rated if fits(it)]
        # A rated item's batch mates, shown beside it but unrated, are compared with it too.
        mates = self.store.batch_mates(
            sorted({it.batch for it in usable if it.batch}), MAX_STEERING_ITEMS - len(usable), [it.id for it in usable]
        )
        seen = usable + [m for m in mates if fits(m)]
        gallery = gen.gallery(params)
        # the looks, read only for a model whose gallery stands for what these params make
        fitting = gallery is not None and gallery.fits(shapes, list(gen.discrete_parts(params)))
        looks = self.store.looks([it.id for it in seen]) if fitting else {}
        # the params steering moves beside the latent, less those the request fixes
        given = set(msg.params or {})
        controls = {
            name: control
            for name, control in gen.steered_controls(params).items()
            if name not in given and not given.intersection(control.fixed_by)
        }
        values = self._control_values(gen, controls, [it.id for it in seen])
        items = [
            steering.RatedItem(
                it.id, it.latent, ratings.get(it.id, 0), it.batch or it.id, looks.get(it.id), values.get(it.id)
            )
            for it in seen
        ]
        rated_count = sum(1 for r in ratings.values() if r)
        return SteeringPlan(params, checkpoint.name, items, rated_count, gallery if fitting else None, controls)

    def _control_values(
        self, gen: Generator, controls: Mapping[str, Control], item_ids: list[str]
    ) -> dict[str, np.ndarray]:
        """Each item's values of the steered `controls`, scaled to -1..1 (none without controls)."""
        if not controls:
            return {}
        return {
            item_id: np.array([c.scaled(gen.control_value(stored, name)) for name, c in controls.items()])
            for item_id, stored in self.store.params_of_many(item_ids).items()
        }

    def _submit(
        self,
        client: Client,
        request_id: str,
        gen: Generator,
        units: list[WorkUnit],
        session: str | None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        try:
            gen.preflight(units[0].params)
        except Unavailable as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(e)) from None
        self._check_budget(gen, units)
        listener = _JobEvents(self, client, session, secrets.token_hex(8), summary)
        job = Job(client=client.id, request_id=request_id, generator=gen, units=units, listener=listener)
        try:
            self.scheduler.submit(job)
        except QueueFull as e:
            raise ProtocolError(ErrorCode.BUSY, f"{e}; try again shortly") from None
        except KeyError as e:
            # Not sent with that id: its messages belong to the request already running.
            client.emit(
                error_message(
                    None,
                    ProtocolError(
                        ErrorCode.INVALID_PARAMS, str(e.args[0]), [{"path": "id", "message": "already in use"}]
                    ),
                )
            )

    def _check_budget(self, gen: Generator, units: list[WorkUnit]) -> None:
        """Price every unit; a request over its kind's per-request budget is `too_large`, and so is
        one over the per-client budget on its own (it could never run, so `busy` would mislead)."""
        for unit in units:
            unit.cost = gen.cost(unit.params)
        cost = units[0].cost
        total = sum(u.cost.amount for u in units)
        budgets = self.settings.budgets()
        if cost.unit not in budgets:
            return
        per_request, per_client = budgets[cost.unit]
        budget, which, setting = min((per_request, "per-request", "request"), (per_client, "per-client", "client"))
        if total > budget:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"this request costs {total:,} {cost.unit} ({len(units)} x {cost.what}), over the {which} "
                f"budget of {budget:,} {cost.unit} (setting max_{setting}_{cost.unit}); ask for fewer or smaller items",
                [{"path": "count", "message": f"{len(units)} x {cost.amount:,} {cost.unit} > {budget:,}"}],
            )

    # -- live sessions (core/live.py) ---------------------------------------------------------
    @staticmethod
    def _require_live(client: Client) -> None:
        if "live" not in client.extensions:
            raise ProtocolError(
                ErrorCode.UNKNOWN_TYPE,
                'live sessions are an extension: ask for it in hello (extensions: ["live"])',
            )

    def _live_session(self, client: Client, live_id: str) -> LiveSession:
        self._require_live(client)
        session = self.live.get(client.id, live_id)
        if session is None:
            raise ProtocolError(ErrorCode.UNKNOWN_REQUEST, f"no live session with id {live_id!r} is open")
        return session

    def _live_open(self, client: Client, msg: LiveOpen) -> None:
        self._require_live(client)
        gen, params, base, parents = self._live_start(msg)
        toward = None
        if msg.toward is not None:
            end = self._record(msg.toward)
            if end.generator != gen.name or {k: v.shape for k, v in end.latent.items()} != {
                k: v.shape for k, v in base.items()
            }:
                raise ProtocolError(
                    ErrorCode.INVALID_PARAMS,
                    f"item {end.id} cannot be blended with this session: another generator or other shapes (size)",
                    [{"path": "toward", "message": "must be an item of the same generator and size"}],
                )
            toward, parents = end.latent, [*parents, end.id]
        self._check_live_params(gen, params, base)
        directions = gen.directions(params)
        session = LiveSession(
            msg.id, client.id, client.emit, gen, base, toward, directions, set(gen.discrete_parts(params)),
            parents, LiveState(0, (), 0.0, params),
        )  # fmt: skip
        opened: dict[str, Any] = {
            "type": "live_opened",
            "id": msg.id,
            "generator": gen.name,
            "params": params.model_dump(mode="json"),
            "directions": [{"name": d.name, "change": round(d.change, 4)} for d in directions],
            "toward": msg.toward,
        }
        if not directions:
            opened["note"] = (
                f"model {gen.checkpoint_for(params).name!r} has no directions (ganbridge directions makes them)"
            )
        try:
            self.live.open(session, lambda: client.emit(opened))
        except KeyError as e:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS, str(e.args[0]), [{"path": "id", "message": "already in use"}]
            ) from None
        except LiveLimit as e:
            raise ProtocolError(ErrorCode.BUSY, f"{e}; close one first (live_close)") from None

    def _live_start(self, msg: LiveOpen) -> tuple[Generator, BaseModel, dict, list[str]]:
        """The generator, params, latent and parents a session starts from: an item's, or fresh."""
        if msg.item is not None:
            rec = self._record(msg.item)
            gen = self._generator(rec.generator)
            params = _derived(self._stored_params(gen, rec, msg.params))
            return gen, params, rec.latent, [rec.id]
        if msg.generator is None:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                "live_open needs an item to start from or a generator for a fresh latent",
                [{"path": "generator", "message": "required without item"}],
            )
        gen = self._generator(msg.generator)
        params = self._params(gen, msg.params or {})
        seed = msg.seed if msg.seed is not None else getattr(params, "seed", None)
        base = gen.random_latent(params, _random_seed() if seed is None else seed)
        return gen, _derived(params), base, []

    def _check_live_params(self, gen: Generator, params: BaseModel, latent: dict) -> None:
        """Params a session can render its latent with, at a cost within one request's budget."""
        shapes = {k: tuple(v) for k, v in gen.latent_shapes(params).items()}
        if shapes != {k: v.shape for k, v in latent.items()}:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"these params need a latent of other shapes than this session's ({gen.name}: a size or length "
                "change); open a new live session for them",
                [{"path": "params", "message": "must keep the latent's shapes"}],
            )
        try:
            gen.preflight(params)
        except Unavailable as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(e)) from None
        self._check_budget(gen, [WorkUnit(params, latent, None)])

    def _live_move(self, client: Client, msg: LiveMove) -> None:
        session = self._live_session(client, msg.id)
        if msg.values is not None and len(msg.values) > len(session.directions):
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"{len(msg.values)} slider values for {len(session.directions)} directions",
                [{"path": "values", "message": f"at most {len(session.directions)} values"}],
            )
        if msg.blend is not None and session.toward is None:
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                "this live session has no blend: open it with `toward`",
                [{"path": "blend", "message": "needs a session opened with toward"}],
            )
        params = None
        if msg.params is not None:
            params = self._params(session.generator, session.state.params.model_dump(mode="json") | msg.params)
            if session.generator.checkpoint_for(params) != session.generator.checkpoint_for(session.state.params):
                raise ProtocolError(
                    ErrorCode.INVALID_PARAMS,
                    "a live session keeps its model; open a new one for another",
                    [{"path": "params.model", "message": "cannot change in a live session"}],
                )
            self._check_live_params(session.generator, params, session.base)
        values = None if msg.values is None else [*msg.values, *[0.0] * (len(session.directions) - len(msg.values))]
        self.live.move(session, moved(session.state, msg.seq, values, msg.blend, params))

    def _live_commit(self, client: Client, msg: LiveCommit) -> None:
        session = self._live_session(client, msg.live)
        state = session.state
        if msg.onto is None:
            unit = WorkUnit(state.params, session.latent(state), None, {"origin": "live", "parents": session.parents})
        else:
            unit = self._committed_onto(session, state, msg.onto)
        self._submit(client, msg.id, session.generator, [unit], msg.session)

    def _committed_onto(self, session: LiveSession, state: LiveState, item_id: str) -> WorkUnit:
        """The session's sliders applied to another item's latent (directions fit every size)."""
        rec = self._record(item_id)
        gen = session.generator
        refuse = None
        if rec.generator != gen.name:
            refuse = f"item {rec.id} is of generator {rec.generator}, not {gen.name}"
        elif session.toward is not None and state.blend > 0:
            refuse = "a blended state belongs to the session's own items: commit it without onto"
        if refuse is not None:
            raise ProtocolError(ErrorCode.INVALID_PARAMS, refuse, [{"path": "onto", "message": refuse}])
        params = _derived(self._stored_params(gen, rec, session.param_overrides(state)))
        if gen.checkpoint_for(params) != gen.checkpoint_for(state.params):
            text = f"item {rec.id} is of another model than this live session's"
            raise ProtocolError(ErrorCode.INVALID_PARAMS, text, [{"path": "onto", "message": text}])
        latent = shifted(rec.latent, session.directions, state.values)
        parents = [rec.id, *(p for p in session.parents if p != rec.id)]
        return WorkUnit(params, latent, None, {"origin": "live", "parents": parents})

    def _live_close(self, client: Client, msg: LiveClose) -> None:
        self._live_session(client, msg.id)
        self.live.close(client.id, msg.id, {"type": "live_closed", "id": msg.id})

    # -- playback out of the virtual MIDI port ------------------------------------------------
    def play_item(self, item_id: str, on_end: Callable[[str, bool], None] | None = None) -> float:
        """Play a music item out of the MIDI port; returns its length in seconds."""
        rec = self._record(item_id)
        gen = self._generator(rec.generator)
        if gen.kind != "music":
            raise ProtocolError(ErrorCode.INVALID_PARAMS, f"item {item_id} is {gen.kind}, not music: nothing to play")
        if self.player is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "MIDI output is off (start the bridge with --midi-out NAME)")
        if rec.format == "mid" and rec.file.is_file():
            midi = rec.file.read_bytes()
        else:  # a WAV item: the same recipe, as MIDI
            params = self._stored_params(gen, rec, {"format": "mid"})
            midi = gen.render([params], [rec.latent])[0].data
        try:
            return self.player.play(midi, item_id, on_end)
        except MidiUnavailable as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(e)) from None

    def loop_live(self, client: Client, live_id: str, on_end: Callable[[str, bool], None] | None = None) -> float:
        """Loop a live music session out of the MIDI port, each bar from its newest frame (see
        MidiPlayer.loop); returns a bar's length in seconds."""
        session = self._live_session(client, live_id)
        if session.generator.kind != "music":
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"live session {live_id} is {session.generator.kind}, not music: nothing to loop",
            )
        if self.player is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "MIDI output is off (start the bridge with --midi-out NAME)")
        deadline = time.monotonic() + 2
        while session.newest is None and time.monotonic() < deadline:  # its first frame, being rendered
            time.sleep(0.01)
        if session.newest is None:
            raise ProtocolError(ErrorCode.INTERNAL, f"live session {live_id} has no frame to play yet")
        if session.newest["format"] != "mid":
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                f"live session {live_id} renders {session.newest['format']}; a loop plays MIDI (format mid)",
            )

        def newest() -> dict[str, Any] | None:
            return None if session.closed else session.newest  # a closed session ends its loop

        try:
            return self.player.loop(newest, live_id, on_end)
        except MidiUnavailable as e:
            raise ProtocolError(ErrorCode.UNAVAILABLE, str(e)) from None

    def stop_playback(self) -> bool:
        return self.player.stop() if self.player is not None else False

    # -- results ----------------------------------------------------------------------------
    def store_outputs(
        self,
        gen: Generator,
        units: list[WorkUnit],
        outputs: list[Output],
        session: str | None,
        batch: str | None = None,
    ) -> list[dict]:
        """Write files and recipes (worker thread); returns the protocol Items. Files are on disk
        (synced) before their recipes commit; if anything fails, none of them stays. `batch`
        names the request, whose items a client shows side by side (steering compares them)."""
        records, items, files = self._describe_outputs(gen, units, outputs, session, batch)
        try:
            self.store.write_files(files)
            self.store.add(records)
        except BaseException:
            self.store.remove_files([path for path, _ in files])
            raise
        return items

    def discard_items(self, items: list[dict]) -> None:
        """Remove stored items that were never delivered: their files and their recipes."""
        self.store.remove([item["item"] for item in items])
        self.store.remove_files(
            [Path(item["file"]) for item in items]
            + [Path(item["file"] + ".c2pa") for item in items if item["format"] == "mid"]
            + [Path(m["file"]) for item in items for m in (item.get("maps") or {}).values()]
        )

    def _describe_outputs(
        self, gen: Generator, units: list[WorkUnit], outputs: list[Output], session: str | None, batch: str | None
    ) -> tuple[list[ItemRecord], list[dict], list[tuple[Path, bytes]]]:
        """The records, protocol Items and files (path, bytes) of finished outputs, each file
        with its recipe inside (core/provenance.py)."""
        records, items, files = [], [], []
        now = time.time()
        for unit, out in zip(units, outputs):
            item_id = new_item_id()
            ref = gen.checkpoint_for(unit.params)
            params = unit.params.model_dump(mode="json")
            origin, parents = unit.meta.get("origin", "generate"), unit.meta.get("parents", [])
            recipe = provenance.make_recipe(gen.name, ref.as_dict(), params, unit.seed, unit.latent, origin, parents)
            path = self.store.output_path(gen.name, item_id, out.format)
            data = self._with_provenance(path, out.data, out.format, recipe, None, files)
            item: dict[str, Any] = {
                "item": item_id,
                "generator": gen.name,
                "seed": unit.seed,
                "format": out.format,
                "mime": out.mime,
                **out.extra,
                "file": str(path),
                # bytes, made base64 for a v1 client only as the reply is written (encode_reply):
                # a binary client's payloads were base64 decoded back, 0.2 s for 24 MB here
                "data": data,
            }
            if "how" in unit.meta:  # a steered item: how it was drawn and from which items
                item["how"] = unit.meta["how"]
                item["parents"] = list(unit.meta["parents"])
            if out.attachments:
                item["maps"] = {}
                for name, raw in out.attachments.items():
                    map_path = self.store.output_path(gen.name, item_id, out.format, f"_{name}")
                    map_data = self._with_provenance(map_path, raw, out.format, recipe, name, files)
                    item["maps"][name] = {
                        "format": out.format,
                        "mime": out.mime,
                        "file": str(map_path),
                        "data": map_data,
                    }
            records.append(
                ItemRecord(
                    id=item_id,
                    generator=gen.name,
                    checkpoint_name=ref.name,
                    checkpoint_sha256=ref.sha256,
                    seed=unit.seed,
                    latent=unit.latent,
                    params=params,
                    format=out.format,
                    file=path,
                    session=session,
                    origin=origin,
                    parents=parents,
                    created=now,
                    batch=batch,
                    how=unit.meta.get("how"),
                    look=out.look,
                )
            )
            items.append(item)
        return records, items, files

    def _with_provenance(
        self, path: Path, data: bytes, fmt: str, recipe: dict, map_name: str | None, files: list[tuple[Path, bytes]]
    ) -> bytes:
        """The file with its recipe inside and signed, added to `files` (a MIDI file's signed
        manifest beside it, as PATH.c2pa)."""
        data, sidecar = seal(data, fmt, recipe, self.credentials, map_name)
        if sidecar is not None:
            files.append((path.with_name(path.name + ".c2pa"), sidecar))
        files.append((path, data))
        return data


def is_out_of_memory(error: BaseException) -> bool:
    """Python's MemoryError, torch's CPU allocator ("[enforce fail at alloc_cpu.cpp:...]
    DefaultCPUAllocator: not enough memory") and CUDA's OutOfMemoryError."""
    text = str(error).lower()
    return isinstance(error, MemoryError) or any(
        s in text for s in ("out of memory", "not enough memory", "can't allocate memory", "defaultcpuallocator")
    )


@dataclass
class SteeringPlan:
    """What a steer request works from (see BridgeCore.steering_plan)."""

    params: BaseModel
    model: str  # the checkpoint's name
    items: list[steering.RatedItem]
    rated: int  # the session's nonzero ratings of this generator (the latest per item, up to 64)
    gallery: Gallery | None = None  # the model's, when it fits these params
    controls: Mapping[str, Control] = field(default_factory=dict)  # the params steering moves, by name

    @functools.cached_property
    def moved_controls(self) -> list[str]:
        """The controls steering moves: those the items' values differ in (see steering.py)."""
        varied = steering.varied_controls(self.items) if self.controls and self.items else None
        return [] if varied is None else [name for name, moves in zip(self.controls, varied) if moves]

    def params_for(self, drawn: steering.Drawn) -> BaseModel:
        """The params of a steered item: the plan's, with the drawn item's values of the controls
        steering moved (the others keep the plan's value, even one outside the control's range)."""
        if drawn.controls is None or not self.moved_controls:
            return self.params
        values = {
            name: control.value(scaled)
            for (name, control), scaled in zip(self.controls.items(), drawn.controls)
            if name in self.moved_controls
        }
        return self.params.model_copy(update=values)

    def summary(self, drawn: Sequence[steering.Drawn] = ()) -> dict[str, Any]:
        """`done`'s `steering` field: how many ratings steered the batch (`drawn`), whether it came
        from the model's gallery, and why no rating steered it, when none did."""
        used = sum(1 for it in self.items if it.rating)
        info: dict[str, Any] = {
            "model": self.model,
            "ratings_used": used,
            "ratings_ignored": self.rated - used,
            "batches": len({it.batch for it in self.items if it.rating}),
            "gallery": any(d.how == "gallery" for d in drawn),
            "controls": self.moved_controls if any(d.controls is not None for d in drawn) else [],
        }
        if used == 0:
            info["note"] = (
                f"no ratings in this session for model {self.model!r} at these settings: these are random samples"
                if self.rated == 0
                else f"this session's {self.rated} rating(s) are of other models or sizes than {self.model!r}: "
                "these are random samples"
            )
        return {"steering": info}


def _without_seed(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "seed"}


def _derived(params: BaseModel) -> BaseModel:
    """Params of an item made from a latent, not a seed: its seed says nothing, so clear it."""
    return params.model_copy(update={"seed": None}) if "seed" in type(params).model_fields else params


class _JobEvents:
    """Turns scheduler callbacks into protocol messages for one client's request."""

    def __init__(
        self, core: BridgeCore, client: Client, session: str | None, batch: str, summary: dict[str, Any] | None
    ):
        self.core = core
        self.client = client
        self.session = session
        self.batch = batch  # the store's name for this request's items
        self.summary = summary  # what `done` also says (steering: the ratings it used)

    def accepted(self, job: Job, position: int) -> None:
        self.client.emit({"type": "accepted", "id": job.request_id, "position": position})

    def queued(self, job: Job, position: int) -> None:
        self.client.emit({"type": "queued", "id": job.request_id, "position": position})

    def store(self, job: Job, units: list[WorkUnit], outputs: list[Output]) -> list[dict]:
        return self.core.store_outputs(job.generator, units, outputs, self.session, self.batch)

    def discard(self, job: Job, items: list[dict]) -> None:
        self.core.discard_items(items)

    def results(self, job: Job, items: list[dict]) -> None:
        self.client.emit({"type": "result", "id": job.request_id, "items": items})

    def progress(self, job: Job, done: int, total: int) -> None:
        self.client.emit({"type": "progress", "id": job.request_id, "done": done, "total": total})

    def finished(self, job: Job) -> None:
        self.client.emit({"type": "done", "id": job.request_id, **(self.summary or {})})

    def cancelled(self, job: Job) -> None:
        self.client.emit({"type": "cancelled", "id": job.request_id})

    def failed(self, job: Job, error: BaseException) -> None:
        if isinstance(error, Unavailable):
            self.client.emit(error_message(job.request_id, ProtocolError(ErrorCode.UNAVAILABLE, str(error))))
            return
        if is_out_of_memory(error):
            unit, cost = job.units[0].cost, sum(u.cost.amount for u in job.units)
            budget = self.core.settings.budgets().get(unit.unit, (None, None))[0]
            text = (
                f"{job.generator.name} ran out of memory on this request of {len(job.units)} x {unit.what} "
                f"({cost:,} {unit.unit}"
                + (f"; the per-request budget is {budget:,}, setting max_request_{unit.unit}" if budget else "")
                + "): ask for fewer or smaller items, or lower the budget to what this machine can hold"
            )
        else:
            text = f"{job.generator.name} failed: {type(error).__name__}: {error}"
        self.client.emit(error_message(job.request_id, ProtocolError(ErrorCode.INTERNAL, text)))
