"""The Ray driver, in a child process of the bridge.

Measured here with ray 2.60: when the cluster dies, a driver's calls hang, `ray.init` to a
dead address retries forever, and 60 s later the Ray core kills the driver's whole process.
So the bridge never imports Ray itself: this process connects, deploys and forwards render
calls, and the bridge (bridge/ray_backend.py) puts a deadline on every answer and replaces
this process when it misses one or dies.

Messages on the pipe are (call id, op, payload) one way and (call id, tag, value) back, with
tag "ok", "error", "died" (a replica died under the call) or "missing" (not deployed).

In the one-machine mode (`ray_address` local) this process's `ray.init()` starts a private Ray
(bridge/ray_head.PrivateRay: its own folder and token, loopback only). When the pipe closes
(the bridge stops or died) or on SIGTERM/SIGINT, this process shuts that Ray down, kills what
is left of it and removes its folder; the bridge does the same once this process is gone, in
case it was killed first.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ganbridge.cluster.head import PrivateRay
from ganbridge.core.settings import Settings

log = logging.getLogger("ganbridge.ray")

# The gateway's orderly exit (ray.shutdown, then removing the private Ray) is cut short after
# this; the bridge waits a little longer for it before it kills the gateway.
SHUTDOWN_S = 15.0
GONE = ("DELETING",)  # an application about to vanish: a bridge deploys it as if it were missing


def app_name(prefix: str, kind: str, checkpoint: str) -> str:
    return f"{prefix}{kind}-{checkpoint}"


@dataclass
class AppSpec:
    """One checkpoint to deploy: the replica reads nothing from the bridge's disk but these bytes."""

    prefix: str
    kind: str
    checkpoint: str
    path: str

    @property
    def name(self) -> str:
        return app_name(self.prefix, self.kind, self.checkpoint)


@dataclass
class AppState:
    name: str
    status: str
    message: str
    replicas: dict[str, int]

    @property
    def running(self) -> int:
        return self.replicas.get("RUNNING", 0)


class DeployError(RuntimeError):
    pass


