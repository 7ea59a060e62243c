"""`--backend ray` against a real Ray head node on this machine (`ray start --head`), and in
the one-machine mode with its private Ray.

The one-machine tests run first, before the module's cluster starts. Then one module-scoped
cluster and one Ray-backed bridge subprocess serve every other test here; the test that kills
the cluster runs last. The protocol tests of the in-process backend run unchanged through
this bridge.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from ganbridge.cluster.head import PrivateRay, cluster_processes
from tests.cluster.ray_support import RayBridge, RayHead, deploy_cli, is_loopback, listening, ray_command
from tests.conftest import WsClient, content, missing_host
from tests.core import test_protocol as proto

pytestmark = pytest.mark.ray

TIMEOUT_S = 20  # the bridge's deadline for every cluster call in these tests (a retried call waits
# for a new replica to start; on a loaded 2-core machine 10 s was once too short)


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        missing_host("Ray Serve is not installed", "pip install -e '.[ray]'")
    if ray_command() is None:
        missing_host("the ray command is not installed", "pip install -e '.[ray]'")


@pytest.fixture(scope="module")
def head() -> Iterator[RayHead]:
    require_ray()
    head = RayHead()
    head.start()
    yield head
    head.stop()


@pytest.fixture(scope="module")
def ray_bridge(head, tmp_path_factory) -> Iterator[RayBridge]:
    bridge = RayBridge(head, tmp_path_factory.mktemp("ray-bridge"), ray_timeout_s=str(TIMEOUT_S))
    try:
        bridge.wait_ready()
        yield bridge
    finally:
        bridge.stop()


def client(bridge: RayBridge) -> WsClient:
    return WsClient(connect(bridge.url, compression=None, max_size=None, open_timeout=30).__enter__())


@pytest.fixture
def ray_ws(ray_bridge) -> Iterator[WsClient]:
    c = client(ray_bridge)
    yield c
    c.close()


def _alive(procs: list) -> list:
    import psutil

    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(procs: list, root: Path, timeout: float) -> list:
    """What is still there after `timeout` s: the processes that still run and the folder."""
    deadline = time.monotonic() + timeout
    while (_alive(procs) or root.exists()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return _alive(procs) + ([root] if root.exists() else [])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_one_machine_mode_is_loopback_only_and_leaves_nothing_behind(sig, tmp_path):
    """`serve --backend ray` with no cluster starts a private Ray. SIGTERM kills the bridge at
    once (its Ray driver then cleans up); SIGINT stops it in order (the bridge cleans up)."""
    require_ray()
    replica_folders = set(Path("/tmp").glob("ganbridge-replica-*"))
    bridge = RayBridge(None, tmp_path, ray_timeout_s="60")
    procs: list = []
    root = Path("/nonexistent")
    try:
        bridge.wait_ready()
        # A replica's worker takes its "ray::ServeReplica" name when its actor starts, which on a
        # loaded machine can come a moment after the bridge says it is ready.
        deadline = time.monotonic() + 20
        while True:
            procs, root = bridge.processes(), bridge.private_root()
            names = {p.name() for p in _alive(procs)}
            if any(n.startswith("ray::ServeReplica") for n in names) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names
        assert any(n.startswith("ray::ServeReplica") for n in names), names
        wide = [entry for entry in listening(procs) if not is_loopback(entry[1])]
        assert not wide, f"listening beyond loopback: {wide}"
        assert len(listening(procs)) > len(procs) // 2  # the check saw the listeners
        # The token: the private Ray's own, 0600 in a 0700 folder; nothing in the home folder.
        assert (root.stat().st_mode & 0o777, (root / "auth_token").stat().st_mode & 0o777) == (0o700, 0o600)
        assert not (bridge.home / ".ray").exists()
        gateway = next(p.pid for p in procs if "ganbridge.cluster.gateway" in " ".join(p.cmdline()))

        t0 = time.monotonic()
        bridge.proc.send_signal(sig)
        bridge.proc.wait(60)
        left = _wait_gone(procs, root, 40)
        print(f"{sig.name}: bridge and private Ray gone after {time.monotonic() - t0:.1f} s")
        assert not left, f"left behind: {left}"
        assert not cluster_processes(root)  # also none the snapshot missed
        assert not list(Path("/tmp/ray").glob(f"session_*_{gateway}"))  # Ray's default folder untouched
        assert not set(Path("/tmp").glob("ganbridge-replica-*")) - replica_folders  # the replicas' weights
    finally:
        bridge.stop()
        for proc in _alive(procs):  # only ever this test's own processes
            proc.kill()
        if root.is_relative_to("/tmp"):
            PrivateRay(root).remove()


def test_a_private_ray_whose_bridge_was_killed_is_removed_by_the_next(tmp_path):
    """SIGKILL of the bridge and its Ray driver together leaves Ray's agents and the folder; the
    next private Ray removes them, and leaves a live bridge's alone."""
    require_ray()
    gone = subprocess.run([sys.executable, "-c", "import os, psutil; print(os.getpid(), psutil.Process().create_time())"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    stale, live = PrivateRay.create(), PrivateRay.create()
    (stale.root / "owner").write_text(gone)  # owned by a process that has exited
    stale.temp.mkdir()
    with (stale.temp / "agent.log").open("w") as log:  # Ray's orphaned agents keep such a file open
        orphan = subprocess.Popen(["sleep", "120"], stdout=log)
    fresh = None
    try:
        fresh = PrivateRay.create()
        assert not stale.root.exists() and live.root.exists() and fresh.root.exists()
        orphan.wait(10)  # killed (a TimeoutExpired here if it still runs)
    finally:
        orphan.kill()
        for private in (stale, live, fresh):
            if private is not None:
                shutil.rmtree(private.root, ignore_errors=True)


@pytest.mark.parametrize(
    "protocol_test",
    [
        proto.test_hello_welcome_lists_generators_with_schema,
        proto.test_generators_message,
        proto.test_generate_accepted_progress_result_done,
        proto.test_same_seed_same_image_different_seed_different,
        proto.test_variations_interpolate_item_feedback_steer,
        proto.test_cancel_reply_and_unknown_request,
        proto.test_invalid_params_carry_field_paths,
        proto.test_interpolate_across_sizes_is_invalid,
    ],
    ids=lambda t: t.__name__.removeprefix("test_"),
)
def test_protocol_through_the_ray_backend(protocol_test, ray_ws):
    protocol_test(ray_ws)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backend": "cloud"}, "must be one of local, ray"),
        ({"backend": "ray", "ray_min_replicas": "3", "ray_max_replicas": "2"}, "ray_min_replicas"),
        ({"backend": "ray", "ray_timeout_s": "0"}, "ray_timeout_s"),
    ],
)
def test_bad_ray_settings_are_refused_with_the_reason(overrides, message):
    from ganbridge.core.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match=message):
        load_settings(overrides=overrides)


