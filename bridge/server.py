"""One process, both doors: builds the core from settings and runs WebSocket + OSC on one loop."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ganbridge.core.credentials import credentials_for
from ganbridge.core.registry import hidden_shipped, load_generators, resolve_device
from ganbridge.core.scheduler import JobScheduler
from ganbridge.core.service import BridgeCore
from ganbridge.core.settings import Settings
from ganbridge.core.store import ItemStore
from ganbridge.doors.midi import MidiPlayer, MidiUnavailable
from ganbridge.doors.osc import OscDoor
from ganbridge.doors.websocket import WebSocketDoor
from ganbridge.generators.base import Generator

log = logging.getLogger("ganbridge")


class DoorError(OSError):
    """A door could not listen; the message names the port and the flag that changes it."""


def build_core(settings: Settings) -> BridgeCore:
    for user, shipped in hidden_shipped(settings.models_dir):
        log.info("your %s model %s hides the shipped %r (%s)", user.kind, user.path, shipped.name, shipped.path)
    if settings.backend == "ray":
        generators, scheduler = ray_scheduler(settings)
    else:
        device = resolve_device(settings.device)
        generators = load_generators(settings.models_dir, device)
        scheduler = JobScheduler(
            devices=sorted({g.device for g in generators.values()}) or [device], **queue_settings(settings)
        )
    store = ItemStore(settings.db_path, settings.output_dir)
    scheduler.start()
    for gen in generators.values():
        gen.configure(soundfont=settings.soundfont)
    return BridgeCore(settings, generators, store, scheduler, midi_player(settings), credentials_for(settings))


def ray_scheduler(settings: Settings) -> tuple[dict[str, Generator], JobScheduler]:
    """Generators described here (params, latents) and rendered on the cluster's replicas.
    This bridge sends micro-batches of up to `ray_max_batch_size` items and keeps up to
    `ray_inflight` of them in flight; Serve gathers batches from every bridge into one call."""
    from ganbridge.cluster.backend import RayExecutor, RayGateway, app_specs

    generators = load_generators(settings.models_dir, "cpu")
    gateway = RayGateway(settings, app_specs(settings, generators))
    log.info("connecting to Ray at %s and deploying %d checkpoint(s)", settings.ray_address, len(gateway.specs))
    gateway.ensure()  # a cluster that cannot be reached or deployed to stops `serve` with the reason
    scheduler = JobScheduler(devices=["cpu"], executor=RayExecutor(gateway), workers_per_device=settings.ray_inflight,
                             batch_limit=settings.ray_max_batch_size, **queue_settings(settings))  # fmt: skip
    return generators, scheduler


def queue_settings(settings: Settings) -> dict:
    """The scheduler's queue, share, budget and batching settings."""
    return {
        "max_queue": settings.max_queue,
        "max_client_queue": settings.max_client_queue,
        "client_budgets": {unit: per_client for unit, (_, per_client) in settings.budgets().items()},
        "batching": settings.batching,
        "batch_window": settings.batch_window_ms / 1000.0,
    }


def midi_player(settings: Settings) -> MidiPlayer | None:
    """The virtual MIDI port, opened now so a DAW sees it before the first play. Without a MIDI
    system it stays closed (play then answers with the reason) and the bridge runs on. Either
    way the log gets one line on it (the player logs the port it opened)."""
    if settings.midi_out.lower() in ("", "none", "off"):
        log.info("MIDI out: off (the midi_out setting); music still renders files")
        return None
    player = MidiPlayer(settings.midi_out, settings.midi_api)
    try:
        player.open()
    except MidiUnavailable as e:
        log.warning("MIDI out: none (%s); music still renders files", e.reason)
    return player


@dataclass
class RunningBridge:
    core: BridgeCore
    ws: WebSocketDoor
    osc: OscDoor

    async def stop(self) -> None:
        await self.ws.stop()
        await self.osc.stop()
        # The workers may be finishing a batch or a frame: wait off the loop, then close the store.
        await asyncio.to_thread(self.core.live.stop)
        await asyncio.to_thread(self.core.scheduler.stop)
        if self.core.player is not None:
            self.core.player.close()
        self.core.store.close()


async def start_bridge(settings: Settings, core: BridgeCore | None = None) -> RunningBridge:
    core = core or await asyncio.to_thread(build_core, settings)
    ws = WebSocketDoor(core, settings.host, settings.ws_port, settings.allowed_origins)
    osc = OscDoor(core, settings.host, settings.osc_port)
    try:
        await listen(ws.start, "WebSocket", settings.host, settings.ws_port, "--ws-port")
        await listen(osc.start, "OSC", settings.host, settings.osc_port, "--osc-port")
    except BaseException:
        await RunningBridge(core, ws, osc).stop()
        raise
    names = ", ".join(f"{g.name} ({g.device})" for g in core.generators.values()) or "none"
    log.info("generators: %s", names)
    log.info("WebSocket: ws://%s:%d/   OSC (UDP): %s:%d", _fmt(settings.host), ws.port, settings.host, osc.port)
    log.info("outputs in %s; items and ratings in %s", settings.output_dir, settings.db_path)
    return RunningBridge(core, ws, osc)


async def listen(start: Callable[[], Awaitable[None]], door: str, host: str, port: int, flag: str) -> None:
    """Start a door; a port or address it cannot have is a DoorError that says what to change."""
    try:
        await start()
    except OSError as e:
        raise DoorError(bind_problem(e, door, host, port, flag)) from e


def bind_problem(e: OSError, door: str, host: str, port: int, flag: str) -> str:
    setting = flag.removeprefix("--").replace("-", "_")
    if e.errno == errno.EADDRINUSE:
        return f"{door} port {port} is in use (another bridge?); choose another with {flag} or the {setting} setting"
    if e.errno == errno.EACCES:
        return f"{door} port {port} needs administrator rights; choose one above 1023 with {flag}"
    # asyncio's strerror repeats the address; the errno's own text is the short reason.
    reason = e.strerror if isinstance(e, socket.gaierror) else os.strerror(e.errno) if e.errno else str(e)
    if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host!r} ({reason}); give an address of this machine with --host"
    return f"{door} cannot listen on {host}:{port}: {reason}"


def _fmt(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve_forever(settings: Settings) -> None:
    bridge = await start_bridge(settings)
    stop = asyncio.Event()
    try:
        # A service manager's stop (SIGTERM) takes the same orderly way out as Ctrl-C: jobs are
        # cancelled, the store closed, a private Ray shut down.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, AttributeError):  # Windows has no SIGTERM handlers on the loop
        pass
    try:
        await stop.wait()
    finally:
        await bridge.stop()
