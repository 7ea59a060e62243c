"""Live sessions: slider moves in, preview frames out, only the newest state rendered.

A client opens a live session on an item (or on a fresh latent) and then sends moves as often as
it likes: slider positions along the model's directions (generators/directions.py), a blend
toward a second item, and params that keep the latent's shapes (temperature, truncation). Each
move replaces the session's state; one renderer thread renders the newest state of each session
that changed, so a move that arrives while a frame renders is folded into the next frame and
stale moves are dropped, never queued. Frames skip the store: nothing is written until the client
commits, which the core turns into an ordinary request for one item.

The renderer serves clients in turn (the one served least recently first, then its session served
least recently), so a client with many sessions or a flood of moves gets no more frames than
another. It runs batches through the scheduler's executor, so live frames run where requests do,
and gives way to requests: while the scheduler has work, or finished a batch less than
REQUEST_GRACE ago, a frame waits (up to MAX_DEFER, so a session still gets frames under steady
load), since on a CPU a frame rendered beside a request slows that request by as much as it
takes. The grace is for a client that sends its next request when the last is answered: without
it a frame started in each gap between them and ran beside the next one (measured on 2 cores: a
neighbour's 128x128 round trips 1.45x as long beside a drag; see docs/developer/benchmarks.md).
Nothing here knows about sockets; frames leave through each session's `emit`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from ganbridge.generators import latent as latent_ops
from ganbridge.generators.base import Generator, Latent, Output
from ganbridge.generators.directions import Direction, shifted

log = logging.getLogger("ganbridge.live")

MAX_VALUE = 8.0  # a slider's reach, in unit moves along its direction
MAX_SESSIONS_PER_CLIENT = 4
MAX_DEFER = 0.1  # the longest a frame waits for requests to finish (seconds)
REQUEST_GRACE = 0.02  # a frame waits this long after a request's batch, for the client's next one (s)
Run = Callable[[Generator, Sequence[BaseModel], Sequence[Latent]], list[Output]]
Emit = Callable[[dict], None]


class LiveLimit(Exception):
    """A client already has MAX_SESSIONS_PER_CLIENT live sessions open."""


@dataclass(frozen=True)
class LiveState:
    """What the sliders say: a position per direction, the blend toward the second item (0-1) and
    the params to render with. `seq` is the client's number for the move that set it."""

    seq: int
    values: tuple[float, ...]
    blend: float
    params: BaseModel


@dataclass(eq=False)
class LiveSession:
    id: str  # the live_open request's id, which every later message of the session names
    client: str
    emit: Emit
    generator: Generator
    base: Latent
    toward: Latent | None
    directions: list[Direction]
    discrete: Collection[str]
    parents: list[str]
    state: LiveState
    version: int = 0  # bumped by every move
    rendered: int = -1  # the version last taken for rendering
    served: float = 0.0  # when it last had a frame taken, for taking turns
    closed: bool = False
    newest: dict[str, Any] | None = None  # a music session's frame last sent (its loop plays from it)
    # Held while a frame or the closing message is sent, so no frame follows `live_closed`.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.opened = self.state  # what the moves' params are overrides of

    def param_overrides(self, state: LiveState) -> dict[str, Any]:
        """The params the moves changed, with their new values."""
        before, now = self.opened.params.model_dump(mode="json"), state.params.model_dump(mode="json")
        return {k: v for k, v in now.items() if before.get(k) != v}

    def latent(self, state: LiveState) -> Latent:
        """The latent a state shows: the blend toward the second item first, then the sliders."""
        z = self.base
        if self.toward is not None and state.blend > 0:
            z = latent_ops.mix(self.base, self.toward, state.blend, self.discrete)
        return shifted(z, self.directions, state.values) if any(state.values) else z

    def frame(self, state: LiveState, out: Output, render_ms: float) -> dict[str, Any]:
        """The `live_frame` message; payloads as bytes (the door encodes them for its client)."""
        msg: dict[str, Any] = {
            "type": "live_frame",
            "id": self.id,
            "seq": state.seq,
            "format": out.format,
            "mime": out.mime,
            **{k: v for k, v in out.extra.items() if k != "notes" or self.generator.kind == "music"},
            "render_ms": round(render_ms, 2),
            "data": out.data,
        }
        if out.attachments:
            msg["maps"] = {
                name: {"format": out.format, "mime": out.mime, "data": raw} for name, raw in out.attachments.items()
            }
        return msg


