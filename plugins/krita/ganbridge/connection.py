"""Where the network meets Qt: one BridgeClient per Krita, drained by a QTimer on the GUI thread.

The client's threads never touch Qt objects; this timer turns their events into Qt signals, so
every docker handles bridge messages on the GUI thread and the canvas never waits on the network.
"""

from __future__ import annotations

from typing import Any

from krita import Krita

from . import ganbridge_client as gc
from .qt import QObject, QTimer, pyqtSignal

DRAIN_MS = 50
SETTINGS_GROUP = "ganbridge"


class NotConnected(Exception):
    pass


def read_settings() -> tuple[str, str]:
    app = Krita.instance()
    return app.readSetting(SETTINGS_GROUP, "url", gc.DEFAULT_URL), app.readSetting(SETTINGS_GROUP, "token", "")


def write_settings(url: str, token: str) -> None:
    app = Krita.instance()
    app.writeSetting(SETTINGS_GROUP, "url", url)
    app.writeSetting(SETTINGS_GROUP, "token", token)


class BridgeConnection(QObject):
    stateChanged = pyqtSignal(object)  # ganbridge_client.ConnectionState
    message = pyqtSignal(dict)

    def __init__(self) -> None:
        super().__init__()
        self.client: gc.BridgeClient | None = None
        self.state = gc.ConnectionState(detail="not connected")
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
        self.timer.stop()
        self.state = gc.ConnectionState(status="disconnected", detail="disconnected")
        self.stateChanged.emit(self.state)

    def require(self) -> gc.BridgeClient:
        """The connected client, or NotConnected saying why not."""
        if self.client is None or not self.client.connected:
            detail = self.state.detail if self.client is not None else "click Connect"
            raise NotConnected(f"not connected to the bridge ({detail})")
        return self.client

    def request(self, kind: str, **fields: Any) -> str:
        return self.require().request(kind, **fields)

    def drain(self) -> None:
        if self.client is not None:
            self.drain_client(self.client)

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
