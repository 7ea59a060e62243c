"""Bridge events applied on the host's UI thread in order, in short slices, with the heavy part of
each (decoding, compositing) done first on a worker thread.

Pure Python, shared by every plugin (each build copies it in). A host adds one `Work` per event as
it arrives and calls `WorkQueue.run(budget)` from its UI timer. `prepare` runs on the worker as soon
as the work is added; `apply` runs on the UI thread once every earlier work has finished, and may
be a generator: each `yield` ends a slice, and the queue goes on with it at the next tick once the
tick's time budget is spent (at once when a slice yields NEXT_TICK: what comes next is one long
host call, which should not follow other slices in the same tick). So a 2048² result is decoded
while the artist keeps working and goes into the document a piece per tick, and a request's
`done` is still handled after its last result.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

TICK_BUDGET = 0.012  # seconds of UI-thread work a tick starts slices in (one frame at 60 Hz is 16 ms)
NEXT_TICK = "next tick"  # yielded by a slice: the next one is long (a host call), start it in a fresh tick


@dataclass
class Work:
    """apply(prepared) on the UI thread; prepared = prepare() from the worker (None without one).
    If prepare raises, fail(exception) runs on the UI thread in apply's place."""

    apply: Callable[[Any], Iterator[str | None] | None]
    prepare: Callable[[], Any] | None = None
    fail: Callable[[BaseException], None] | None = None
    _future: Future | None = field(default=None, repr=False)
    _slices: Iterator[str | None] | None = field(default=None, repr=False)


class WorkQueue:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganbridge-work")
        self._queue: deque[Work] = deque()
        self.longest_slice = 0.0  # seconds: the longest single slice so far (the tests read it)
        self._running = False

    def add(self, work: Work) -> None:
        if work.prepare is not None:
            work._future = self._pool.submit(work.prepare)
        self._queue.append(work)

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def run(self, budget: float = TICK_BUDGET) -> int:
        """Run slices, oldest work first, until the budget is spent, the queue is empty or its
        first work is still being prepared. Returns how many slices ran. Never waits.

        A call made from inside a slice (a host call that spins a nested event loop, whose timer
        calls run again) returns 0 at once: a slice never starts inside another."""
        if self._running:
            return 0
        self._running = True
        try:
            return self._run(budget)
        finally:
            self._running = False

    def _run(self, budget: float) -> int:
        start = time.perf_counter()
        slices = 0
        while self._queue and time.perf_counter() - start < budget:
            work = self._queue[0]
            if work._future is not None and not work._future.done():
                break
            t = time.perf_counter()
            finished, fresh_tick = self._step(work)
            self.longest_slice = max(self.longest_slice, time.perf_counter() - t)
            slices += 1
            if finished:
                self._queue.popleft()
            if fresh_tick:
                break
        return slices

    def _step(self, work: Work) -> tuple[bool, bool]:
        """One slice of `work`: (finished, the next slice wants a fresh tick). An exception from
        the host's own code finishes it too and propagates, so a bug never wedges the queue."""
        try:
            if work._slices is None:
                prepared, error = None, None
                if work._future is not None:
                    error = work._future.exception()
                    prepared = None if error is not None else work._future.result()
                if error is not None:
                    if work.fail is not None:
                        work.fail(error)
                    return True, False
                work._slices = work.apply(prepared)
                if work._slices is None:
                    return True, False
            return False, next(work._slices) == NEXT_TICK
        except StopIteration:
            return True, False
        except BaseException:
            self._queue.popleft()
            raise

    def clear(self) -> None:
        """Drop every work not yet applied (its prepared part is discarded)."""
        for work in self._queue:
            if work._slices is not None:
                work._slices.close()
        self._queue.clear()

    def close(self) -> None:
        self.clear()
        self._pool.shutdown(wait=False)
