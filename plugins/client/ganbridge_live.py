"""A live session as a plugin sees it: its sliders, the moves to send and the newest frame to show.

Pure Python, shared by every plugin (each build copies it in). The bridge renders only the newest
state of a session and says in each `live_frame` which move it shows (`seq`); frames can arrive
faster than a host repaints, so this keeps only the newest one not yet shown, and a host applies
that one per tick (a frame older than one already shown is dropped). Messages are those of
docs/reference/protocol.md (Live sessions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_VALUE = 8.0  # the bridge's reach of a slider, in unit moves along its direction
SLIDER_RANGE = 3.0  # what a plugin's slider spans each way: far enough to change a lot, still in the model's range


@dataclass
class LiveSession:
    id: str  # the live_open request's id
    generator: str
    status: str = "opening"  # opening | open | closed | failed
    directions: list[dict[str, Any]] = field(default_factory=list)  # [{name, change}], strongest first
    values: list[float] = field(default_factory=list)  # each slider's position
    blend: float = 0.0  # toward the session's `toward` item (0: none of it)
    params: dict[str, Any] = field(default_factory=dict)  # overrides moved so far (temperature, truncation)
    seq: int = 0  # the last move's number
    shown: int = -1  # the seq of the frame last taken to show
    error: str = ""
    _frame: dict[str, Any] | None = None  # the newest frame not yet taken

    @property
    def active(self) -> bool:
        return self.status in ("opening", "open")

    def update(self, msg: dict[str, Any]) -> bool:
        """Take in one of the bridge's messages for this session; True if it was one."""
        if msg.get("id") != self.id:
            return False
        kind = msg.get("type")
        if kind == "live_opened":
            self.status = "open"
            self.directions = [d for d in msg.get("directions", []) if isinstance(d, dict)]
            self.values = [0.0] * len(self.directions)
        elif kind == "live_frame":
            seq = msg.get("seq")
            if isinstance(seq, int) and seq > self.shown and (self._frame is None or seq >= self._frame["seq"]):
                self._frame = msg
        elif kind == "live_closed":
            self.status = "closed"
        elif kind == "error":
            self.error = str(msg.get("message", "the bridge refused a live message"))
            if self.status == "opening" or msg.get("code") in ("disconnected", "not_connected"):
                self.status = "failed"  # no session to go on with
        else:
            return False
        return True

    def close(self) -> None:
        """The plugin ended the session (Stop, another document): its frames are no longer wanted."""
        self.status, self._frame = "closed", None

    def fail(self, why: str) -> None:
        """The session cannot go on (the connection dropped): say why."""
        self.status, self.error, self._frame = "failed", why, None

    def move(self, index: int, value: float) -> dict[str, Any]:
        """Set slider `index`; the `live_move` fields to send (besides the type)."""
        if not 0 <= index < len(self.values):
            raise IndexError(f"this session has {len(self.values)} sliders, not {index + 1}")
        self.values[index] = max(-MAX_VALUE, min(MAX_VALUE, float(value)))
        self.seq += 1
        return {"id": self.id, "seq": self.seq, "values": list(self.values)}

    def move_blend(self, blend: float) -> dict[str, Any]:
        self.blend = max(0.0, min(1.0, float(blend)))
        self.seq += 1
        return {"id": self.id, "seq": self.seq, "blend": self.blend}

    def move_params(self, **params: Any) -> dict[str, Any]:
        """Change params that keep the latent's shapes (temperature, truncation); the bridge
        refuses others with an error for the session, which goes on."""
        self.params.update(params)
        self.seq += 1
        return {"id": self.id, "seq": self.seq, "params": dict(self.params)}

    def reset(self) -> dict[str, Any]:
        """Every slider back to 0 (the starting latent)."""
        self.values = [0.0] * len(self.values)
        self.seq += 1
        return {"id": self.id, "seq": self.seq, "values": list(self.values)}

    def take_frame(self) -> dict[str, Any] | None:
        """The newest frame not yet shown (once), or None."""
        frame, self._frame = self._frame, None
        if frame is not None:
            self.shown = frame["seq"]
        return frame

    def slider_label(self, index: int) -> str:
        d = self.directions[index]
        return f"{d.get('name', f'direction {index + 1}')}"