def test_deploy_to_an_address_where_nothing_listens_fails_at_once():
    head = RayHead()  # not started: nothing listens on its port
    try:
        t0 = time.monotonic()
        out = deploy_cli(head, "--status")
    finally:
        head.stop()
    assert out.returncode == 1 and "nothing answers at 127.0.0.1:" in out.stderr, out.stderr
    assert time.monotonic() - t0 < 60


def test_welcome_reports_the_backend_and_replicas(ray_ws):
    welcome = ray_ws.request({"type": "hello", "protocol": 1, "client": "pytest"})
    for gen in welcome["generators"]:
        backend = gen["backend"]
        assert backend["kind"] == "ray" and backend["device"] == "cpu" and gen["device"] == "cpu"
        assert [a["checkpoint"] for a in backend["apps"]] == [c["name"] for c in gen["checkpoints"]]
        assert all(a["status"] == "RUNNING" and a["replicas"] == 1 for a in backend["apps"]), backend


def _first_item(ws: WsClient, rid: str, generator: str, params: dict) -> dict:
    ws.send({"type": "generate", "id": rid, "generator": generator, "seed": 11, "params": params})
    msgs = ws.until_final(rid)
    assert msgs[-1]["type"] == "done", msgs[-1]
    return proto.items_of(msgs)[0]


