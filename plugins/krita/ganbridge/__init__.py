"""GAN Bridge for Krita: generate into layers and selections, rate and steer, from a docker.

A thin client: no torch, no numpy. It talks to `ganbridge serve` through the bundled pure-Python
websockets (in vendor/) and the shared protocol client.
"""

import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)  # ahead of any other websockets: the client needs the bundled version

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita  # noqa: E402

from .docker import GanBridgeDocker  # noqa: E402
from .extension import GanBridgeExtension  # noqa: E402

DOCKER_ID = "ganbridge_docker"

_app = Krita.instance()
_app.addExtension(GanBridgeExtension(_app))
_app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, GanBridgeDocker))
