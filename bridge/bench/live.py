"""`ganbridge bench --only live`: a dragged slider's moves to decoded pixels at the client.

Through a real `ganbridge serve`, a client that asked for live sessions and binary frames opens
a session and drags: it sends a move (three sliders sweeping) every 1/RATE_HZ seconds, whatever
has come back, as a slider in a host does. Each frame is decoded (PNG to pixels) on arrival.
Figures: frames decoded per second, and each move's latency, from sending it to having decoded
the first frame that includes it (a frame shows the newest move the bridge had; the moves it
skipped count until that frame). Beside them, a small request's fixed cost (WebSocket round
trip minus the raw in-process render, in turns) and what a dragging client does to another
client's round trips, measured in turns alone, beside the drag and beside a client generating
back to back (on a 2-core machine any busy neighbour costs something).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import statistics
import sys
import time
from typing import Any

from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from ganbridge.bench.common import BridgeProcess, percentile, request_texture, round_trips
from ganbridge.core.protocol import decode_binary

RATE_HZ = 60  # a slider's moves per second while dragged (a host's UI updates about this often)
DRAG_SECONDS = 6.0
SMALL = 128  # the small request of the fixed-cost figure: a 128x128 texture


def tasks(device: str) -> list[tuple[str, str, dict]]:
    out = [
        ("texture 256x256", "texture", {"width": 256, "height": 256}),
        ("sprite 64x64", "image", {"size": 64}),
    ]
    if device.startswith("cuda"):
        out.append(("texture 512x512", "texture", {"width": 512, "height": 512}))
    return out


async def _hello(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "hello", "protocol": 1, "client": "bench", "extensions": ["live", "binary"]}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass


async def _reply(ws: ClientConnection) -> dict:
    frame = await ws.recv()
    return decode_binary(frame) if isinstance(frame, bytes) else json.loads(frame)


def _decoded(msg: dict) -> None:
    Image.open(io.BytesIO(msg["data"])).load()


async def drag(url: str, generator: str, params: dict, seconds: float = DRAG_SECONDS) -> dict[str, Any]:
    """One dragged session's frames per second and move latencies (see the module docstring)."""
    async with connect(url, compression=None, max_size=None) as ws:
        await _hello(ws)
        await ws.send(
            json.dumps({"type": "live_open", "id": "drag", "generator": generator, "seed": 1, "params": params})
        )
        while (msg := await _reply(ws))["type"] != "live_frame":
            if msg["type"] == "error":
                raise RuntimeError(f"bridge said {msg}")
        sent: dict[int, float] = {}
        latencies: list[float] = []
        frames = 0
        done = asyncio.Event()

        async def send() -> None:
            seq, start = 0, time.perf_counter()
            while True:
                seq += 1
                phase = 2 * math.pi * seq / RATE_HZ
                values = [2 * math.sin(phase), 2 * math.cos(0.7 * phase), math.sin(1.3 * phase)]
                sent[seq] = time.perf_counter()
                await ws.send(json.dumps({"type": "live_move", "id": "drag", "seq": seq, "values": values}))
                if time.perf_counter() - start >= seconds:
                    break
                await asyncio.sleep(max(0.0, start + seq / RATE_HZ - time.perf_counter()))
            done.set()  # at once after the last move, whose frame is still to come

        sender = asyncio.create_task(send())
        answered = 0  # moves up to this seq have their latency
        t0 = time.perf_counter()
        try:
            while not (done.is_set() and answered >= max(sent, default=0)):
                msg = await _reply(ws)
                if msg.get("id") != "drag" or msg["type"] != "live_frame":
                    continue
                _decoded(msg)
                now = time.perf_counter()
                frames += 1
                for seq in range(answered + 1, msg["seq"] + 1):
                    latencies.append(now - sent[seq])
                answered = max(answered, msg["seq"])
        finally:
            sender.cancel()  # a drag cancelled from outside (the bystander's) stops moving too
        elapsed = time.perf_counter() - t0
        await ws.send(json.dumps({"type": "live_close", "id": "drag"}))
    return {
        "frames_per_s": frames / elapsed,
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p90_ms": percentile(latencies, 90) * 1000,
        "moves": len(sent),
        "frames": frames,
    }


async def fixed_cost(url: str, device: str, runs: int) -> dict[str, list[float]]:
    """A 128x128 texture rendered in this process and asked of the bridge by a v1 client (base64
    JSON) and by one that asked for binary frames, in turns, `runs` of each (after four of each to
    warm up): the raw times and each client's round trips, in seconds. In turns, so that what
    else the machine does falls on all alike."""
    from ganbridge.core.registry import load_generators, resolve_device

    gen = load_generators(None, resolve_device(device))["texture"]
    params = gen.params_model.model_validate({"width": SMALL, "height": SMALL})
    times: dict[str, list[float]] = {"raw": [], "json": [], "binary": []}
    async with (
        connect(url, compression=None, max_size=None) as v1,
        connect(url, compression=None, max_size=None) as binary,
    ):
        await _hello(binary)
        for i in range(runs + 4):
            latent = gen.random_latent(params, i)
            t0 = time.perf_counter()
            gen.render([params], [latent])
            t1 = time.perf_counter()
            await request_texture(v1, f"fixed{i}", SMALL, i)
            t2 = time.perf_counter()
            await _request_binary(binary, f"fixed{i}", i)
            t3 = time.perf_counter()
            if i >= 4:
                times["raw"].append(t1 - t0)
                times["json"].append(t2 - t1)
                times["binary"].append(t3 - t2)
    return times


