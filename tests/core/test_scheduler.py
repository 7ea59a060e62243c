"""Scheduling through the core: fairness, micro-batching, cancel, disconnect, faults."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from ganbridge.core.registry import load_generators
from ganbridge.core.scheduler import JobScheduler
from ganbridge.core.service import BridgeCore
from ganbridge.core.store import ItemStore
from ganbridge.generators.base import Generator
from ganbridge.server import queue_settings
from tests.conftest import as_text, make_settings

FINAL = ("done", "cancelled", "error", "ack")  # the last message of a request


class Inbox:
    """A v1 client's view: every message the core emits to it, in order, with arrival times, its
    payloads base64 as on the wire (the core emits bytes)."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.log: list[tuple[float, dict]] = []
        self.arrived: list[tuple[float, dict]] = []  # as the core emitted them

    def emit(self, msg: dict) -> None:
        msg = as_text(msg)
        self.arrived.append((time.monotonic(), msg))
        self.q.put(msg)

    def until_final(self, rid: str, timeout: float = 120) -> list[dict]:
        # A request may have finished while an earlier drain() took its messages: look there first.
        out = [msg for _, msg in self.log if msg.get("id") == rid]
        if out and out[-1]["type"] in FINAL:
            return out
        deadline = time.monotonic() + timeout
        while True:
            msg = self.q.get(timeout=max(0.1, deadline - time.monotonic()))
            self.log.append((time.monotonic(), msg))
            if msg.get("id") == rid:
                out.append(msg)
                if msg["type"] in FINAL:
                    return out

    def drain(self, wait: float = 0.0) -> list[dict]:
        time.sleep(wait)
        out = []
        while not self.q.empty():
            msg = self.q.get()
            self.log.append((time.monotonic(), msg))
            out.append(msg)
        return out


@pytest.fixture(scope="module")
def generators():
    return load_generators(None, "cpu")


def make_core(tmp_path, generators, batching=True, store_class=ItemStore, **settings) -> BridgeCore:
    s = make_settings(tmp_path, batching=batching, **settings)
    scheduler = JobScheduler(**{**queue_settings(s), "batch_window": 0.01})
    scheduler.start()
    return BridgeCore(s, dict(generators), store_class(s.db_path, s.output_dir), scheduler)


@pytest.fixture
def core(tmp_path, generators):
    c = make_core(tmp_path, generators)
    yield c
    c.scheduler.stop()
    c.store.close()


def gen_msg(rid, count=1, size=64, **extra):
    return {
        "type": "generate",
        "id": rid,
        "generator": "texture",
        "count": count,
        "params": {"width": size, "height": size},
        **extra,
    }


def test_small_request_is_not_starved_by_a_big_one(core):
    a, b = Inbox(), Inbox()
    ca, cb = core.connect(a.emit, "a"), core.connect(b.emit, "b")
    core.handle(ca, gen_msg("big", count=12, size=256))
    core.handle(cb, gen_msg("small", count=1, size=256))
    b_msgs = b.until_final("small")
    b_done = time.monotonic()
    assert b_msgs[-1]["type"] == "done"
    a_msgs = a.until_final("big")
    a_results = [t for t, m in a.log if m["type"] == "result"]
    # B's one image was delivered while most of A's twelve were still to come
    assert sum(1 for t in a_results if t <= b_done) <= 4 and a_msgs[-1]["type"] == "done"


def test_concurrent_requests_run_as_fewer_device_calls(tmp_path, generators):
    core = make_core(tmp_path, generators, batching=True)
    try:
        inboxes = [Inbox() for _ in range(8)]
        clients = [core.connect(i.emit, f"c{n}") for n, i in enumerate(inboxes)]
        before = core.scheduler.batches_run
        threads = [
            threading.Thread(target=core.handle, args=(c, gen_msg(f"r{n}", size=128))) for n, c in enumerate(clients)
        ]
        for t in threads:
            t.start()
        for n, inbox in enumerate(inboxes):
            assert inbox.until_final(f"r{n}")[-1]["type"] == "done"
        batches = core.scheduler.batches_run - before
        assert core.scheduler.units_run == 8 and batches < 8, f"8 requests took {batches} device calls"
    finally:
        core.scheduler.stop()


