"""JobScheduler: runs generation off the event loop, fairly, in micro-batches.

One worker thread per device takes work units from a bounded queue, one unit per turn from the
client served least recently. A client that has just arrived has never been served, so it goes
first: a single small request waits for at most the batch already running, whatever another
client has queued. When batching is on and other clients are active, the worker waits up to a few
milliseconds after picking a unit (until every active client has work queued, or the batch would
be full) and then gathers more units with the same batch key (same generator, model and output
shape) from every client, in the same order, and hands them to the executor as one device call. The
executor is the seam for running batches elsewhere (e.g. a Ray cluster).

Each client has its own share of the queue and its own cost budget (queued and running work
together), so a client that fills its share is told `busy` and nobody else is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from ganbridge.generators.base import Cost, Generator, Latent, Output, Unavailable

log = logging.getLogger("ganbridge.scheduler")


class QueueFull(Exception):
    """The client is over its share of the queue or its cost budget: try again later."""


class Executor(Protocol):
    def run(self, generator: Generator, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]: ...

    def describe(self, generator: Generator) -> dict[str, Any]:
        """Where this generator's batches run, for clients and `ganbridge doctor`."""
        ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Runs a batch on this process's device (the default)."""

    def run(self, generator: Generator, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        return generator.render(params, latents)

    def describe(self, generator: Generator) -> dict[str, Any]:
        return {"kind": "local", "device": generator.device}

    def close(self) -> None:
        pass


@dataclass
class WorkUnit:
    params: BaseModel
    latent: Latent
    seed: int | None
    meta: dict[str, Any] = field(default_factory=dict)
    index: int = -1  # its place in the job, set when a worker takes it
    cost: Cost = field(default=Cost("items", 1, "one item"))


class JobListener(Protocol):
    """Callbacks from the scheduler. `store` does the heavy work of a finished batch (worker
    thread, no lock held); the others only send a message and are called under `job.lock`,
    so each job gets exactly one final message (finished, failed or cancelled)."""

    def accepted(self, job: Job, position: int) -> None: ...
    def queued(self, job: Job, position: int) -> None:
        """The job has not started and `position` units now wait ahead of it (sent on a change)."""
        ...

    # positional-only: a listener names what it stores as it likes (the core's are item dicts)
    def store(self, job: Job, units: list[WorkUnit], outputs: list[Output], /) -> Any: ...
    def discard(self, job: Job, stored: Any, /) -> None:
        """Undo `store` for results that will never be sent (the job was cancelled meanwhile)."""
        ...

    def results(self, job: Job, stored: Any, /) -> None: ...
    def progress(self, job: Job, done: int, total: int) -> None: ...
    def finished(self, job: Job) -> None: ...
    def failed(self, job: Job, error: BaseException) -> None: ...
    def cancelled(self, job: Job) -> None: ...


@dataclass(eq=False)
class Job:
    client: str
    request_id: str
    generator: Generator
    units: list[WorkUnit]
    listener: JobListener
    next_index: int = 0  # first unit not yet handed to a worker
    order: int = 0  # when it was accepted, among all jobs
    position: int = 0  # units queued ahead of it, as last told
    completed: int = 0
    cancelled: bool = False
    failed: bool = False
    closed: bool = False  # its final message has been sent
    # Held while a message for this job is sent, so nothing follows its final message.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Several workers (a remote executor) may finish a job's units out of order; results are
    # stored and sent in unit order, so item i of a request is always the i-th result.
    deliver_lock: threading.Lock = field(default_factory=threading.Lock)
    finished_units: dict[int, tuple[WorkUnit, Output]] = field(default_factory=dict)
    delivered: int = 0

    def emit(self, send: Any, *args: Any, final: bool = False) -> bool:
        """Call a listener method unless the job is closed; `final` closes it."""
        with self.lock:
            if self.closed:
                return False
            send(self, *args)
            self.closed = final
            return True

    @property
    def key(self) -> tuple[str, str]:
        return (self.client, self.request_id)

    @property
    def remaining(self) -> int:
        return len(self.units) - self.next_index

    def cost_left(self) -> tuple[str, int]:
        """(unit, amount) of the units not yet finished: queued and running."""
        left = self.units[self.completed :]
        return (self.units[0].cost.unit, sum(u.cost.amount for u in left))

    def head_batch_key(self) -> Any:
        return (self.generator.name, self.generator.batch_key(self.units[self.next_index].params))


class JobScheduler:
    def __init__(
        self,
        devices: Sequence[str] = ("cpu",),
        max_queue: int = 256,
        max_client_queue: int | None = None,
        client_budgets: dict[str, int] | None = None,
        batching: bool = True,
        batch_window: float = 0.004,
        executor: Executor | None = None,
        workers_per_device: int = 1,
        batch_limit: int | None = None,
    ):
        self.max_queue = max_queue
        self.max_client_queue = max_client_queue or max_queue
        self.client_budgets = dict(client_budgets or {})  # cost unit -> most one client may have
        self.batching = batching
        self.batch_window = batch_window
        self.executor = executor or InProcessExecutor()
        # Most items per batch, in place of each generator's own limit for this machine's device
        # (a remote executor's replicas split a batch to fit their device themselves).
        self.batch_limit = batch_limit
        self._cond = threading.Condition()
        self._pending: dict[str, deque[Job]] = {}  # client -> jobs with units left, in order of arrival
        self._active: dict[tuple[str, str], Job] = {}  # every job not yet finished
        self._queued_units = 0
        self._last_submit: dict[str, float] = {}  # client -> when it last submitted
        # Clients a batch no longer holds its window open for: one was waited for and did not
        # come (a client taking turns with another, or working alone now and then). It is
        # waited for again once it sends a request that a wait would have caught.
        self._not_waited_for: set[str] = set()
        self._batch_began: dict[str, tuple[float, str]] = {}  # device -> (when, whose unit) of its batch in flight
        # client -> the turn it was last served in: the worker serves the lowest first
        self._served: dict[str, int] = {}
        self._turn = 0
        self._accepted = 0  # jobs accepted so far: each job's `order`
        self._stopping = False
        self.batches_run = 0
        self.units_run = 0
        self._running = 0  # batches being rendered, stored or sent now
        self._batch_ended = -1e9  # when a batch last finished (time.monotonic)
        # More than one worker per device only pays when a batch waits on something other than
        # this machine (a remote executor); then each keeps a batch in flight.
        self._workers = [
            threading.Thread(target=self._work, args=(d,), name=f"worker-{d}-{i}", daemon=True)
            for d in dict.fromkeys(devices)
            for i in range(workers_per_device)
        ]

    def start(self) -> None:
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for job in self._active.values():
                job.cancelled = True
            self._cond.notify_all()
        self.executor.close()  # a remote executor fails its in-flight calls, freeing the workers
        for w in self._workers:
            if w.is_alive():
                w.join(timeout=30)

    def wait_until_idle(self, grace: float, timeout: float) -> None:
        """Return once no request is waiting or being worked on and none finished in the last
        `grace` seconds (a client that sends its next request when the last is answered is still
        busy between them: what live frames give way to), or after `timeout` seconds. Woken by
        batches ending, not by polling: a poll's wake-ups take the GIL from the workers."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if now >= deadline:
                    return
                if self._queued_units > 0 or self._running > 0:
                    self._cond.wait(deadline - now)
                elif now - self._batch_ended < grace:
                    self._cond.wait(min(deadline, self._batch_ended + grace) - now)
                else:
                    return

    @property
    def queued(self) -> int:
        with self._cond:
            return self._queued_units

    # -- client side ----------------------------------------------------------------------------
    def submit(self, job: Job) -> int:
        """Queue a job; `accepted` is delivered before any other event. Raises QueueFull, KeyError."""
        with self._cond:
            running = self._active.get(job.key)
            # A job whose final message is out is over for its client, which may reuse its id at
            # once (it is forgotten just after that message).
            if running is not None and not running.closed:
                raise KeyError(f"request id {job.request_id!r} is already in progress")
            self._check_share(job)
            self._check_budget(job)
            position = self._queued_units
            job.order, job.position = self._accepted, position
            self._accepted += 1
            self._active[job.key] = job
            self._pending.setdefault(job.client, deque()).append(job)
            self._queued_units += len(job.units)
            now = self._last_submit[job.client] = time.monotonic()
            self._concurrent_clients()  # prunes old entries
            if self._would_have_been_caught(job, now):
                self._not_waited_for.discard(job.client)
            job.listener.accepted(job, position)
            self._cond.notify_all()
        return position

    def _would_have_been_caught(self, job: Job, now: float) -> bool:
        """Whether a batch waiting for `job`'s client would have got this job: another client's
        request on its device is queued, or its batch was begun within the window (not after
        its results, as with a client taking turns) (lock held)."""
        device = job.generator.device
        began, first = self._batch_began.get(device, (-1.0, ""))
        if first != job.client and now - began <= self.batch_window:
            return True
        return any(
            other.generator.device == device
            for client, jobs in self._pending.items()
            if client != job.client
            for other in jobs
        )

    def _check_share(self, job: Job) -> None:
        """A client may queue max_client_queue items; when the whole queue is full, a client still
        gets in while it holds no more than an equal share of it (lock held)."""
        mine = sum(j.remaining for j in self._pending.get(job.client, ()))
        wanted = mine + len(job.units)
        if wanted > self.max_client_queue:
            raise QueueFull(
                f"this client has {mine} item(s) waiting and may have at most {self.max_client_queue} "
                f"(setting max_client_queue); this request adds {len(job.units)}"
            )
        if self._queued_units + len(job.units) > self.max_queue:
            share = self.max_queue // len(self._pending.keys() | {job.client})
            if wanted > share:
                raise QueueFull(
                    f"the queue is full ({self._queued_units} of {self.max_queue} items waiting) and this client "
                    f"holds more than its share ({mine} waiting, share {share})"
                )

    def _check_budget(self, job: Job) -> None:
        """A client's queued and running work together stays within its cost budget (lock held)."""
        unit, cost = job.cost_left()
        budget = self.client_budgets.get(unit)
        if budget is None:
            return
        busy = 0
        for other in self._active.values():
            if other.client == job.client and other.cost_left()[0] == unit:
                busy += other.cost_left()[1]
        if busy + cost > budget:
            raise QueueFull(
                f"this client's queued and running requests cost {busy:,} {unit} and this one {cost:,}; "
                f"a client may have {budget:,} {unit} of work at once (setting max_client_{unit})"
            )

    def cancel(self, client: str, request_id: str) -> Job | None:
        """Stop a queued or running job and send its `cancelled`. None if unknown or already over."""
        with self._cond:
            job = self._active.pop((client, request_id), None)
            if job is None:
                return None
            self._drop(job)
            job.cancelled = True
        return job if job.emit(job.listener.cancelled, final=True) else None

    def cancel_client(self, client: str) -> int:
        """Silently stop every job of a client that has gone away."""
        with self._cond:
            jobs = [j for j in self._active.values() if j.client == client]
            for job in jobs:
                del self._active[job.key]
                self._drop(job)
                job.cancelled = True
            self._served.pop(client, None)
            self._last_submit.pop(client, None)
        for job in jobs:
            with job.lock:
                job.closed = True
        return len(jobs)

    def _drop(self, job: Job) -> None:
        """Remove a job's unstarted units from the queue (lock held)."""
        self._queued_units -= job.remaining
        job.next_index = len(job.units)
        jobs = self._pending.get(job.client)
        if jobs is not None and job in jobs:
            jobs.remove(job)
            if not jobs:
                del self._pending[job.client]

    # -- worker side ------------------------------------------------------------------------------
    def _take(self, device: str, key: Any | None) -> tuple[Job, WorkUnit] | None:
        """One unit (matching `key` if given) from the client served least recently (lock held)."""
        # sorted() is stable: clients never served yet keep their order of arrival.
        for client in sorted(self._pending, key=lambda c: self._served.get(c, -1)):
            for job in self._pending[client]:
                if job.generator.device != device:
                    continue
                if key is not None and not self._matches(job, key):
                    continue
                unit = job.units[job.next_index]
                unit.index = job.next_index
                job.next_index += 1
                self._queued_units -= 1
                if job.remaining == 0:
                    self._pending[client].remove(job)
                if not self._pending[client]:
                    del self._pending[client]
                self._served[client] = self._turn  # this client's turn is over
                self._turn += 1
                return job, unit
        return None

    def _concurrent_clients(self) -> int:
        """Clients that submitted work within the last second (lock held)."""
        horizon = time.monotonic() - 1.0
        for client in [c for c, t in self._last_submit.items() if t < horizon]:
            del self._last_submit[client]
            self._not_waited_for.discard(client)
        return len(self._last_submit)

    def _awaited(self, client: str) -> list[str]:
        """The other active clients a batch begun with `client`'s unit waits for (lock held)."""
        self._concurrent_clients()
        return [c for c in self._last_submit if c != client and c not in self._not_waited_for]

    def _count_matching(self, device: str, key: Any) -> int:
        """Queued units that could join a batch with this key (lock held)."""
        return sum(
            job.remaining
            for jobs in self._pending.values()
            for job in jobs
            if job.generator.device == device and self._matches(job, key)
        )

    def _batch_ready(self, device: str, key: Any, limit: int, client: str) -> bool:
        """Whether waiting longer can add nothing to a batch begun with `client`'s unit: it would
        be full, or each other client active in the last second has work queued (lock held)."""
        if 1 + self._count_matching(device, key) >= limit:
            return True
        return all(
            any(job.generator.device == device for job in self._pending.get(other, ()))
            for other in self._awaited(client)
        )

    @staticmethod
    def _matches(job: Job, key: Any) -> bool:
        try:
            return job.head_batch_key() == key
        except Exception:  # a generator that cannot tell its key never joins another's batch
            return False

    def _gather(self, device: str) -> list[tuple[Job, WorkUnit]] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                first = self._take(device, None)
                if first is not None:
                    break
                self._cond.wait()
        batch = [first]
        if not self.batching:
            return batch
        job, unit = first
        try:
            key = (job.generator.name, job.generator.batch_key(unit.params))
            limit = self.batch_limit or job.generator.max_batch(unit.params)
        except Exception:
            log.exception("%s could not give a batch key; running the request alone", job.generator.name)
            return batch
        with self._cond:
            # Wait for more requests only when other clients are active (a lone client's request
            # would just be delayed) and have not let a wait run out, and only until the batch
            # is full or each of them has work queued here (who else would send some?), at most
            # batch_window.
            self._batch_began[device] = (time.monotonic(), job.client)
            if self._awaited(job.client) and self.batch_window > 0:
                deadline = time.monotonic() + self.batch_window
                while not self._stopping and not self._batch_ready(device, key, limit, job.client):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._not_waited_for.update(
                            other
                            for other in self._awaited(job.client)
                            if not any(j.generator.device == device for j in self._pending.get(other, ()))
                        )
                        break
                    self._cond.wait(left)
            while len(batch) < limit:
                more = self._take(device, key)
                if more is None:
                    break
                batch.append(more)
        return batch

    def _moved_up(self) -> list[Job]:
        """Jobs not started yet whose count of units waiting ahead (those of jobs accepted before
        them) has changed, with `position` set to it (lock held)."""
        moved = []
        ahead = 0
        for job in sorted((j for jobs in self._pending.values() for j in jobs), key=lambda j: j.order):
            if job.next_index == 0 and job.position != ahead:
                job.position = ahead
                moved.append(job)
            ahead += job.remaining
        return moved

    @staticmethod
    def _tell(moved: list[Job]) -> None:
        """Each moved job's `queued` (outside the scheduler's lock: a job's lock comes first)."""
        for job in moved:
            job.emit(job.listener.queued, job.position)

    def _work(self, device: str) -> None:
        while True:
            batch = self._gather(device)
            if batch is None:
                return
            with self._cond:
                moved = self._moved_up()
            self._tell(moved)
            with self._cond:
                self._running += 1
            try:
                self._run(batch)
            except Exception as e:  # keep the worker alive whatever a listener does
                log.exception("the %s worker failed a batch", device)
                self._fail({job for job, _ in batch}, e)
            finally:
                with self._cond:
                    self._running -= 1
                    self._batch_began.pop(device, None)
                    self._batch_ended = time.monotonic()
                    self._cond.notify_all()  # for wait_until_idle

    def _run(self, batch: list[tuple[Job, WorkUnit]]) -> None:
        generator = batch[0][0].generator
        live = [(j, u) for j, u in batch if not j.cancelled]
        if not live:
            return
        try:
            outputs = self.executor.run(generator, [u.params for _, u in live], [u.latent for _, u in live])
            if len(outputs) != len(live):
                raise RuntimeError(f"{generator.name} returned {len(outputs)} outputs for {len(live)} inputs")
        except Exception as e:  # a failing generator fails its requests, never the worker
            jobs = {j for j, _ in live}
            if len(jobs) > 1 and not isinstance(e, Unavailable):
                # One request (e.g. too big for memory) must not fail the others: retry each alone.
                log.warning("a batch of %d requests failed (%s); retrying them one by one", len(jobs), e)
                for job in jobs:
                    self._run([(j, u) for j, u in live if j is job])
                return
            log.exception("generator %s failed on a batch of %d", generator.name, len(live))
            self._fail(jobs, e)
            return
        self.batches_run += 1
        self.units_run += len(live)
        by_job: dict[Job, tuple[list[WorkUnit], list[Output]]] = {}
        for (job, unit), out in zip(live, outputs):
            units, outs = by_job.setdefault(job, ([], []))
            units.append(unit)
            outs.append(out)
        for job, (units, outs) in by_job.items():
            self._deliver(job, units, outs)

    def _deliver(self, job: Job, units: list[WorkUnit], outputs: list[Output]) -> None:
        with job.deliver_lock:
            for unit, out in zip(units, outputs):
                job.finished_units[unit.index] = (unit, out)
            ready = []
            while job.delivered in job.finished_units:
                ready.append(job.finished_units.pop(job.delivered))
                job.delivered += 1
            if ready:
                self._send_results(job, [u for u, _ in ready], [o for _, o in ready])

    def _send_results(self, job: Job, units: list[WorkUnit], outputs: list[Output]) -> None:
        if job.cancelled or job.failed:
            return
        try:
            stored = job.listener.store(job, units, outputs)
        except Exception as e:
            log.exception("storing results of %s failed", job.request_id)
            self._fail({job}, e)
            return
        with self._cond:
            job.completed += len(units)
            finished = job.completed == len(job.units)
        job.emit(job.listener.progress, job.completed, len(job.units))
        if not job.emit(job.listener.results, stored):
            # Cancelled (or its client gone) while the results were being stored: they are never
            # sent, so nothing of them may stay behind. Results already sent stay.
            job.listener.discard(job, stored)
            return
        if finished:
            self._close(job, job.listener.finished)

    def _close(self, job: Job, send: Any, *args: Any) -> None:
        """Send a job's final message, then forget it. Until then a `cancel` still finds it, so a
        cancel that comes too late is answered `unknown_request` only after the final message."""
        with job.lock:
            if not job.closed:
                job.closed = True  # before the message leaves: its client may reuse the id at once
                send(job, *args)
            with self._cond:  # the only place that takes both locks, always in this order
                if self._active.get(job.key) is job:
                    del self._active[job.key]

    def _fail(self, jobs: set[Job], error: BaseException) -> None:
        with self._cond:
            failing = [j for j in jobs if not j.cancelled and not j.failed]
            for job in failing:
                job.failed = True
                self._drop(job)
        for job in failing:
            self._close(job, job.listener.failed, error)
