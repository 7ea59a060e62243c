"""`ganbridge bench`: raw generator time vs WebSocket round trip vs batched throughput.

The bridge runs as a real `ganbridge serve` subprocess (so client and server do not share a
GIL) with throw-away data folders. Figures are medians over repeated runs, and each is also
given as a ratio to the raw in-process figure, since these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path

from ganbridge.bench.common import BridgeProcess, percentile, raw_generator_times, round_trips, throughput


async def _served(device: str, batching: bool, size: int, runs: int, clients: int, per_client: int) -> dict:
    bridge = BridgeProcess(device, batching)
    try:
        await bridge.wait_ready()
        out: dict[str, float | list[float]] = {"throughput": await throughput(bridge.url, size, clients, per_client)}
        if batching:
            out["round_trips"] = await round_trips(bridge.url, size, runs)
        return out
    finally:
        bridge.close()


def provenance_cost(size: int, runs: int) -> dict:
    """What the recipe and the C2PA signature add to one texture's file, timed in this process
    on a real output, with the embedding alone timed beside it in turns: medians in ms. The
    bridge's round trip includes them; without them it would be that much shorter."""
    import tempfile

    from ganbridge.core.credentials import ContentCredentials, Identity
    from ganbridge.core.provenance import embed, make_recipe
    from ganbridge.core.registry import load_generators

    gen = load_generators(None, "cpu")["texture"]
    params = gen.params_model.model_validate({"width": size, "height": size, "seed": 1})
    out = gen.render([params], [gen.random_latent(params, 1)])[0]
    recipe = make_recipe(gen.name, gen.checkpoint_for(params).as_dict(), params.model_dump(mode="json"), 1)
    with tempfile.TemporaryDirectory() as folder:
        credentials = ContentCredentials(Identity.local(Path(folder)))
        recipe_only: list[float] = []
        signed: list[float] = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            data = embed(out.data, out.format, recipe)
            t1 = time.perf_counter()
            credentials.sign(data, out.format, recipe)
            t2 = time.perf_counter()
            if i >= 2:  # warm-up
                recipe_only.append(t1 - t0)
                signed.append(t2 - t0)
    return {
        "recipe_ms": statistics.median(recipe_only) * 1000,
        "recipe_and_signature_ms": statistics.median(signed) * 1000,
    }


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from ganbridge.core.registry import resolve_device

    device = resolve_device(args.device)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
        + (f" {torch.cuda.get_device_name()}" if device.startswith("cuda") else "")
    )
    figures: dict = {"machine": machine}
    if args.only in ("all", "texture"):
        figures |= texture_bench(args, device)
    if args.only in ("all", "music"):
        figures |= asyncio.run(_music(device, args.runs))
    if args.only in ("all", "steering"):
        from ganbridge.bench.steering import run_steering

        figures |= run_steering(args, device)
    if args.only in ("all", "live"):
        from ganbridge.bench.live import run_live

        figures |= run_live(args, device)
    if args.only == "robustness":  # not in "all": at its defaults it runs for a quarter of an hour
        from ganbridge.bench.robustness import run_robustness

        figures |= run_robustness(args, device)
    if args.backend == "ray":
        from ganbridge.bench.scale_out import ray_bench

        figures["ray"] = ray_bench(args, device)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


async def _music(device: str, runs: int) -> dict:
    from ganbridge.bench.music import music_figures, print_music

    bridge = BridgeProcess(device, True)
    try:
        await bridge.wait_ready()
        figures = await asyncio.to_thread(music_figures, device, bridge.osc_port, runs)
    finally:
        bridge.close()
    print_music(figures)
    return figures


def texture_bench(args: argparse.Namespace, device: str) -> dict:
    raw, device = raw_generator_times(args.device, args.size, args.runs)
    batched = asyncio.run(_served(device, True, args.size, args.runs, args.clients, args.requests))
    unbatched = asyncio.run(_served(device, False, args.size, args.runs, args.clients, args.requests))
    raw_p50 = statistics.median(raw)
    rt = batched["round_trips"]
    import torch

    figures = {
        "size": args.size,
        "raw_p50_ms": raw_p50 * 1000,
        "round_trip_p50_ms": percentile(rt, 50) * 1000,
        "round_trip_p99_ms": percentile(rt, 99) * 1000,
        "round_trip_p50_ratio": percentile(rt, 50) / raw_p50,
        "round_trip_p99_ratio": percentile(rt, 99) / raw_p50,
        "raw_items_per_s": 1.0 / raw_p50,
        "clients": args.clients,
        "batched_items_per_s": batched["throughput"],
        "unbatched_items_per_s": unbatched["throughput"],
        "batched_vs_unbatched": batched["throughput"] / unbatched["throughput"],
    }
    print(f"ganbridge bench: texture {args.size}x{args.size}, {platform.machine()}, torch {torch.__version__}")
    print(f"  {'figure':<44}{'value':>12}{'ratio to raw':>16}")
    print(f"  {'raw generator (forward + PNG), p50':<44}{raw_p50 * 1000:>10.1f}ms{1.0:>16.2f}")
    print(
        f"  {'WebSocket round trip, p50':<44}{figures['round_trip_p50_ms']:>10.1f}ms{figures['round_trip_p50_ratio']:>16.2f}"
    )
    print(
        f"  {'WebSocket round trip, p99':<44}{figures['round_trip_p99_ms']:>10.1f}ms{figures['round_trip_p99_ratio']:>16.2f}"
    )
    ips = 1.0 / raw_p50
    for label, key in (
        (f"{args.clients} clients, micro-batching on", "batched_items_per_s"),
        (f"{args.clients} clients, micro-batching off", "unbatched_items_per_s"),
    ):
        print(f"  {label + ' (items/s)':<44}{figures[key]:>12.2f}{figures[key] / ips:>16.2f}")
    print(f"  batched / unbatched throughput: {figures['batched_vs_unbatched']:.2f}x")
    cost = provenance_cost(args.size, args.runs)
    rt50 = figures["round_trip_p50_ms"]
    cost["round_trip_ratio"] = rt50 / (rt50 - cost["recipe_and_signature_ms"])
    figures["provenance"] = cost
    print(
        f"  {'recipe + C2PA signature per file, p50':<44}{cost['recipe_and_signature_ms']:>10.1f}ms"
        f"   (recipe alone {cost['recipe_ms']:.2f} ms)"
    )
    print(f"  round trip with provenance / without: {cost['round_trip_ratio']:.3f}x (goal: at most 1.10x)")
    return figures