def test_without_batching_each_request_is_one_device_call(tmp_path, generators):
    core = make_core(tmp_path, generators, batching=False)
    try:
        inboxes = [Inbox() for _ in range(4)]
        clients = [core.connect(i.emit) for i in inboxes]
        for n, c in enumerate(clients):
            core.handle(c, gen_msg(f"r{n}", size=128))
        for n, inbox in enumerate(inboxes):
            inbox.until_final(f"r{n}")
        assert core.scheduler.batches_run == 4
    finally:
        core.scheduler.stop()


def test_cancel_queued_job_runs_none_of_it(core):
    a, b = Inbox(), Inbox()
    ca, cb = core.connect(a.emit), core.connect(b.emit)
    core.handle(ca, gen_msg("first", count=4, size=512))
    core.handle(cb, gen_msg("queued", count=4, size=256))
    core.handle(cb, {"type": "cancel", "id": "queued"})
    msgs = b.until_final("queued")
    assert [m["type"] for m in msgs if m["type"] != "queued"] == ["accepted", "cancelled"]
    a.until_final("first")
    assert b.drain(0.3) == []
    assert core.scheduler.units_run == 4  # only A's units ever ran


def test_a_waiting_request_is_told_its_place_in_the_queue_as_it_moves_up(tmp_path, generators):
    core = make_core(tmp_path, generators, batching=False)  # one unit a turn: the queue moves unit by unit
    try:
        a = Inbox()
        ca = core.connect(a.emit)
        for n in range(3):
            core.handle(ca, gen_msg(f"r{n}", count=3, size=128))
        for n in range(3):
            assert a.until_final(f"r{n}")[-1]["type"] == "done"
    finally:
        core.scheduler.stop()
        core.store.close()
    last = [m for _, m in a.log if m.get("id") == "r2"]
    places = [m["position"] for m in last if m["type"] in ("accepted", "queued")]
    assert last[0]["type"] == "accepted" and places[0] >= 5, places  # r0 (one unit taken at most) and r1
    assert places == sorted(places, reverse=True) and len(set(places)) == len(places), places  # only changes
    assert places[-1] == 0 and len(places) >= 5, places  # moved up unit by unit to the front
    first_progress = next(i for i, m in enumerate(last) if m["type"] == "progress")
    assert all(m["type"] != "queued" for m in last[first_progress:])  # once it runs, progress takes over


def test_cancel_running_job_stops_it(core):
    a = Inbox()
    ca = core.connect(a.emit)
    core.handle(ca, gen_msg("run", count=16, size=512))  # small batches on a CPU
    while True:  # wait until it is running: the first result is out
        msg = a.q.get(timeout=60)
        if msg["type"] == "result":
            break
    core.handle(ca, {"type": "cancel", "id": "run"})
    rest = a.until_final("run")
    assert rest[-1]["type"] == "cancelled"
    assert a.drain(1.0) == []  # nothing after `cancelled`
    assert core.scheduler.units_run < 16 and core.scheduler.queued == 0


def test_disconnect_mid_job_cancels_its_work(core):
    a = Inbox()
    ca = core.connect(a.emit)
    core.handle(ca, gen_msg("gone", count=16, size=512))
    while a.q.get(timeout=60)["type"] != "result":
        pass
    core.disconnect(ca)
    time.sleep(1.0)
    ran = core.scheduler.units_run
    assert core.scheduler.queued == 0 and not core.scheduler._active
    time.sleep(0.5)
    assert core.scheduler.units_run == ran < 16


def test_full_queue_answers_busy(tmp_path, generators):
    core = make_core(tmp_path, generators, max_queue=4)
    try:
        a = Inbox()
        ca = core.connect(a.emit)
        core.handle(ca, gen_msg("fill", count=4, size=512))
        core.handle(ca, gen_msg("more", count=4, size=64))
        reply = next(m for m in a.drain(0.05) if m.get("id") == "more")
        assert reply["type"] == "error" and reply["code"] == "busy"
        a.until_final("fill")
    finally:
        core.scheduler.stop()


class ExplodingGenerator(Generator):
    """A generator whose device call fails, as a crashed or out-of-memory model would."""

    def __init__(self, inner: Generator, error: BaseException):
        self.inner, self.error = inner, error
        self.name, self.kind, self.description, self.outputs = "exploding", "texture", "fails", ["png"]
        self.params_model = inner.params_model

    def checkpoints(self):
        return self.inner.checkpoints()

    def checkpoint_for(self, params):
        return self.inner.checkpoint_for(params)

    def latent_shapes(self, params):
        return self.inner.latent_shapes(params)

    def batch_key(self, params):
        return ("boom",)

    def render(self, params, latents):
        raise self.error