class ServeCluster:
    """Connect, deploy and query status; runs inside the gateway process (or a CLI command)."""

    def __init__(self, settings: Settings, private: PrivateRay | None = None):
        self.settings = settings
        self.private = private  # where the one-machine mode's Ray lives (its environment is set already)

    def connect(self) -> None:
        import ray
        from ray import serve

        if not ray.is_initialized():
            check_reachable(self.settings.ray_address)
            common = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": False}
            if self.settings.ray_address == "local":
                # "local", not None: with None, Ray would join a cluster named by RAY_ADDRESS or
                # found in /tmp/ray instead of starting this machine's private one.
                temp = str(self.private.temp) if self.private else None
                ray.init(address="local", include_dashboard=False, _temp_dir=temp, **common)
            else:
                ray.init(address=self.settings.ray_address, **common)
        serve.start(proxy_location="Disabled", logging_config={"enable_access_log": False})

    def gpus_per_replica(self, apps: int = 1) -> float:
        """The setting, or a share of the cluster's GPUs: a whole GPU per replica when there are
        enough, else a fraction, so that (say) seven checkpoints still all run on four GPUs."""
        import ray

        if self.settings.ray_num_gpus is not None:
            return self.settings.ray_num_gpus
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus <= 0:
            return 0.0
        share = gpus / max(1, apps * self.settings.ray_min_replicas)
        return 1.0 if share >= 1 else max(0.01, math.floor(share * 100) / 100)

    def application(self, spec: AppSpec, gpus: float) -> Any:
        from ganbridge.cluster.replica import GeneratorReplica

        s = self.settings
        scaling: dict[str, Any]
        if s.ray_max_replicas > s.ray_min_replicas:
            scaling = {"autoscaling_config": {"min_replicas": s.ray_min_replicas,
                                              "max_replicas": s.ray_max_replicas,
                                              "target_ongoing_requests": s.ray_target_ongoing}}  # fmt: skip
        else:
            scaling = {"num_replicas": s.ray_min_replicas}
        options = {"soundfont": str(s.soundfont) if s.soundfont else None, "torch_threads": s.ray_torch_threads}
        path = Path(spec.path)
        return GeneratorReplica.options(
            # Serve's default of 5 ongoing requests per replica would cap every batch at 5.
            max_ongoing_requests=max(2 * s.ray_max_batch_size, s.ray_target_ongoing),
            ray_actor_options={"num_cpus": s.ray_cpus_per_replica, "num_gpus": gpus},
            user_config={"max_batch_size": s.ray_max_batch_size, "batch_wait_timeout_s": s.ray_batch_wait_ms / 1000},
            health_check_period_s=2,
            **scaling,
        ).bind(
            spec.kind,
            spec.checkpoint,
            path.read_bytes(),
            path.with_suffix(".json").read_bytes(),
            "cuda" if gpus > 0 else "cpu",
            options,
        )

    def deploy(self, specs: list[AppSpec], apps: int | None = None) -> dict[str, AppState]:
        """Deploy with this command's settings (`ganbridge deploy`: it updates running apps too),
        without blocking, then poll `serve.status()` until every app runs; raise DeployError
        naming what could not start, at the first failure or after the deadline. `apps` is how
        many checkpoints share the GPUs (default: these)."""
        from ray import serve

        gpus = self.gpus_per_replica(apps or len(specs))
        targets = [serve.RunTarget(self.application(s, gpus), name=s.name, route_prefix=None) for s in specs]
        if targets:
            serve.run_many(targets, wait_for_applications_running=False)
        return self.wait_running([s.name for s in specs])

    def deploy_missing(self, specs: list[AppSpec]) -> tuple[dict[str, AppState], list[str]]:
        """What a bridge does: deploy only the apps the cluster lacks, and use the others as they
        are. Redeploying a running app would replace the replica settings that `ganbridge
        deploy` gave it (say --max-replicas 4) with this bridge's. Returns the states of all
        and the names that were there already."""
        states = self.status()
        existing = [s.name for s in specs if s.name in states and states[s.name].status not in GONE]
        missing = [s for s in specs if s.name not in existing]
        if missing:
            self.deploy(missing, apps=len(specs))  # GPU shares as if all were deployed together
        return self.wait_running([s.name for s in specs]), existing

    def wait_running(self, names: list[str]) -> dict[str, AppState]:
        deadline = time.monotonic() + self.settings.ray_deploy_timeout_s
        while True:
            states = self.status()
            mine = {n: states.get(n) for n in names}
            failed = [s for s in mine.values() if s and s.status in ("DEPLOY_FAILED", "UNHEALTHY")]
            if failed:
                raise DeployError("; ".join(f"{s.name}: {s.status}: {s.message}" for s in failed))
            if all(s and s.status == "RUNNING" for s in mine.values()):
                return mine  # type: ignore[return-value]
            if time.monotonic() > deadline:
                waiting = [f"{n}: {s.status}: {s.message}" if s else f"{n}: not created"
                           for n, s in mine.items() if not (s and s.status == "RUNNING")]  # fmt: skip
                raise DeployError(
                    f"not running after {self.settings.ray_deploy_timeout_s:.0f} s (does the cluster have the "
                    "CPUs/GPUs a replica asks for?): " + "; ".join(waiting)
                )
            time.sleep(0.5)

    def status(self) -> dict[str, AppState]:
        from ray import serve

        states: dict[str, AppState] = {}
        for name, app in serve.status().applications.items():
            if not name.startswith(self.settings.ray_app_prefix):
                continue
            replicas: Counter[str] = Counter()
            messages = [app.message] if app.message else []
            for dep in app.deployments.values():
                replicas.update({_text(k): v for k, v in dep.replica_states.items()})
                if dep.message:
                    messages.append(dep.message)
            states[name] = AppState(name, _text(app.status), " ".join(messages), dict(replicas))
        return states

    def app_settings(self) -> dict[str, dict[str, Any]]:
        """The replica settings each application of this prefix runs with, as Serve's controller
        has them (what `ganbridge deploy --status` shows). Serve's public API has no call for it
        in 2.60; the controller client's serve details are what its REST API returns."""
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        if client is None:  # not connected to Serve: nothing is deployed that we could read
            return {}
        details = client.get_serve_details()
        return {
            name: _deployment_settings(next(iter(app["deployments"].values()))["deployment_config"])
            for name, app in details.get("applications", {}).items()
            if name.startswith(self.settings.ray_app_prefix) and app.get("deployments")
        }


def _deployment_settings(config: dict[str, Any]) -> dict[str, Any]:
    auto = config.get("autoscaling_config") or {}
    actor = config.get("ray_actor_options") or {}
    return {
        "min_replicas": auto.get("min_replicas", config.get("num_replicas")),
        "max_replicas": auto.get("max_replicas", config.get("num_replicas")),
        "max_ongoing_requests": config.get("max_ongoing_requests"),
        "num_cpus": actor.get("num_cpus"),
        "num_gpus": actor.get("num_gpus"),
        "max_batch_size": (config.get("user_config") or {}).get("max_batch_size"),
    }


