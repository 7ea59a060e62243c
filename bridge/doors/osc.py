"""The OSC door (UDP): the OSC address map of docs/reference/protocol.md on top of BridgeCore, as a thin transport over osc_mapping.

This module only moves datagrams; bridge/doors/osc_mapping.py decides what every message means
and what every reply says. Here are the socket, the door's own event loop thread, and the order:

- Each sending host is one peer of the mapping (one core client). Replies go to the sender's
  address, or to the port it chose with /ganbridge/reply_to (senders such as liblo's oscsend use
  a new source port per message). Past MAX_PEERS hosts the longest idle one is forgotten.
- Datagrams are read by osc_wire, which checks each one whole before any of it runs: a datagram
  with any fault gets one /ganbridge/error and nothing of it is done.
- A peer's messages run one after another on a single worker thread (the core may block on
  SQLite), so its replies keep the order of its messages; a ping with nothing of its peer waiting
  is answered at once on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ganbridge.core.service import BridgeCore
from ganbridge.doors.osc_mapping import OscMapping, OscPeer, OscReply, error_reply
from ganbridge.doors.osc_wire import OscFormatError, OscMessage, encode_message, parse_datagram

log = logging.getLogger("ganbridge.osc")

RECEIVE_BUFFER = 4 << 20  # bursts from a control surface must not overflow the default 212 KB
MAX_PEERS = 256


@dataclass(eq=False)
class _Remote:
    """A sending host as the transport sees it: where its replies go and how much of it waits."""

    host: str
    last_port: int  # the source port of its latest datagram
    seen: float = 0.0  # when it last sent something
    waiting: int = 0  # its messages handed to the OSC thread and not yet handled (loop thread only)
    peer: OscPeer = field(init=False)  # set right after, since the peer's callback names this remote

    @property
    def reply_address(self) -> tuple[str, int]:
        return (self.host, self.peer.reply_port or self.last_port)


class OscDoor(asyncio.DatagramProtocol):
    def __init__(self, core: BridgeCore, host: str, port: int):
        self.core = core
        self.mapping = OscMapping(core)
        self.host = host
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: dict[str, _Remote] = {}  # by host address
        # One thread keeps each peer's messages in order without blocking the event loop.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osc")
        # The door's own event loop, in its own thread: datagrams are read and pings answered
        # there, so a busy WebSocket door (whose loop is the caller's) does not delay them.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind((self.host, self.port))  # here, so a port in use fails `start` itself
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="osc-door", daemon=True)
        self._thread.start()
        endpoint = self._loop.create_datagram_endpoint(lambda: self, sock=sock)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(endpoint, self._loop))

    async def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_transport(), loop))
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join, 10)
            if not thread.is_alive():
                loop.close()
        for remote in list(self.peers.values()):
            _remove_all(self.mapping.disconnect(remote.peer))
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()
            await asyncio.sleep(0)  # connection_lost runs next and closes the socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    # -- sending (any thread) ----------------------------------------------------------------
    def _send(self, remote: _Remote, reply: OscReply) -> None:
        if reply.remove is not None:
            _remove(reply.remove)
        if reply.file is not None and not _write_whole(*reply.file):
            reply = error_reply(str(reply.args[0]), "unavailable", f"cannot write the live preview {reply.file[0]}")
        data = encode_message(reply.address, *reply.args)
        if self._loop is None or self.transport is None:
            return
        try:
            # The address is taken now, so a reply_to handled before this reply already counts.
            self._loop.call_soon_threadsafe(self.transport.sendto, data, remote.reply_address)
        except RuntimeError:
            log.debug("dropping an OSC reply: the event loop has shut down")

    def _send_all(self, remote: _Remote, replies: list[OscReply]) -> None:
        for reply in replies:
            self._send(remote, reply)

    # -- peers (loop thread) -----------------------------------------------------------------
    def _remote(self, addr: tuple) -> _Remote:
        host, port = addr[0], addr[1]
        remote = self.peers.get(host) or self._connect(host, port)
        remote.last_port = port
        remote.seen = time.monotonic()
        return remote

    def _connect(self, host: str, port: int) -> _Remote:
        if len(self.peers) >= MAX_PEERS:  # forget the longest-idle host
            idle = min(self.peers.values(), key=lambda r: r.seen)
            _remove_all(self.mapping.disconnect(idle.peer))
            del self.peers[idle.host]
        remote = _Remote(host=host, last_port=port)
        remote.peer = self.mapping.connect(host, lambda reply: self._send(remote, reply))
        self.peers[host] = remote
        return remote

    # -- receiving (loop thread) -------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple) -> None:
        remote = self._remote(addr)
        try:
            messages = parse_datagram(data)
        except OscFormatError as e:
            # In turn, like any message: a reply_to sent just before must take effect first.
            error = self.mapping.bad_datagram(e)
            self._in_turn(remote, lambda: self._send(remote, error))
            return
        for message in messages:
            # Only when nothing of this peer's is waiting, so its replies keep the order of its
            # messages: then a ping is answered here on the loop, with no thread hop, and a
            # liveness check stays fast while other clients load the bridge.
            quick = self.mapping.quick_reply(remote.peer, message.address) if remote.waiting == 0 else None
            if quick is not None:
                if self.transport is not None:
                    self.transport.sendto(encode_message(quick.address, *quick.args), remote.reply_address)
                continue
            self._in_turn(remote, self._receiver(remote, message))

    def _receiver(self, remote: _Remote, message: OscMessage) -> Callable[[], None]:
        return lambda: self._send_all(remote, self.mapping.receive(remote.peer, message.address, message.args))

    def _in_turn(self, remote: _Remote, work: Callable[[], None]) -> None:
        """Run `work` on the OSC thread after everything this peer sent before."""
        remote.waiting += 1
        self._pool.submit(self._run_in_turn, remote, work)

    def _run_in_turn(self, remote: _Remote, work: Callable[[], None]) -> None:
        try:
            work()
        finally:
            if self._loop is not None:  # after this message's replies, which are queued on the loop first
                try:
                    self._loop.call_soon_threadsafe(self._handled, remote)
                except RuntimeError:
                    pass  # the loop has shut down

    @staticmethod
    def _handled(remote: _Remote) -> None:
        remote.waiting -= 1


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        log.warning("cannot remove live preview %s: %s", path, e)


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        _remove(path)


def _write_whole(path: Path, data: bytes) -> bool:
    """Replace `path` with `data` at once (a reader sees the old file or the new, never half),
    unsynced: a live preview is overwritten by the next frame anyway."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.replace(part, path)
        return True
    except OSError as e:
        log.warning("cannot write live preview %s: %s", path, e)
        return False
