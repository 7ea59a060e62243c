"""The Krita Extension: menu actions (with shortcuts from ganbridge.action) that drive the docker."""

from __future__ import annotations

from krita import Extension

from . import docker


def _visible_docker() -> docker.GanBridgeDocker | None:
    alive = [d for d in docker.DOCKERS if d.isVisible()] or docker.DOCKERS
    return alive[-1] if alive else None


class GanBridgeExtension(Extension):
    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 (Krita's name)
        for name, text, method in (
            ("ganbridge_generate", "GAN Bridge: Generate", "generate"),
            ("ganbridge_fill", "GAN Bridge: Fill Selection", "fill"),
        ):
            action = window.createAction(name, text, "tools/scripts")
            action.triggered.connect(lambda _checked=False, m=method: self._run(m))

    @staticmethod
    def _run(method: str) -> None:
        d = _visible_docker()
        if d is not None:
            getattr(d, method)()