def check_reachable(address: str) -> None:
    """Fail at once when nothing listens at HOST:PORT: `ray.init` would retry for ever."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # local, auto or ray://: Ray finds or starts the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {address} ({e}); is the Ray head node running?") from None


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


# --- the child process ----------------------------------------------------------------------------


class Gateway:
    def __init__(self, conn: Connection, settings: Settings, private: PrivateRay | None = None):
        self.conn = conn
        self.private = private
        self.cluster = ServeCluster(settings, private)
        self.handles: dict[str, Any] = {}
        self.send_lock = threading.Lock()
        self.loop = asyncio.new_event_loop()

    def reply(self, call: int, tag: str, value: Any) -> None:
        with self.send_lock:
            self.conn.send((call, tag, value))

    def handle(self, name: str) -> Any:
        from ray import serve

        if name not in self.handles:
            self.handles[name] = serve.get_app_handle(name)
        return self.handles[name]

    async def render(self, call: int, name: str, request: Any) -> None:
        from ray import exceptions as rex
        from ray.serve.exceptions import RayServeException

        try:
            result = await self.handle(name).render.remote(request)
        except (rex.RayActorError, rex.ActorUnavailableError) as e:
            self.reply(call, "died", f"{type(e).__name__}: {e}")
        except RayServeException as e:
            self.handles.pop(name, None)
            self.reply(call, "missing", f"{name} is not deployed on the Ray cluster: {e}")
        except Exception as e:
            self.reply(call, "error", f"{type(e).__name__}: {e}")
        else:
            self.reply(call, "ok", result)

    async def blocking(self, call: int, fn: Any, *args: Any) -> None:
        try:
            value = await asyncio.to_thread(fn, *args)
        except Exception as e:
            self.reply(call, "error", f"{type(e).__name__}: {e}")
        else:
            self.reply(call, "ok", value)

    def dispatch(self, call: int, op: str, payload: Any) -> None:
        if op == "render":
            self.loop.create_task(self.render(call, *payload))
        elif op == "connect":
            self.loop.create_task(self.blocking(call, self.cluster.connect))
        elif op == "deploy":
            self.loop.create_task(self.blocking(call, self._deploy, payload))
        elif op == "status":
            self.loop.create_task(self.blocking(call, self._status))
        else:
            self.reply(call, "error", f"unknown op {op!r}")

    def _deploy(self, specs: list[dict]) -> dict[str, Any]:
        self.handles.clear()
        states, existing = self.cluster.deploy_missing([AppSpec(**s) for s in specs])
        return {"apps": {n: asdict(s) for n, s in states.items()}, "existing": existing}

    def _status(self) -> dict[str, Any]:
        apps = {n: asdict(s) for n, s in self.cluster.status().items()}
        return {"apps": apps, "gpus_per_replica": self.cluster.gpus_per_replica()}

    def read(self) -> None:
        """Pipe -> event loop; the parent closing the pipe (or dying) ends this process."""
        try:
            while True:
                call, op, payload = self.conn.recv()
                self.loop.call_soon_threadsafe(self.dispatch, call, op, payload)
        except (EOFError, OSError):
            self.loop.call_soon_threadsafe(self.loop.stop)

    def run(self) -> None:
        """Until the pipe closes or a SIGTERM/SIGINT (a service manager stops every process of
        the bridge at once); then exit() runs, as it would not if these signals killed us."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.loop.stop)
        threading.Thread(target=self.read, name="gateway-reader", daemon=True).start()
        self.loop.run_forever()

    def exit(self) -> None:
        """Shut the private Ray down and remove it; a shared cluster only loses this driver (and
        `ray.shutdown()` could hang on a dead one). Never returns: a render or deploy thread
        still waiting on the cluster must not hold the exit up."""
        watchdog = threading.Timer(SHUTDOWN_S, self._remove_and_exit, args=(1,))
        watchdog.daemon = True
        watchdog.start()
        if self.private is not None:
            try:
                import ray

                ray.shutdown()  # stops the Ray processes this driver started
            except Exception as e:  # the folder is removed all the same
                log.warning("ray.shutdown() failed: %s", e)
        self._remove_and_exit(0)

    def _remove_and_exit(self, code: int) -> None:
        if self.private is not None:
            self.private.remove()  # whatever ray.shutdown() left (Ray's agents, a hung daemon)
        os._exit(code)


def main() -> None:
    """`python -m bridge.ray_gateway FD [FOLDER]`: FD is this end of a socket pair (the settings
    come first on it); FOLDER is the private Ray's in the one-machine mode."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s ray-gateway: %(message)s")
    conn = Connection(int(sys.argv[1]))
    private = PrivateRay(Path(sys.argv[2])) if len(sys.argv) > 2 else None
    settings = conn.recv()
    gateway = Gateway(conn, settings, private)
    gateway.run()
    gateway.exit()


if __name__ == "__main__":
    main()