@pytest.mark.parametrize("error", [RuntimeError("CUDA out of memory"), MemoryError(), ValueError("bad weights")])
def test_failing_generator_fails_only_its_request(core, error):
    core.generators["exploding"] = ExplodingGenerator(core.generators["texture"], error)
    a, b = Inbox(), Inbox()
    ca, cb = core.connect(a.emit), core.connect(b.emit)
    core.handle(ca, {"type": "generate", "id": "x", "generator": "exploding", "params": {"width": 64, "height": 64}})
    core.handle(cb, gen_msg("fine"))
    failed = a.until_final("x")[-1]
    assert failed["type"] == "error" and failed["code"] == "internal" and failed["message"]
    if isinstance(error, MemoryError) or "memory" in str(error):
        assert "out of memory" in failed["message"]
    assert b.until_final("fine")[-1]["type"] == "done"
    core.handle(ca, gen_msg("after"))
    assert a.until_final("after")[-1]["type"] == "done"


class OutOfOrderExecutor:
    """Renders in-process, but the first item of every request takes longest, as when a remote
    replica is slow for one call: with several workers, later items finish first."""

    def run(self, generator, params, latents):
        if latents and float(next(iter(latents[0].values())).ravel()[0]) == self.first_value:
            time.sleep(0.5)
        return generator.render(params, latents)

    def describe(self, generator):
        return {"kind": "test", "device": generator.device}

    def close(self):
        pass


def test_results_keep_request_order_when_workers_finish_out_of_order(tmp_path, generators):
    s = make_settings(tmp_path)
    executor = OutOfOrderExecutor()
    params = generators["texture"].params_model.model_validate({"width": 64, "height": 64})
    executor.first_value = float(next(iter(generators["texture"].random_latent(params, 100).values())).ravel()[0])
    scheduler = JobScheduler(batching=False, executor=executor, workers_per_device=4)
    scheduler.start()
    core = BridgeCore(s, dict(generators), ItemStore(s.db_path, s.output_dir), scheduler)
    try:
        inbox = Inbox()
        client = core.connect(inbox.emit)
        core.handle(client, gen_msg("ordered", count=4, seed=100))
        msgs = inbox.until_final("ordered")
        seeds = [item["seed"] for m in msgs if m["type"] == "result" for item in m["items"]]
        assert seeds == [100, 101, 102, 103]
        assert msgs[-1]["type"] == "done"
    finally:
        scheduler.stop()
        core.store.close()


def results_between(inbox: Inbox, start: float, end: float, rid: str) -> int:
    return sum(
        len(m["items"]) for t, m in inbox.arrived if start <= t <= end and m["type"] == "result" and m["id"] == rid
    )


def test_a_newcomer_waits_for_at_most_the_batch_already_running(core):
    """The hog's batches keep coming; a client that arrives with one small request is served
    next, after the hog's batch in flight, not after the hog's next batch too."""
    hog, newcomer = Inbox(), Inbox()
    c_hog, c_new = core.connect(hog.emit, "hog"), core.connect(newcomer.emit, "newcomer")
    params = core.generators["texture"].params_model.model_validate({"width": 512, "height": 512})
    batch = core.generators["texture"].max_batch(params)
    core.handle(c_hog, gen_msg("hog", count=4 * batch, size=512))
    while True:  # the hog's first batch is out and its second is running
        msg = hog.q.get(timeout=60)
        hog.log.append((time.monotonic(), msg))
        if msg["type"] == "result":
            break
    asked = time.monotonic()
    core.handle(c_new, gen_msg("small", size=64))
    assert newcomer.until_final("small")[-1]["type"] == "done"
    answered = newcomer.arrived[-1][0]
    hog.until_final("hog")
    assert results_between(hog, asked, answered, "hog") <= batch


