"""`ganbridge deploy`: put the installed checkpoints on a Ray Serve cluster, show or remove them.

A thin adapter over ganbridge.cluster.gateway.ServeCluster. This command is a short-lived Ray driver
of its own, and the one place that sets the applications' replica settings: it (re)deploys
with its options, and a running application takes them. `ganbridge serve --backend ray`
deploys only the applications the cluster lacks and uses the others as they are.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError, extra_needed

if TYPE_CHECKING:
    from ganbridge.cluster.gateway import AppSpec, ServeCluster
    from ganbridge.cluster.head import PrivateRay
    from ganbridge.core.settings import Settings


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("deploy", help="deploy the installed generators to a Ray Serve cluster (or show/remove them)")
    p.add_argument(
        "--ray-address", help="local, auto, HOST:6379 or ray://HOST:10001 (default: the ray_address setting)"
    )
    action = p.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="only show what runs on the cluster")
    action.add_argument("--delete", action="store_true", help="remove this bridge's applications from the cluster")
    p.add_argument("--min-replicas", type=flags.positive_int, help="replicas per checkpoint (autoscaling lower bound)")
    p.add_argument(
        "--max-replicas", type=flags.positive_int, help="autoscaling upper bound (default: = min, no autoscaling)"
    )
    p.add_argument(
        "--gpus",
        type=flags.non_negative,
        help="GPUs per replica (default: a whole GPU each when there are enough, else an equal share)",
    )
    p.add_argument("--max-batch-size", type=flags.positive_int, help="Serve dynamic batching: most requests per batch")
    p.add_argument("--json", help="also write the status to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load(
        args,
        backend="ray",
        ray_address=args.ray_address,
        ray_min_replicas=args.min_replicas,
        ray_max_replicas=args.max_replicas if args.max_replicas is not None else args.min_replicas,
        ray_num_gpus=args.gpus,
        ray_max_batch_size=args.max_batch_size,
    )
    if importlib.util.find_spec("ray") is None:  # asked, not imported: see the private Ray below
        raise extra_needed("ray")
    from ganbridge.cluster.head import PrivateRay

    # `--ray-address local` starts a private Ray for this command alone (as `serve` does): its
    # environment must be set before Ray is imported, and it is removed when the command ends.
    private = PrivateRay.create() if settings.ray_address == "local" else None
    if private is not None:
        env = private.env(dict(os.environ))
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)
    try:
        return _deploy_with(args, settings, private)
    finally:
        if private is not None:
            private.remove()


def _deploy_with(args: argparse.Namespace, settings: Settings, private: PrivateRay | None) -> int:
    from ganbridge.cluster.gateway import DeployError, ServeCluster

    cluster = ServeCluster(settings, private)
    try:
        cluster.connect()
    except Exception as e:  # Ray raises many kinds here; each is a reason to show the user
        raise UserError(f"cannot connect to the Ray cluster at {settings.ray_address}: {e}", code=1) from None
    try:
        if args.delete:
            return _delete(cluster)
        if not args.status:
            specs = installed_specs(settings)
            print(f"deploying {len(specs)} checkpoint(s) to {settings.ray_address} ...", flush=True)
            try:
                cluster.deploy(specs)
            except DeployError as e:
                _remove_not_running(cluster, [s.name for s in specs])
                raise UserError(f"{e}; removed the applications that did not start", code=1) from None
        report = status_report(cluster, settings.ray_timeout_s)
    finally:
        import ray

        ray.shutdown()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def installed_specs(settings: Settings) -> list[AppSpec]:
    from ganbridge.cluster.gateway import AppSpec
    from ganbridge.core.registry import KINDS, weight_files

    return [
        AppSpec(settings.ray_app_prefix, kind, path.stem, str(path))
        for kind in KINDS
        for path in weight_files(kind, settings.models_dir)
    ]


def status_report(cluster: ServeCluster, timeout: float) -> dict[str, Any]:
    """Every application of this prefix, with what one of its replicas says of itself."""
    from ray import serve

    apps: dict[str, Any] = {}
    report = {"address": cluster.settings.ray_address, "gpus_per_replica": cluster.gpus_per_replica(), "apps": apps}
    try:
        settings = cluster.app_settings()
    except Exception as e:  # a private API (see app_settings): the rest of the report still helps
        settings = {}
        print(f"ganbridge deploy: cannot read the applications' settings: {e}", file=sys.stderr)
    for name, state in sorted(cluster.status().items()):
        entry = {"status": state.status, "replicas": state.replicas, "message": state.message,
                 "settings": settings.get(name, {})}  # fmt: skip
        if state.running:
            try:
                entry["replica"] = serve.get_app_handle(name).describe.remote().result(timeout_s=timeout)
            except Exception as e:
                entry["replica"] = {"error": f"{type(e).__name__}: {e}"}
        apps[name] = entry
    return report


def print_report(report: dict[str, Any]) -> None:
    print(f"Ray cluster {report['address']}: {len(report['apps'])} ganbridge application(s)")
    print(f"  {'application':<34}{'status':<14}{'replicas':>9}{'min-max':>9}  {'device':<7}{'host':<14}"
          "batch sizes so far")  # fmt: skip
    for name, app in report["apps"].items():
        replica = app.get("replica", {})
        sizes = ", ".join(f"{k}x{v}" for k, v in sorted(replica.get("batch_sizes", {}).items())) or "-"
        running = app["replicas"].get("RUNNING", 0)
        bounds = app.get("settings", {})
        scale = f"{bounds['min_replicas']}-{bounds['max_replicas']}" if bounds.get("max_replicas") else "-"
        print(f"  {name:<34}{app['status']:<14}{running:>9}{scale:>9}  {replica.get('device', '-'):<7}"
              f"{replica.get('host', '-'):<14}{sizes}")  # fmt: skip
        if app["status"] != "RUNNING" and app["message"]:
            print(f"      {app['message']}")


def _remove_not_running(cluster: ServeCluster, names: list[str]) -> None:
    states = cluster.status()
    _delete_apps(cluster, [n for n in names if n in states and states[n].status != "RUNNING"])


def _delete_apps(cluster: ServeCluster, names: list[str], timeout: float = 120.0) -> None:
    """Delete all at once, then wait until they are gone (one at a time takes ~20 s each)."""
    from ray import serve

    for name in names:
        serve.delete(name, _blocking=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and set(names) & set(cluster.status()):
        time.sleep(0.5)


def _delete(cluster: ServeCluster) -> int:
    names = sorted(cluster.status())
    _delete_apps(cluster, names)
    for name in names:
        print(f"deleted {name}")
    if not names:
        print(f"no applications named {cluster.settings.ray_app_prefix}* on the cluster")
    return 0
