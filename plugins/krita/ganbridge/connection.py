"""Where the network meets Qt: one BridgeClient per Krita, drained by a QTimer on the GUI thread.

The client's threads never touch Qt objects; this timer turns their events into Qt signals, so
every docker handles bridge messages on the GUI thread and the canvas never waits on the network.
The same timer runs the shared work queue (ganbridge_work), into which the dockers put what they
do with each event: results are decoded on its worker and go into documents a slice per tick.
"""

from __future__ import annotations

import traceback
from typing import Any

from krita import Krita

from . import ganbridge_client as gc
from . import ganbridge_presets as gp
from . import ganbridge_work as gw
from .qt import QObject, QTimer, pyqtSignal

DRAIN_MS = 50
BUSY_MS = 10  # while work is queued: a slice of about TICK_BUDGET, then the GUI's own events
SETTINGS_GROUP = "ganbridge"


class NotConnected(Exception):
    pass


def read_settings() -> tuple[str, str]:
    app = Krita.instance()
    return app.readSetting(SETTINGS_GROUP, "url", gc.DEFAULT_URL), app.readSetting(SETTINGS_GROUP, "token", "")


def read_presets() -> gp.Presets:
    return gp.decode(Krita.instance().readSetting(SETTINGS_GROUP, "presets", ""))


def write_presets(presets: gp.Presets) -> None:
    Krita.instance().writeSetting(SETTINGS_GROUP, "presets", gp.encode(presets))


def write_settings(url: str, token: str) -> None:
    app = Krita.instance()
    app.writeSetting(SETTINGS_GROUP, "url", url)
    app.writeSetting(SETTINGS_GROUP, "token", token)


class BridgeConnection(QObject):
    stateChanged = pyqtSignal(object)  # ganbridge_client.ConnectionState
    message = pyqtSignal(object)  # a dict, passed as it is (`dict` would copy it into a QVariantMap)

    def __init__(self) -> None:
        super().__init__()
        self.client: gc.BridgeClient | None = None
        self.state = gc.ConnectionState(detail="not connected")
        self.work = gw.WorkQueue()
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)

    def open(self, url: str, token: str) -> None:
        """(Re)connect; raises gc.BadUrl for a URL that cannot work. Returns at once."""
        url = gc.check_url(url)
        self.close()
        self.client = gc.BridgeClient(url, token, client_name=f"Krita {Krita.instance().version()}")
        self.client.start()
        self.timer.start()

    def close(self) -> None:
        if self.client is not None:
            old, self.client = self.client, None
            old.stop(timeout=2.0)
            self.drain_client(old)  # deliver the lost-request errors so no docker waits forever
        self.state = gc.ConnectionState(status="disconnected", detail="disconnected")
        self.stateChanged.emit(self.state)
        self._schedule()

    def require(self) -> gc.BridgeClient:
        """The connected client, or NotConnected saying why not."""
        if self.client is None or not self.client.connected:
            detail = self.state.detail if self.client is not None else "click Connect"
            raise NotConnected(f"not connected to the bridge ({detail})")
        return self.client

    def request(self, kind: str, **fields: Any) -> str:
        return self.require().request(kind, **fields)

    def drain(self) -> None:
        """Each tick: the client's events to the dockers, then up to TICK_BUDGET of queued work."""
        if self.client is not None:
            self.drain_client(self.client)
        try:
            self.work.run()
        except Exception:  # a docker's bug: it must not stop the timer (the queue has dropped that work)
            traceback.print_exc()
        self._schedule()

    def _schedule(self) -> None:
        """Tick often while work waits; idle at DRAIN_MS; stopped once closed and nothing is left."""
        if self.client is None and not self.work.busy:
            self.timer.stop()
            return
        self.timer.setInterval(BUSY_MS if self.work.busy else DRAIN_MS)
        if not self.timer.isActive():
            self.timer.start()

    def drain_client(self, client: gc.BridgeClient) -> None:
        for event in client.poll():
            if event.kind == "state":
                self.state = event.data
                self.stateChanged.emit(event.data)
            else:
                self.message.emit(event.data)


_connection: BridgeConnection | None = None


def shared() -> BridgeConnection:
    """The one connection every docker of this Krita uses (connected with the saved settings)."""
    global _connection
    if _connection is None:
        _connection = BridgeConnection()
        url, token = read_settings()
        try:
            _connection.open(url, token)
        except gc.BadUrl as e:
            _connection.state = gc.ConnectionState(status="disconnected", detail=str(e))
    return _connection
