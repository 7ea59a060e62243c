"""A request's progress as the bridge reports it: queued (and how much waits ahead), running (k of n),
or over, and the words and the bar fraction a plugin shows for it.

Pure Python, shared by every plugin (each build copies it in): Blender and Krita read the same
messages the same way. Each plugin's job record extends `Progress` with what it needs to place
the results (a target object, a document).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE = ("sent", "queued", "running")


@dataclass(kw_only=True)
class Progress:
    status: str = "sent"  # sent | queued | running | done | cancelled | failed
    position: int = 0  # items queued ahead of it, while it waits
    done: int = 0  # items finished
    total: int = 0  # items asked for (the bridge's count once it reports progress)
    error: str = ""  # why it failed

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        """How far along, 0-1, for a progress bar."""
        return min(1.0, self.done / self.total) if self.total else 0.0

    def update(self, msg: dict) -> bool:
        """Take in one of the bridge's messages for this request (`accepted`, `queued`,
        `progress`, `done`, `cancelled`); True if it was one of those."""
        kind = msg.get("type")
        if kind in ("accepted", "queued"):
            if self.status in ("sent", "queued"):  # a late `queued` never undoes `running`
                self.status, self.position = "queued", _count(msg.get("position"))
        elif kind == "progress":
            self.status, self.done = "running", _count(msg.get("done"))
            self.total = _count(msg.get("total")) or self.total
        elif kind == "done":
            if self.status != "failed":
                self.status, self.done = "done", max(self.done, self.total)
        elif kind == "cancelled":
            self.status = "cancelled"
        else:
            return False
        return True

    def fail(self, error: str) -> None:
        self.status, self.error = "failed", error

    def progress_text(self) -> str:
        """A few words: "queued, 3 ahead", "2/8", "done"."""
        if self.status == "queued":
            return f"queued, {self.position} ahead" if self.position else "queued, next"
        if self.status == "running" and self.total:
            return f"{self.done}/{self.total}"
        if self.status == "failed":
            return self.error or "failed"
        return self.status


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
