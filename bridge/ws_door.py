"""The WebSocket door: protocol v1 over `websockets` (asyncio), a thin adapter over BridgeCore.

Per-message compression is off: payloads are PNG/MIDI, already compressed, and deflate would
cost more than generating. Each connection handles its messages in order, each off the event
loop (the core may touch SQLite); replies from worker threads are queued back onto the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bridge.core import BridgeCore

log = logging.getLogger("ganbridge.ws")

# Frames up to this many times the configured message limit get a `too_large` error reply;
# anything bigger is cut off by the websockets library itself (close code 1009).
HARD_LIMIT_FACTOR = 8


class WebSocketDoor:
    def __init__(self, core: BridgeCore, host: str, port: int, allowed_origins: list[str]):
        self.core = core
        self.host = host
        self.port = port
        self.allowed_origins = allowed_origins
        self._server: Server | None = None

    async def start(self) -> None:
        self._server = await serve(
            self._connection,
            self.host,
            self.port,
            compression=None,
            max_size=self.core.settings.max_message_bytes * HARD_LIMIT_FACTOR,
            # Browsers always send Origin; other clients do not. None admits the latter only.
            origins=[None, *self.allowed_origins],
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[dict] = asyncio.Queue()

        def emit(msg: dict) -> None:
            try:
                loop.call_soon_threadsafe(outbox.put_nowait, msg)
            except RuntimeError:
                log.debug("dropping a reply: the event loop has shut down")

        peer = "{}:{}".format(*ws.remote_address[:2]) if ws.remote_address else "?"
        client = self.core.connect(emit, name=peer)
        log.info("client connected from %s", peer)
        writer = asyncio.create_task(self._write(ws, outbox))
        try:
            async for raw in ws:
                await asyncio.to_thread(self.core.handle_raw, client, raw)
        except ConnectionClosed:
            pass  # the client went away; its jobs are cancelled below
        finally:
            self.core.disconnect(client)
            await outbox.put({})  # wake the writer so it can flush and stop
            await asyncio.gather(writer, return_exceptions=True)
            log.info("client %s disconnected", client.name)

    async def _write(self, ws: ServerConnection, outbox: asyncio.Queue[dict]) -> None:
        try:
            while True:
                msg = await outbox.get()
                if not msg:
                    return
                await ws.send(json.dumps(msg, separators=(",", ":")))
                if msg.get("type") == "error" and msg.get("code") == "unauthorized":
                    await ws.close(1008, "unauthorized")
                    return
        except ConnectionClosed:
            return
