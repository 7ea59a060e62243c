"""`ganbridge bench --backend ray`: the same bridge in-process and on Ray Serve, in one run.

A private Ray head is started on this machine (`ray start --head`, token auth, its own temp
folder) and a real `ganbridge serve --backend ray` subprocess points at it; an in-process
`ganbridge serve` is measured with the same requests. Figures: lone-request round trip
(p50/p99) and items/s at 1, 16 and 64 concurrent clients, plus the batch sizes the replica
formed (read from the replica itself through `ganbridge deploy --status`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ganbridge.bench.common import BridgeProcess, percentile, round_trips, throughput

CLIENTS = (1, 16, 64)
MODEL = "gravel"  # one checkpoint, so every request meets the same replica


async def measure(url: str, size: int, runs: int, per_client: int, clients: tuple[int, ...] = CLIENTS) -> dict:
    """Lone-request round trips, then items/s at each client count, against a running bridge."""
    rt = await round_trips(url, size, runs, MODEL)
    out = {"p50_ms": percentile(rt, 50) * 1000, "p99_ms": percentile(rt, 99) * 1000, "items_per_s": {}}
    for n in clients:
        out["items_per_s"][n] = await throughput(url, size, n, per_client, MODEL)
    return out


async def _measure(bridge: BridgeProcess, size: int, runs: int, per_client: int) -> dict:
    await bridge.wait_ready(timeout=600)
    return await measure(bridge.url, size, runs, per_client)


def batch_sizes(head, app: str) -> dict[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "status.json"
        cmd = [
            sys.executable,
            "-m",
            "ganbridge",
            "deploy",
            "--ray-address",
            head.address,
            "--status",
            "--json",
            str(path),
        ]
        done = subprocess.run(cmd, env=head.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"ganbridge deploy --status failed: {done.stderr[-2000:]}")
        sizes = json.loads(path.read_text())["apps"][app]["replica"]["batch_sizes"]
    return {int(k): v for k, v in sorted(sizes.items(), key=lambda kv: int(kv[0]))}


def ray_bench(args: argparse.Namespace, device: str) -> dict:
    from ganbridge.cluster.head import RayHead

    size, runs, per_client = args.ray_size, args.runs, args.requests
    local = BridgeProcess(device, True)
    try:
        in_process = asyncio.run(_measure(local, size, runs, per_client))
    finally:
        local.close()
    head = RayHead()
    head.start()
    try:
        env = dict(head.env, GANBRIDGE_BACKEND="ray", GANBRIDGE_RAY_ADDRESS=head.address)
        remote = BridgeProcess(device, True, env=env)
        try:
            on_ray = asyncio.run(_measure(remote, size, runs, per_client))
            on_ray["batch_sizes"] = batch_sizes(head, f"ganbridge-texture-{MODEL}")
        finally:
            remote.close()
    finally:
        head.stop()
    figures = {"size": size, "runs": runs, "requests_per_client": per_client, "in_process": in_process, "ray": on_ray}
    print_ray(figures)
    return figures


def print_ray(f: dict) -> None:
    local, ray = f["in_process"], f["ray"]
    print(f"ganbridge bench --backend ray: texture {f['size']}x{f['size']} ({MODEL}), {f['runs']} lone requests, "
          f"{f['requests_per_client']} requests per client")  # fmt: skip
    print(f"  {'figure':<36}{'in-process':>12}{'Ray Serve':>12}{'Ray / in-process':>18}")
    for label, key in (("lone request p50 (ms)", "p50_ms"), ("lone request p99 (ms)", "p99_ms")):
        print(f"  {label:<36}{local[key]:>12.1f}{ray[key]:>12.1f}{ray[key] / local[key]:>18.2f}")
    print(f"  {'added by Ray at p50 (ms)':<36}{'':>12}{ray['p50_ms'] - local['p50_ms']:>12.1f}")
    for clients in local["items_per_s"]:
        a, b = local["items_per_s"][clients], ray["items_per_s"][clients]
        print(f"  {f'{clients} client(s), items/s':<36}{a:>12.1f}{b:>12.1f}{b / a:>18.2f}")
    total = sum(ray["batch_sizes"].values())
    mean = sum(k * v for k, v in ray["batch_sizes"].items()) / max(1, total)
    sizes = ", ".join(f"{k}: {v}" for k, v in ray["batch_sizes"].items())
    print(f"  batches formed on the replica (size: count): {sizes}; mean {mean:.1f} items per batch")
