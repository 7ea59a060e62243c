"""`--backend ray`: the scheduler's batches run on Ray Serve replicas instead of in this process.

The bridge keeps everything but rendering: doors, store, steering and recipes, and the
generators' descriptions (params, latent shapes). `RayExecutor` sends each (params, latent)
pair to the Serve application of its checkpoint, where Serve batches the requests of every
bridge on the cluster. The Ray driver lives in a child process (bridge/ray_gateway.py says
why); every call to it has a deadline. A missed deadline fails that request with a clear
`unavailable` error and replaces the child, which reconnects on the next request and deploys
what is missing (it never changes a running application: `ganbridge deploy` owns the
settings). A replica that dies fails only its in-flight calls, and those are retried once.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ganbridge.cluster.gateway import SHUTDOWN_S, AppSpec, app_name
from ganbridge.cluster.head import PrivateRay
from ganbridge.core.settings import Settings
from ganbridge.generators.base import Generator, Latent, Output, Unavailable

log = logging.getLogger("ganbridge.ray")

RETRY_AFTER_S = 5.0  # after a failed connect, requests fail at once for this long


class BackendUnavailable(Unavailable):
    """The Ray cluster cannot serve a request now (down, unreachable, not deployable)."""


class RayGateway:
    """The child process that is the Ray driver, and calls to it with deadlines."""

    def __init__(self, settings: Settings, specs: list[AppSpec]):
        self.settings = settings
        self.specs = specs
        self._lock = threading.RLock()  # starting and stopping the child
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count()
        self._proc: Any = None
        self._conn: Any = None
        self._private: PrivateRay | None = None  # the one-machine mode's Ray of the current child
        self._generation = 0  # which child a call went to, so a late timeout kills only its own
        self._down_until = 0.0
        self._down_reason = ""

    @property
    def address(self) -> str:
        return self.settings.ray_address

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------
    def ensure(self) -> None:
        """Start (connect and deploy) unless running; raise BackendUnavailable if that fails."""
        with self._lock:
            if self.alive:
                return
            if time.monotonic() < self._down_until:
                raise BackendUnavailable(self._down_reason)
            try:
                self._start()
            except BackendUnavailable as e:
                self.stop(str(e))
                self._down_until = time.monotonic() + RETRY_AFTER_S
                self._down_reason = str(e)
                raise

    def _start(self) -> None:
        args, env = self._child_args()
        # A new interpreter, not a fork (which would copy the bridge's threads and torch state),
        # and not multiprocessing's spawn (which re-runs the parent's __main__). Its own session:
        # a Ctrl-C in the terminal reaches the bridge alone, which then stops it in order.
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ganbridge.cluster.gateway", str(theirs.fileno()), *args],
            pass_fds=(theirs.fileno(),),
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            start_new_session=True,
        )
        theirs.close()
        parent = Connection(ours.detach())
        parent.send(self.settings)
        self._proc, self._conn = proc, parent
        self._generation += 1
        threading.Thread(target=self._read, args=(parent, self._generation), name="ray-reader", daemon=True).start()
        t0 = time.monotonic()
        tag, value = self._call("connect", None, self.settings.ray_timeout_s, what="connect")
        if tag != "ok":
            raise BackendUnavailable(f"cannot connect to the Ray cluster at {self.address}: {value}")
        tag, value = self._call("deploy", [asdict(s) for s in self.specs], self.settings.ray_deploy_timeout_s + 30,
                                what="deploy")  # fmt: skip
        if tag != "ok":
            raise BackendUnavailable(f"could not deploy to the Ray cluster at {self.address}: {value}")
        self._log_deployed(value, time.monotonic() - t0)

    def _child_args(self) -> tuple[list[str], dict[str, str] | None]:
        """The one-machine mode gives each child a new private Ray (the old one went with the
        old child); a shared cluster needs nothing."""
        if self.address != "local":
            return [], None
        self._private = private = PrivateRay.create()
        log.info("starting a private Ray on this machine (loopback only) in %s", private.root)
        return [str(private.root)], private.env(dict(os.environ))

    def _log_deployed(self, value: dict[str, Any], seconds: float) -> None:
        existing = value["existing"]
        log.info("Ray at %s: %d application(s) running (%.1f s)", self.address, len(value["apps"]), seconds)
        if existing:
            log.info("using the existing deployment of %d application(s) with its settings (`ganbridge deploy` "
                     "changes them): %s", len(existing), ", ".join(existing))  # fmt: skip

    def stop(self, reason: str) -> None:
        with self._lock:
            proc, conn, private = self._proc, self._conn, self._private
            self._proc = self._conn = self._private = None
        if conn is not None:
            _hang_up(conn)  # the child sees the pipe close: a private Ray shuts down in order
        if proc is not None:
            _end(proc, grace=SHUTDOWN_S + 5 if private is not None else 0.0)
        if private is not None:
            private.remove()  # in case the child was killed before it could
        self._fail_pending(reason)

    def close(self) -> None:
        self.stop("the bridge is shutting down")

    def _fail_pending(self, reason: str) -> None:
        with self._send_lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(BackendUnavailable(reason))

    def _read(self, conn: Any, generation: int) -> None:
        try:
            while True:
                call, tag, value = conn.recv()
                with self._send_lock:
                    fut = self._pending.pop(call, None)
                if fut is not None and not fut.done():
                    fut.set_result((tag, value))
        except (EOFError, OSError):
            pass
        if generation == self._generation and self._conn is conn:
            log.warning("the Ray connection process exited")
            self._fail_pending("the Ray connection process exited")
            self.stop("the Ray connection process exited; the bridge reconnects on the next request")

    # -- calls --------------------------------------------------------------------------------
    def submit(self, op: str, payload: Any) -> tuple[Future, int]:
        fut: Future = Future()
        with self._send_lock:
            conn, generation = self._conn, self._generation
            if conn is None:
                raise BackendUnavailable(f"not connected to the Ray cluster at {self.address}")
            call = next(self._ids)
            self._pending[call] = fut
            try:
                conn.send((call, op, payload))
            except (OSError, ValueError) as e:
                self._pending.pop(call, None)
                raise BackendUnavailable(f"the Ray connection process is gone: {e}") from e
        return fut, generation

    def wait(self, fut: Future, generation: int, timeout: float, what: str) -> tuple[str, Any]:
        try:
            return fut.result(timeout=max(0.0, timeout))
        except FutureTimeout:
            reason = (
                f"the Ray cluster at {self.address} did not answer ({what}) within {self.settings.ray_timeout_s:.0f} s;"
                " the bridge reconnects on the next request"
            )
            if generation == self._generation:
                log.warning("%s", reason)
                self.stop(reason)
            raise BackendUnavailable(reason) from None

    def _call(self, op: str, payload: Any, timeout: float, what: str) -> tuple[str, Any]:
        fut, generation = self.submit(op, payload)
        return self.wait(fut, generation, timeout, what)

    def call(self, op: str, payload: Any, timeout: float | None = None) -> tuple[str, Any]:
        self.ensure()
        return self._call(op, payload, timeout or self.settings.ray_timeout_s, what=op)


class RayExecutor:
    """Runs the scheduler's batches on Serve replicas, one call per item."""

    def __init__(self, gateway: RayGateway):
        self.gateway = gateway
        self._status: tuple[float, dict[str, Any]] = (0.0, {})

    def run(self, generator: Generator, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        from ganbridge.cluster.replica import RenderFailure, RenderRequest

        prefix = self.gateway.settings.ray_app_prefix
        calls: dict[str, list[int]] = {}  # one call per checkpoint's application
        for i, p in enumerate(params):
            calls.setdefault(app_name(prefix, generator.kind, generator.checkpoint_for(p).name), []).append(i)
        # Defaults stay out: a replica knows only its own checkpoint, so its params model lacks what
        # other checkpoints of the kind add (an unconditional image model has no `category`), and it
        # fills the same defaults from the same code.
        requests = [RenderRequest(p.model_dump(mode="json", exclude_defaults=True), z) for p, z in zip(params, latents)]
        names = list(calls)
        answers = self._render(names, [[requests[i] for i in calls[n]] for n in names], retry=True)
        results: list = [None] * len(params)
        for name, answer in zip(names, answers):
            for i, out in zip(calls[name], answer):
                results[i] = out
        failures = [r.message for r in results if isinstance(r, RenderFailure)]
        if failures:
            raise RuntimeError(failures[0])
        return results

    def _render(self, names: list[str], batches: list[list], retry: bool) -> list[list]:
        gw = self.gateway
        gw.ensure()
        calls = [gw.submit("render", (n, b)) for n, b in zip(names, batches)]
        deadline = time.monotonic() + gw.settings.ray_timeout_s
        answers = [gw.wait(f, g, deadline - time.monotonic(), "render") for f, g in calls]
        lost = [i for i, (tag, _) in enumerate(answers) if tag in ("died", "missing")]
        if lost and retry:
            # A replica died under these calls (Serve replaces it) or an app vanished (the next
            # start redeploys it): try those once more.
            log.warning("%d call(s) lost (%s); retrying once", len(lost), answers[lost[0]][1])
            if any(answers[i][0] == "missing" for i in lost):
                gw.stop("an application was missing on the cluster; redeploying")
            again = self._render([names[i] for i in lost], [batches[i] for i in lost], retry=False)
            for i, value in zip(lost, again):
                answers[i] = ("ok", value)
        for tag, value in answers:
            if tag == "error":
                raise RuntimeError(f"the Ray replica failed: {value}")
            if tag in ("died", "missing"):
                raise BackendUnavailable(f"a Ray replica failed twice: {value}")
        return [value for _, value in answers]

    def status(self) -> dict[str, Any]:
        """The ganbridge applications on the cluster (cached 2 s; {} when not connected, since
        a welcome message must not wait for a reconnect)."""
        at, cached = self._status
        if time.monotonic() - at < 2.0:
            return cached
        if not self.gateway.alive:
            return {"apps": {}, "gpus_per_replica": None}
        tag, value = self.gateway.call("status", None)
        states = value if tag == "ok" else {"apps": {}, "gpus_per_replica": None}
        self._status = (time.monotonic(), states)
        return states

    def describe(self, generator: Generator) -> dict[str, Any]:
        status = self.status()
        states = status["apps"]
        apps = []
        absent = "NOT_CONNECTED" if status["gpus_per_replica"] is None else "NOT_DEPLOYED"
        for ref in generator.checkpoints():
            name = app_name(self.gateway.settings.ray_app_prefix, generator.kind, ref.name)
            state = states.get(name)
            apps.append({"checkpoint": ref.name, "app": name, "status": state["status"] if state else absent,
                         "replicas": state["replicas"].get("RUNNING", 0) if state else 0})  # fmt: skip
        gpus = status["gpus_per_replica"]
        device = "unknown (not connected)" if gpus is None else "cuda" if gpus > 0 else "cpu"
        return {"kind": "ray", "address": self.gateway.address, "device": device, "apps": apps}

    def close(self) -> None:
        self.gateway.close()


def _hang_up(conn: Connection) -> None:
    """Close the pipe so that the child sees it closed: a plain close() does not while our
    reader thread is blocked in recv() on it (the socket lives on until that call returns), so
    shut the socket down first, which also wakes that thread."""
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _end(proc: subprocess.Popen, grace: float) -> None:
    """Let the child exit by itself for `grace` seconds, then SIGTERM (it exits in order), then
    SIGKILL."""
    for step, wait in ((None, grace), (proc.terminate, 3.0), (proc.kill, 3.0)):
        if proc.poll() is not None:
            return
        if step is not None:
            step()
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def app_specs(settings: Settings, generators: dict[str, Generator]) -> list[AppSpec]:
    prefix = settings.ray_app_prefix
    return [AppSpec(prefix, g.kind, ref.name, str(ref.path)) for g in generators.values() for ref in g.checkpoints()]