def test_a_batch_waits_for_other_clients_only_until_each_has_sent_its_request(tmp_path, generators):
    """With two clients active, the worker holds a batch open for the other one's request, and
    sends it off as soon as that request is in, not at the end of the window."""
    s = make_settings(tmp_path)
    scheduler = JobScheduler(**{**queue_settings(s), "batch_window": 0.6, "batch_limit": 8})
    scheduler.start()
    core = BridgeCore(s, dict(generators), ItemStore(s.db_path, s.output_dir), scheduler)
    try:
        a, b = Inbox(), Inbox()
        ca, cb = core.connect(a.emit, "a"), core.connect(b.emit, "b")
        core.handle(ca, gen_msg("a0"))  # both clients active: each has sent a request just now
        core.handle(cb, gen_msg("b0"))
        a.until_final("a0")
        b.until_final("b0")
        before = scheduler.batches_run
        asked = time.monotonic()
        core.handle(ca, gen_msg("a1"))
        time.sleep(0.05)  # the worker has taken a1 and waits for b's request
        core.handle(cb, gen_msg("b1"))
        assert a.until_final("a1")[-1]["type"] == "done" and b.until_final("b1")[-1]["type"] == "done"
        answered = a.arrived[-1][0]
        assert scheduler.batches_run - before == 1, "a1 and b1 run as one batch"
        assert answered - asked < 0.45, f"the batch waited {answered - asked:.2f} s of its 0.6 s window"
        # a lone client's request is never held back
        core.disconnect(cb)
        asked = time.monotonic()
        core.handle(ca, gen_msg("a2"))
        a.until_final("a2")
        assert a.arrived[-1][0] - asked < 0.45
    finally:
        scheduler.stop()
        core.store.close()


def test_clients_taking_turns_stop_being_waited_for(tmp_path, generators):
    """Two clients that each wait for the other's result (a host and a DAW used in turn): once a
    wait for the other has run out, a batch is no longer held open for it, so neither pays the
    window on every request; one that sends while another's batch is just begun is waited for
    again."""
    s = make_settings(tmp_path)
    window = 0.3
    scheduler = JobScheduler(**{**queue_settings(s), "batch_window": window, "batch_limit": 8})
    scheduler.start()
    core = BridgeCore(s, dict(generators), ItemStore(s.db_path, s.output_dir), scheduler)
    try:
        inboxes = {"a": Inbox(), "b": Inbox()}
        clients = {name: core.connect(inbox.emit, name) for name, inbox in inboxes.items()}

        def turn(name: str, rid: str) -> float:
            asked = time.monotonic()
            core.handle(clients[name], gen_msg(rid))
            assert inboxes[name].until_final(rid)[-1]["type"] == "done"
            return inboxes[name].arrived[-1][0] - asked

        for n in range(2):  # each waits for the other once, in vain
            turn("a", f"a{n}")
            turn("b", f"b{n}")
        taken = [turn(name, f"{name}{n}") for n in range(2, 5) for name in "ab"]
        assert max(taken) < window / 2, f"turns took {[round(t, 3) for t in taken]} s with a {window} s window"
        # b sends while a's batch is waiting for nobody: b's request is caught by no wait, but
        # it came while a batch was just begun, so b is waited for again
        before = scheduler.batches_run
        core.handle(clients["a"], gen_msg("a5", size=512))
        core.handle(clients["b"], gen_msg("b5"))
        inboxes["a"].until_final("a5")
        inboxes["b"].until_final("b5")
        assert scheduler.batches_run - before == 2
        asked = time.monotonic()
        core.handle(clients["a"], gen_msg("a6"))
        time.sleep(0.05)
        core.handle(clients["b"], gen_msg("b6"))
        inboxes["a"].until_final("a6")
        inboxes["b"].until_final("b6")
        assert scheduler.batches_run - before == 3, "a6 waited for b6 and ran with it"
        assert inboxes["a"].arrived[-1][0] - asked < window + 0.1
    finally:
        scheduler.stop()
        core.store.close()


def test_one_client_filling_the_queue_locks_nobody_else_out(tmp_path, generators):
    core = make_core(tmp_path, generators, max_queue=12, max_client_queue=16)
    try:
        hog, other = Inbox(), Inbox()
        c_hog, c_other = core.connect(hog.emit, "hog"), core.connect(other.emit, "other")
        core.handle(c_hog, gen_msg("fill", count=12, size=512))  # the worker takes a batch or two at once
        core.handle(c_hog, gen_msg("more", count=4, size=64))
        busy = next(m for m in hog.drain(0.05) if m.get("id") == "more")
        assert busy["code"] == "busy" and "more than its share" in busy["message"]
        # The queue is full, but not with this client's work: its 4 are within an equal share (6).
        core.handle(c_other, gen_msg("mine", count=4, size=64))
        assert other.until_final("mine")[-1]["type"] == "done"
        hog.until_final("fill")
    finally:
        core.scheduler.stop()