async def _request_binary(ws: ClientConnection, rid: str, seed: int) -> None:
    """request_texture for a client that asked for binary frames (its result comes as one)."""
    params = {"width": SMALL, "height": SMALL}
    await ws.send(json.dumps({"type": "generate", "id": rid, "generator": "texture", "seed": seed, "params": params}))
    while (msg := await _reply(ws)).get("id") != rid or msg["type"] not in ("done", "error"):
        pass
    if msg["type"] == "error":
        raise RuntimeError(f"bridge error: {msg['code']}: {msg['message']}")


async def _generating(url: str) -> None:
    """A client that asks for 256x256 textures back to back, until cancelled."""
    async with connect(url, compression=None, max_size=None) as ws:
        for i in range(10**6):
            await request_texture(ws, f"busy{i}", 256, i)


async def bystander(url: str, runs: int) -> dict[str, float]:
    """Another client's 128x128 round trips, in turns alone, beside a client dragging a 256x256
    texture, and beside one generating 256x256 textures back to back (what sharing the machine
    with any busy client costs): medians in ms, and the ratios to alone. Each neighbour is a
    program of its own, as a second host is: in this process its decoding (50 frames a second)
    would hold up this client's replies on the one event loop, a cost of the benchmark, not of
    the bridge."""
    times: dict[str, list[float]] = {"alone": [], "drag": [], "generating": []}
    for turn in range(6):
        kind = ("alone", "drag", "alone", "generating", "alone", "drag")[turn]
        other = None
        if kind != "alone":
            other = await asyncio.create_subprocess_exec(sys.executable, "-m", "ganbridge.bench.live", kind, url)
            await asyncio.sleep(2.0)  # started and under way
        try:
            times[kind] += await round_trips(url, SMALL, runs)
            if other is not None and other.returncode is not None:  # it did not share the machine
                raise RuntimeError(f"the bystander's neighbour ({kind}) stopped early, exit status {other.returncode}")
        finally:
            if other is not None:
                if other.returncode is None:
                    other.terminate()
                await other.wait()
    alone = statistics.median(times["alone"])
    return {
        "alone_p50_ms": alone * 1000,
        "beside_drag_p50_ms": statistics.median(times["drag"]) * 1000,
        "beside_generating_p50_ms": statistics.median(times["generating"]) * 1000,
        "drag_ratio": statistics.median(times["drag"]) / alone,
        "generating_ratio": statistics.median(times["generating"]) / alone,
    }


async def neighbour(kind: str, url: str) -> None:
    """What the bystander's neighbour does until it is stopped: drag or generate."""
    if kind == "drag":
        await drag(url, "texture", {"width": 256, "height": 256}, seconds=600)
    else:
        await _generating(url)


async def _served(device: str, runs: int) -> dict:
    bridge = BridgeProcess(device, True)
    try:
        await bridge.wait_ready()
        out: dict[str, Any] = {}
        for label, generator, params in tasks(device):
            await drag(bridge.url, generator, params, seconds=1.0)  # warm-up
            out[label] = await drag(bridge.url, generator, params)
        times = await fixed_cost(bridge.url, device, 3 * runs)
        raw = statistics.median(times["raw"])
        out["fixed_cost"] = {"runs": len(times["raw"]), "raw_p50_ms": raw * 1000}
        for client in ("json", "binary"):
            served = statistics.median(times[client])
            out["fixed_cost"][client] = {"round_trip_p50_ms": served * 1000, "overhead_p50_ms": (served - raw) * 1000}
        out["bystander"] = await bystander(bridge.url, runs)
        return out
    finally:
        bridge.close()


def print_live(figures: dict) -> None:
    print("live: a dragged slider, move to decoded pixels at the client (binary frames)")
    for label, row in figures.items():
        if label in ("fixed_cost", "bystander", "music_loop"):
            continue
        print(
            f"  {label:18s} {row['frames_per_s']:6.1f} frames/s  latency p50 {row['latency_p50_ms']:6.1f} ms"
            f"  p90 {row['latency_p90_ms']:6.1f} ms  ({row['moves']} moves, {row['frames']} frames)"
        )
    cost = figures["fixed_cost"]
    v1, binary = cost["json"], cost["binary"]
    print(
        f"  small request ({SMALL}x{SMALL} texture, {cost['runs']} in turns): raw {cost['raw_p50_ms']:.1f} ms; "
        f"v1 client round trip {v1['round_trip_p50_ms']:.1f} ms, fixed overhead {v1['overhead_p50_ms']:.1f} ms p50; "
        f"binary client {binary['round_trip_p50_ms']:.1f} ms, overhead {binary['overhead_p50_ms']:.1f} ms p50"
    )
    loop = figures["music_loop"]
    if "skipped" in loop:
        print(f"  music loop at the MIDI port: skipped ({loop['skipped']})")
    else:
        print(
            f"  music loop at the MIDI port: {loop['heard_at_next_bar']} of {loop['changes']} slider moves heard "
            f"from the next bar line ({100 * loop['share']:.0f}%)"
        )
    b = figures["bystander"]
    print(
        f"  another client's round trip: {b['alone_p50_ms']:.1f} ms alone, {b['beside_drag_p50_ms']:.1f} ms "
        f"beside a drag ({b['drag_ratio']:.2f}x), {b['beside_generating_p50_ms']:.1f} ms beside a client "
        f"generating 256x256 back to back ({b['generating_ratio']:.2f}x)"
    )


def run_live(args: Any, device: str) -> dict:
    from ganbridge.bench.live_music import loop_changes

    figures = asyncio.run(_served(device, args.runs))
    figures["music_loop"] = loop_changes(50, device)
    print_live(figures)
    return {"live": figures}


if __name__ == "__main__":  # a bystander's neighbour: python -m ganbridge.bench.live drag|generating URL
    asyncio.run(neighbour(sys.argv[1], sys.argv[2]))