@pytest.mark.parametrize(
    ("generator", "params"),
    [
        ("texture", {"width": 96, "height": 64, "maps": ["normal"]}),
        ("image", {}),  # the default model with category "any": the class comes from the latent
        ("image", {"model": "glyphs", "category": "upper-A"}),
        ("music", {"bars": 2}),
    ],
)
def test_same_recipe_same_output_as_in_process(generator, params, ray_ws, ws):
    remote = _first_item(ray_ws, "r", generator, params)
    local = _first_item(ws, "l", generator, params)
    assert content(remote["data"]) == content(local["data"]) and remote["seed"] == local["seed"] == 11
    maps = {k: content(m["data"]) for k, m in (remote.get("maps") or {}).items()}
    assert maps == {k: content(m["data"]) for k, m in (local.get("maps") or {}).items()}
    if generator == "music":
        assert remote["notes"] == local["notes"]


def test_batches_form_under_concurrent_load(ray_bridge, head, tmp_path):
    """16 artists at once: Serve gathers their single requests into batches on the replica."""
    errors: list[str] = []

    def artist(n: int) -> None:
        c = client(ray_bridge)
        try:
            for r in range(3):
                item = _first_item(c, f"a{n}-{r}", "texture", {"model": "gravel", "width": 128, "height": 128})
                if item["width"] != 128:
                    errors.append(f"artist {n}: {item['width']}")
        except Exception as e:  # collected, so one failure names itself
            errors.append(f"artist {n}: {type(e).__name__}: {e}")
        finally:
            c.close()

    threads = [threading.Thread(target=artist, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    out = deploy_cli(head, "--status", "--json", str(tmp_path / "status.json"))
    assert out.returncode == 0, out.stderr
    app = json.loads((tmp_path / "status.json").read_text())["apps"]["ganbridge-texture-gravel"]
    sizes = {int(k): v for k, v in app["replica"]["batch_sizes"].items()}
    print("batch sizes formed (size: count):", sizes)
    assert sum(k * v for k, v in sizes.items()) == 48  # every request went through this replica
    assert max(sizes) > 1, sizes  # and some were batched together
    assert "ganbridge-texture-gravel" in out.stdout and "RUNNING" in out.stdout


def test_ray_bench_measures_both_backends(ray_bridge, bridge, head, capsys):
    """The bench's figures, measured for real on a small scale against both backends."""
    from ganbridge.bench.scale_out import MODEL, batch_sizes, measure, print_ray

    local = asyncio.run(measure(bridge.url, 64, 3, 2, clients=(1, 4)))
    remote = asyncio.run(measure(ray_bridge.url, 64, 3, 2, clients=(1, 4)))
    remote["batch_sizes"] = batch_sizes(head, f"ganbridge-texture-{MODEL}")
    figures = {"size": 64, "runs": 3, "requests_per_client": 2, "in_process": local, "ray": remote}
    print_ray(figures)
    out = capsys.readouterr().out
    assert "lone request p50 (ms)" in out and "4 client(s), items/s" in out and "batches formed" in out
    assert all(f["p50_ms"] > 0 and f["items_per_s"][4] > 0 for f in (local, remote))
    assert sum(remote["batch_sizes"].values()) >= 1


def test_unschedulable_deployment_is_reported_not_waited_on(head):
    """A replica asking for a GPU this cluster lacks: deploy reports it and cleans up."""
    t0 = time.monotonic()
    out = deploy_cli(head, "--gpus", "1", ray_app_prefix="gbtest-gpu-", ray_deploy_timeout_s="8")
    assert out.returncode == 1
    assert "not running after 8 s" in out.stderr and "GPU" in out.stderr, out.stderr
    assert "removed the applications that did not start" in out.stderr
    assert time.monotonic() - t0 < 120
    status = deploy_cli(head, "--status", ray_app_prefix="gbtest-gpu-")
    assert status.returncode == 0 and "0 ganbridge application(s)" in status.stdout, status.stdout


def test_a_dead_replica_fails_only_its_calls_and_they_are_retried(ray_bridge, head, tmp_path):
    import psutil

    status = tmp_path / "status.json"
    assert deploy_cli(head, "--status", "--json", str(status)).returncode == 0
    pid = json.loads(status.read_text())["apps"]["ganbridge-texture-brick"]["replica"]["pid"]
    ws = client(ray_bridge)
    try:
        ws.send({"type": "generate", "id": "slow", "generator": "texture", "count": 4,
                 "params": {"model": "brick", "width": 1024, "height": 1024}})  # fmt: skip
        assert ws.recv()["type"] == "accepted"
        time.sleep(0.5)  # the first items are rendering on the replica
        psutil.Process(pid).kill()
        msgs = ws.until_final("slow", timeout=120)
    finally:
        ws.close()
    assert msgs[-1]["type"] == "done", msgs[-1]
    assert len(proto.items_of(msgs)) == 4
    assert "retrying once" in ray_bridge.log()
    assert deploy_cli(head, "--status", "--json", str(status)).returncode == 0
    assert json.loads(status.read_text())["apps"]["ganbridge-texture-brick"]["replica"]["pid"] != pid


def test_a_bridge_keeps_the_settings_of_ganbridge_deploy(ray_bridge, head, tmp_path):
    """`ganbridge deploy --max-replicas 3` on the shared apps; then a bridge on the defaults (one
    replica, no autoscaling) connects to the same cluster and must use them as they are.

    It leaves the apps autoscaling: only the next test runs after it, and that one kills the
    cluster and has the bridge deploy anew (setting them back takes ~25 s)."""
    status = tmp_path / "status.json"
    out = deploy_cli(head, "--min-replicas", "1", "--max-replicas", "3")
    assert out.returncode == 0, out.stderr
    second = RayBridge(head, tmp_path / "second", ray_timeout_s=str(TIMEOUT_S))
    try:
        second.wait_ready()
    finally:
        second.stop()
    assert deploy_cli(head, "--status", "--json", str(status)).returncode == 0
    apps = json.loads(status.read_text())["apps"]
    assert apps, status.read_text()
    assert {(a["settings"]["min_replicas"], a["settings"]["max_replicas"]) for a in apps.values()} == {(1, 3)}
    assert f"using the existing deployment of {len(apps)} application(s) with its settings" in second.log()


def test_cluster_down_mid_request_is_a_clear_error_and_the_bridge_recovers(ray_bridge, head):
    ws = client(ray_bridge)
    try:
        ws.send({"type": "generate", "id": "doomed", "generator": "texture", "count": 4,
                 "params": {"width": 1024, "height": 1024}})  # fmt: skip
        assert ws.recv()["type"] == "accepted"
        time.sleep(0.5)
        t0 = time.monotonic()
        head.kill()
        final = ws.until_final("doomed", timeout=TIMEOUT_S * 4)[-1]
        assert final["type"] == "error" and final["code"] == "unavailable", final
        # which one depends on when the loss is seen: mid-call, by the connection process, or by
        # the reconnect that the request's next item makes
        assert any(why in final["message"] for why in ("did not answer", "exited", "cannot connect")), final
        assert time.monotonic() - t0 < TIMEOUT_S * 3

        # While it is down, requests fail with the reason instead of hanging; other requests work.
        ws.send({"type": "generate", "id": "down", "generator": "texture", "params": {"width": 64, "height": 64}})
        down = ws.until_final("down", timeout=TIMEOUT_S * 3)
        assert down[-1]["type"] == "error" and down[-1]["code"] == "unavailable", down[-1]
        assert ws.request({"type": "generators", "id": "g"})["type"] == "generators"

        head.start()  # the cluster returns (empty: the bridge redeploys)
        deadline = time.monotonic() + 180
        while True:
            ws.send({"type": "generate", "id": "back", "generator": "texture", "params": {"width": 64, "height": 64}})
            final = ws.until_final("back", timeout=240)[-1]
            if final["type"] == "done" or time.monotonic() > deadline:
                break
            assert final["code"] == "unavailable", final
            time.sleep(2)
        assert final["type"] == "done", final
    finally:
        ws.close()
