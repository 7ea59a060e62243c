"""What the benchmarks share: a real `ganbridge serve` child process and timed WebSocket requests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import numpy as np
from websockets.asyncio.client import connect


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


class BridgeProcess:
    def __init__(
        self,
        device: str,
        batching: bool,
        env: dict[str, str] | None = None,
        stderr: IO | None = None,
        midi: tuple[str, str] | None = None,  # (port name, rtmidi API) for a MIDI port; none without
    ):
        self.tmp = tempfile.TemporaryDirectory(prefix="ganbridge-bench-")
        self.port = free_port()
        env = dict(
            env or os.environ,
            GANBRIDGE_DATA_DIR=self.tmp.name,
            GANBRIDGE_OUTPUT_DIR=str(Path(self.tmp.name) / "out"),
            GANBRIDGE_MODELS_DIR=str(Path(self.tmp.name) / "models"),
            GANBRIDGE_MAX_QUEUE="4096",
            GANBRIDGE_BATCHING="true" if batching else "false",
            GANBRIDGE_MIDI_OUT=midi[0] if midi else "none",
            **({"GANBRIDGE_MIDI_API": midi[1]} if midi else {}),
        )
        self.osc_port = free_port(socket.SOCK_DGRAM)
        cmd = [
            sys.executable,
            "-m",
            "ganbridge",
            "serve",
            "--ws-port",
            str(self.port),
            "--osc-port",
            str(self.osc_port),
            "--device",
            device,
            "--log-level",
            "warning",
        ]
        # stderr: a file to keep the bridge's log in (the robustness bench counts its tracebacks)
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.tmp.name, stderr=stderr)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ganbridge serve exited with {self.proc.returncode}")
            try:
                async with connect(self.url, compression=None):
                    return
            except OSError:
                await asyncio.sleep(0.2)
        raise TimeoutError("the bridge did not start listening in time")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


async def request_texture(ws, rid: str, size: int, seed: int, model: str | None = None) -> None:
    params: dict = {"width": size, "height": size} | ({"model": model} if model else {})
    msg = {"type": "generate", "id": rid, "generator": "texture", "seed": seed, "params": params}
    await ws.send(json.dumps(msg))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("id") != rid:
            continue
        if reply["type"] == "done":
            return
        if reply["type"] == "error":
            raise RuntimeError(f"bridge error: {reply['code']}: {reply['message']}")


async def round_trips(url: str, size: int, runs: int, model: str | None = None) -> list[float]:
    async with connect(url, compression=None, max_size=None) as ws:
        times = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            await request_texture(ws, f"rt{i}", size, i, model)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        return times


async def throughput(url: str, size: int, clients: int, per_client: int, model: str | None = None) -> float:
    """Items per second with `clients` connections, each sending requests back to back."""

    async def one(c: int) -> None:
        async with connect(url, compression=None, max_size=None) as ws:
            for r in range(per_client):
                await request_texture(ws, f"c{c}r{r}", size, (c + 1) * 1000 + r, model)

    await one(-1)  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(clients)))
    return clients * per_client / (time.perf_counter() - t0)


def raw_generator_times(device: str, size: int, runs: int) -> tuple[list[float], str]:
    from ganbridge.core.registry import load_generators, resolve_device

    gen = load_generators(None, resolve_device(device))["texture"]
    params = gen.params_model.model_validate({"width": size, "height": size})
    times = []
    for i in range(runs + 2):
        latent = gen.random_latent(params, i)
        t0 = time.perf_counter()
        gen.render([params], [latent])
        if i >= 2:  # the first runs warm up allocators and kernels
            times.append(time.perf_counter() - t0)
    return times, gen.device