def test_a_client_over_its_share_of_the_queue_is_busy(tmp_path, generators):
    core = make_core(tmp_path, generators, max_client_queue=8)
    try:
        a = Inbox()
        ca = core.connect(a.emit)
        core.handle(ca, gen_msg("eight", count=8, size=512))  # the worker takes a batch or two at once
        core.handle(ca, gen_msg("more", count=4, size=64))
        reply = next(m for m in a.drain(0.05) if m.get("id") == "more")
        assert reply["code"] == "busy" and "max_client_queue" in reply["message"]
        a.until_final("eight")
        core.handle(ca, gen_msg("later", size=64))  # its share is free again once the work is done
        assert a.until_final("later")[-1]["type"] == "done"
    finally:
        core.scheduler.stop()


def test_a_request_over_the_cost_budget_is_too_large_and_says_why(tmp_path, generators):
    core = make_core(tmp_path, generators, max_request_pixels=4 * 256 * 256)
    try:
        a = Inbox()
        ca = core.connect(a.emit)
        core.handle(ca, gen_msg("fits", count=4, size=256))
        core.handle(ca, gen_msg("over", count=5, size=256))
        core.handle(ca, gen_msg("maps", count=3, size=256, params={"width": 256, "height": 256, "maps": ["height"]}))
        replies = {m["id"]: m for m in a.drain(0.05) if m["type"] == "error"}
        assert set(replies) == {"over", "maps"}
        over = replies["over"]
        assert over["code"] == "too_large"
        assert "327,680 pixels (5 x 256x256)" in over["message"] and "max_request_pixels" in over["message"]
        assert "(3 x 256x256 with 1 map)" in replies["maps"]["message"]
        assert a.until_final("fits")[-1]["type"] == "done"
    finally:
        core.scheduler.stop()


def test_a_client_over_its_cost_budget_is_busy_until_its_work_is_done(tmp_path, generators):
    core = make_core(tmp_path, generators, max_client_pixels=4 * 512 * 512, max_request_bars=8)
    try:
        a, b = Inbox(), Inbox()
        ca, cb = core.connect(a.emit), core.connect(b.emit)
        core.handle(ca, gen_msg("big", count=4, size=512))
        core.handle(ca, gen_msg("one more", size=64))
        reply = next(m for m in a.drain(0.05) if m.get("id") == "one more")
        assert reply["code"] == "busy" and "max_client_pixels" in reply["message"]
        core.handle(cb, gen_msg("other client", size=64))  # the budget is per client
        assert b.until_final("other client")[-1]["type"] == "done"
        a.until_final("big")
        core.handle(ca, gen_msg("after", size=64))
        assert a.until_final("after")[-1]["type"] == "done"
        music = {"type": "generate", "id": "long", "generator": "music", "count": 2, "params": {"bars": 8}}
        core.handle(cb, music)
        reply = b.until_final("long")[-1]
        assert reply["code"] == "too_large" and "16 bars (2 x 8 bars)" in reply["message"]
        core.handle(cb, gen_msg("never", count=5, size=512))  # could never run: too large, not busy
        reply = b.until_final("never")[-1]
        assert reply["code"] == "too_large" and "per-client budget" in reply["message"]
        assert "max_client_pixels" in reply["message"]
    finally:
        core.scheduler.stop()


