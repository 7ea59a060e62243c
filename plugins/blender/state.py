"""The add-on's small model of what is going on: connection, generators, jobs, messages.

Plain Python, no bpy: the connection module fills it on Blender's main thread (in `drain`), the
panel reads it. Durable things (the history of results) live in the .blend, see `history.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .ganbridge_jobs import Progress

# What the user asked for, so a result knows where it goes.
PLACE_ON_TARGET = "target"  # first result on the target object, the rest in a row beside it
PLACE_IN_ROW = "row"  # every result on a new plane in a row


@dataclass
class Job(Progress):
    """A request that makes results, and where they go (its progress: ganbridge_jobs.Progress)."""

    rid: str
    kind: str  # generate | variations | interpolate | steer | regenerate | live (a live commit)
    label: str
    placement: str = PLACE_ON_TARGET
    target: str = ""  # object name, "" = make a plane
    params: dict[str, Any] = field(default_factory=dict)
    received: int = 0
    started: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        return f"{self.label}: {self.progress_text()}"


@dataclass
class AddonState:
    status: str = "disconnected"
    detail: str = "not connected"
    server: str = ""
    generators: dict[str, dict] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)  # what the bridge granted beyond protocol v1
    jobs: dict[str, Job] = field(default_factory=dict)
    last_error: str = ""
    last_info: str = ""
    applied: int = 0  # results applied, each by one undo-able operator call
    # rid of an `item` request -> our history key, to file the bridge's recipe where it belongs
    recipe_requests: dict[str, str] = field(default_factory=dict)
    # rid of a `feedback` request -> (item, rating), applied to the history on `ack`
    feedback_requests: dict[str, tuple[str, int]] = field(default_factory=dict)
    # rid of an `item` request with data -> (item, path), written when the bridge's reply arrives
    export_requests: dict[str, tuple[str, str]] = field(default_factory=dict)

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.active]

    def forget_finished(self, keep: int = 8) -> None:
        finished = [rid for rid, j in self.jobs.items() if not j.active]
        for rid in finished[:-keep]:
            del self.jobs[rid]

    def status_line(self) -> str:
        if self.status == "connected":
            return f"Connected: {self.server}" if self.server else "Connected"
        return self.detail or self.status


STATE = AddonState()
