"""The WebSocket door: protocol v1 over `websockets` (asyncio), a thin adapter over BridgeCore.

Per-message compression is off: payloads are PNG/MIDI, already compressed, and deflate would
cost more than generating. Each connection handles its messages in order, each off the event
loop (the core may touch SQLite). Replies are encoded where the core emits them (a worker
thread, mostly: a 2 MB result's JSON stays off the event loop), as JSON text, or as binary
frames for a client granted "binary" in `hello`, and queued back onto the loop to be written.

Connections are bounded: past `max_connections` a new one is closed at once with code 1013 (try
again later), and one that leaves more than `max_unsent_bytes` of replies unread is closed with
1008; both with a reason a client can show.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from ganbridge.core.protocol import encode_reply
from ganbridge.core.service import BridgeCore, Client

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
        self.connections = 0

    async def start(self) -> None:
        self._server = await serve(
            self._connection,
            self.host,
            self.port,
            compression=None,
            max_size=self.core.settings.max_message_bytes * HARD_LIMIT_FACTOR,
            # Browsers always send Origin; other clients do not. None admits the latter only.
            origins=[None, *(Origin(o) for o in self.allowed_origins)],
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, ws: ServerConnection) -> None:
        limit = self.core.settings.max_connections
        if self.connections >= limit:
            log.warning("refusing a connection: %d are open (setting max_connections)", self.connections)
            await ws.close(1013, f"the bridge has its limit of {limit} connections open; try again later")
            return
        self.connections += 1
        try:
            await self._serve(ws)
        finally:
            self.connections -= 1

    async def _serve(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        outbox = Outbox(ws, self.core.settings.max_unsent_bytes)

        client: Client | None = None

        def emit(msg: dict) -> None:
            binary = client is not None and "binary" in client.extensions
            frame = Frame(encode_reply(msg, binary), msg.get("type") == "error" and msg.get("code") == "unauthorized")
            try:
                loop.call_soon_threadsafe(outbox.put, frame)
            except RuntimeError:
                log.debug("dropping a reply: the event loop has shut down")

        peer = "{}:{}".format(*ws.remote_address[:2]) if ws.remote_address else "?"
        client = self.core.connect(emit, name=peer)
        log.info("client connected from %s", peer)
        writer = asyncio.create_task(outbox.drain())
        try:
            async for raw in ws:
                await asyncio.to_thread(self.core.handle_raw, client, raw)
        except ConnectionClosed:
            pass  # the client went away; its jobs are cancelled below
        finally:
            self.core.disconnect(client)
            # The connection is closed: nothing more can be written, so the writer stops here
            # (it may be waiting for the peer to read, or for a reply that will never come).
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            log.info("client %s disconnected", client.name)


@dataclass(frozen=True)
class Frame:
    """A reply encoded for the wire; `last` closes the connection once it is written."""

    data: str | bytes
    last: bool = False

    @property
    def size(self) -> int:
        """What it counts against the unsent limit: its length plus a fixed share, so that a
        flood of small replies counts too."""
        return len(self.data) + 256


class Outbox:
    """Replies waiting to be written to one connection (loop thread only).

    A client that stops reading while its requests keep producing results would make the
    bridge hold every payload in memory; past `limit` bytes unsent the connection is closed.
    """

    def __init__(self, ws: ServerConnection, limit: int):
        self.ws = ws
        self.limit = limit
        self.queue: asyncio.Queue[Frame] = asyncio.Queue()
        self.backlog = 0
        self.overflowed = False

    def put(self, frame: Frame) -> None:
        if self.overflowed:
            return
        self.backlog += frame.size
        if self.backlog > self.limit:
            self.overflowed = True
            log.warning("closing a connection whose client is not reading its results")
            reason = f"client is not reading its replies: over {self.limit:,} bytes unsent (setting max_unsent_bytes)"
            asyncio.get_running_loop().create_task(self.ws.close(1008, reason))
            return
        self.queue.put_nowait(frame)

    async def drain(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                await self.ws.send(frame.data)
                self.backlog -= frame.size
                if frame.last:
                    await self.ws.close(1008, "unauthorized")
                    return
        except ConnectionClosed:
            return
        except Exception:
            log.exception("writing to a client failed; closing its connection")
            await self.ws.close(1011, "internal error")