class PausingStore(ItemStore):
    """The real store, held at the moment a result's recipe is about to commit, so a test can
    cancel the request exactly then."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reached, self.release = threading.Event(), threading.Event()
        self.files_at_commit: list[tuple[str, int]] = []

    def add(self, records):
        self.files_at_commit += [(str(r.file), r.file.stat().st_size) for r in records]
        self.reached.set()
        assert self.release.wait(60)
        super().add(records)


def test_a_cancel_while_results_are_stored_leaves_no_file_and_no_record(tmp_path, generators):
    core = make_core(tmp_path, generators, store_class=PausingStore)
    try:
        a = Inbox()
        ca = core.connect(a.emit)
        core.handle(ca, gen_msg("raced", size=64, seed=5))
        assert core.store.reached.wait(60)
        # The file is complete on disk before its recipe commits (durable items).
        ((path, size),) = core.store.files_at_commit
        assert size > 0 and not path.endswith(".part")
        core.handle(ca, {"type": "cancel", "id": "raced"})
        core.store.release.set()
        msgs = a.until_final("raced")
        assert [m["type"] for m in msgs] == ["accepted", "cancelled"]
        assert a.drain(0.5) == []
        assert core.store.counts()["items"] == 0
        assert [p for p in core.store.output_dir.rglob("*") if p.is_file()] == []
    finally:
        core.store.release.set()
        core.scheduler.stop()


class AllocatingGenerator(ExplodingGenerator):
    """Asks torch for more memory than any machine has: torch's own out-of-memory error."""

    def __init__(self, inner: Generator):
        super().__init__(inner, MemoryError())

    def cost(self, params):
        return self.inner.cost(params)

    def render(self, params, latents):
        import torch

        torch.empty(2**60, dtype=torch.uint8)
        raise AssertionError("unreachable")


def test_out_of_memory_names_the_request_and_the_budget(core):
    core.generators["allocating"] = AllocatingGenerator(core.generators["texture"])
    a = Inbox()
    ca = core.connect(a.emit)
    msg = {
        "type": "generate",
        "id": "huge",
        "generator": "allocating",
        "count": 2,
        "params": {"width": 1024, "height": 512},
    }
    core.handle(ca, msg)
    failed = a.until_final("huge")[-1]
    assert failed["code"] == "internal"
    assert "ran out of memory on this request of 2 x 1024x512 (1,048,576 pixels" in failed["message"]
    assert "max_request_pixels" in failed["message"] and "alloc" not in failed["message"]


def test_a_cancel_that_comes_too_late_is_answered_after_the_final_message(core):
    """generate, then cancel at every moment of its life: the request ends with exactly one of
    `done` or `cancelled`, and a cancel that missed it (`unknown_request`) is answered after that."""
    import random

    rng = random.Random(4)
    a = Inbox()
    ca = core.connect(a.emit)
    endings = set()
    for n in range(150):
        rid = f"r{n}"
        core.handle(ca, gen_msg(rid, size=64, seed=n))
        time.sleep(rng.uniform(0, 0.02))
        core.handle(ca, {"type": "cancel", "id": rid})
        msgs = a.until_final(rid)
        if msgs[-1]["type"] == "done":  # the cancel missed it: its answer must come next
            msgs.append(a.q.get(timeout=10))
        kinds = [m["type"] for m in msgs]
        assert kinds[0] == "accepted", kinds
        if kinds[-1] == "cancelled":
            assert "done" not in kinds and "error" not in kinds, kinds
        else:
            assert kinds[-2:] == ["done", "error"] and msgs[-1]["code"] == "unknown_request", kinds
        endings.add(kinds[-1])
    assert endings == {"cancelled", "error"}  # both orders happened


def test_live_frames_treat_the_gap_between_a_clients_requests_as_busy(core):
    # a client that sends its next request when the last is answered leaves a gap between them;
    # live frames that started there ran beside its next request (see core/live.py)
    def waited(grace: float, timeout: float) -> float:
        t0 = time.monotonic()
        core.scheduler.wait_until_idle(grace, timeout)
        return time.monotonic() - t0

    assert waited(60.0, 5.0) < 0.5  # nothing has run yet
    inbox = Inbox()
    client = core.connect(inbox.emit, "a")
    core.handle(client, gen_msg("one"))
    assert inbox.until_final("one")[-1]["type"] == "done"
    assert 0.2 <= waited(60.0, 0.2) < 1.0  # a batch just ended: the timeout
    time.sleep(0.05)
    assert waited(0.01, 5.0) < 0.5  # past the grace
    assert 0.1 <= waited(0.6, 5.0) < 0.6  # the rest of the grace (about 0.35 s), woken by no request


def test_a_frame_waiting_for_requests_goes_when_they_end(core):
    inbox = Inbox()
    client = core.connect(inbox.emit, "a")
    core.handle(client, gen_msg("big", count=4, size=256))
    t0 = time.monotonic()
    core.scheduler.wait_until_idle(0.0, 60.0)
    waited = time.monotonic() - t0
    assert inbox.until_final("big", timeout=1)[-1]["type"] == "done", waited  # it waited for them
    assert waited < 30, waited