class LiveRenderer:
    """The sessions of every client and the thread that renders their newest states."""

    def __init__(self, run: Run, wait_for_requests: Callable[[float], None] = lambda timeout: None):
        self._run = run
        # blocks while requests wait, run or just finished (REQUEST_GRACE), at most `timeout` s
        self._wait_for_requests = wait_for_requests
        self._cond = threading.Condition()
        self._sessions: dict[tuple[str, str], LiveSession] = {}
        self._client_served: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.frames = 0  # rendered, for tests and the bench

    def open(self, session: LiveSession, announce: Callable[[], None]) -> None:
        """Add a session; `announce` (sending `live_opened`) runs once it is admitted and before
        its first frame. KeyError when the client has a session of that id; LiveLimit when full."""
        with self._cond:
            if (session.client, session.id) in self._sessions:
                raise KeyError(f"a live session with id {session.id!r} is already open")
            mine = sum(1 for s in self._sessions.values() if s.client == session.client)
            if mine >= MAX_SESSIONS_PER_CLIENT:
                raise LiveLimit(f"this client has {mine} live sessions open, the most a client may have")
            announce()
            self._sessions[session.client, session.id] = session
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="live-renderer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def get(self, client: str, live_id: str) -> LiveSession | None:
        with self._cond:
            return self._sessions.get((client, live_id))

    def move(self, session: LiveSession, state: LiveState) -> None:
        """Make `state` the session's newest; the previous one, if not yet rendered, is dropped."""
        with self._cond:
            if session.closed:
                return
            session.state = state
            session.version += 1
            self._cond.notify()

    def close(self, client: str, live_id: str, closing: dict | None = None) -> bool:
        """Close a session (its frame being rendered is not sent); `closing` is sent last."""
        with self._cond:
            session = self._sessions.pop((client, live_id), None)
        if session is None:
            return False
        with session.lock:
            session.closed = True
            if closing is not None:
                session.emit(closing)
        return True

    def close_client(self, client: str) -> int:
        with self._cond:
            ids = [live_id for owner, live_id in self._sessions if owner == client]
            self._client_served.pop(client, None)
        return sum(self.close(client, live_id) for live_id in ids)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _take(self) -> tuple[LiveSession, LiveState] | None:
        """The next session to render (its client and then it served least recently) and its state."""
        waiting = [s for s in self._sessions.values() if s.version > s.rendered]
        if not waiting:
            return None
        session = min(waiting, key=lambda s: (self._client_served.get(s.client, 0.0), s.served))
        now = time.monotonic()
        session.rendered, session.served = session.version, now
        self._client_served[session.client] = now
        return session, session.state

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not any(s.version > s.rendered for s in self._sessions.values()):
                    self._cond.wait()
                if self._stopping:
                    return
            self._wait_for_requests(MAX_DEFER)  # frames give way to requests
            with self._cond:
                taken = self._take()  # the newest state, moves made while giving way included
            if taken is not None:
                self._render(*taken)

    def _render(self, session: LiveSession, state: LiveState) -> None:
        started = time.perf_counter()
        try:
            out = self._run(session.generator, [state.params], [session.latent(state)])[0]
            msg = session.frame(state, out, 1000 * (time.perf_counter() - started))
        except Exception as e:  # one bad frame fails that frame, not the session or the bridge
            log.exception("a live frame failed")
            msg = {
                "type": "error",
                "id": session.id,
                "code": "internal",
                "message": f"{session.generator.name} failed on a live frame: {type(e).__name__}: {e}",
            }
        with session.lock:
            if session.closed:
                return
            self.frames += 1
            if msg["type"] == "live_frame" and session.generator.kind == "music":
                session.newest = msg  # what a music loop plays next (only music is looped)
            try:
                session.emit(msg)
            except Exception:  # a door that cannot send it fails this frame, not the renderer
                log.exception("sending a live frame failed")


def moved(
    state: LiveState, seq: int | None, values: Sequence[float] | None, blend: float | None, params: BaseModel | None
) -> LiveState:
    """The state after a move: what the move names replaces what was; the rest stays."""
    return replace(
        state,
        seq=state.seq + 1 if seq is None else seq,
        values=state.values if values is None else tuple(values),
        blend=state.blend if blend is None else blend,
        params=state.params if params is None else params,
    )
