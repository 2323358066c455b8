"""The full inventory of this machine in the GLPI agent's JSON inventory format.

``collect()`` returns a complete GLPI document::

    {"deviceid": ..., "action": "inventory", "itemtype": "Computer", "content": {...}}

``content`` holds the standard GLPI sections (hardware, bios, operatingsystem, cpus, ...)
plus ``backdesk_health``: help-desk extras (SMART health, pending updates, failed services,
recent errors, temperatures, battery wear). The schema leaves ``content`` open to extra
keys, so the document stays valid and GLPI imports the standard sections as usual.

Values a machine cannot give are omitted, never invented. Platform collectors:
``linux`` (/proc, /sys, psutil, dpkg/rpm, lsblk), ``windows`` (CIM/WMI and the registry
through PowerShell), ``macos`` (system_profiler).
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from .common import clean

VERSION_CLIENT = f"Backdesk-Agent_v{__version__}"


def default_device_id() -> str:
    """GLPI's convention: ``<hostname>-<YYYY-MM-DD-HH-MM-SS>`` of the first inventory."""
    return f"{socket.gethostname().split('.')[0]}-{time.strftime('%Y-%m-%d-%H-%M-%S')}"


def document(content: dict[str, Any], device_id: str | None, started: float) -> dict[str, Any]:
    content = dict(content)
    content["versionclient"] = VERSION_CLIENT
    content["versionprovider"] = {
        "name": "Backdesk",
        "version": __version__,
        "program": "backdesk-agent",
        "etime": int(time.monotonic() - started),
        "comments": [f"Python {sys.version.split()[0]} on {sys.platform}"],
    }
    return {
        "deviceid": device_id or default_device_id(),
        "action": "inventory",
        "itemtype": "Computer",
        "content": clean(content),
    }


def collect_content(root: Path | str = "/", extras: bool = True) -> dict[str, Any]:
    """The ``content`` part; ``extras=False`` leaves out ``backdesk_health``."""
    if sys.platform.startswith("linux"):
        from . import linux

        return linux.collect_content(root, extras)
    if sys.platform == "win32":
        from . import windows

        return windows.collect_content(extras)
    if sys.platform == "darwin":
        from . import macos

        return macos.collect_content(extras)
    raise NotImplementedError(f"no inventory collector for {sys.platform}")


def collect(
    device_id: str | None = None, root: Path | str = "/", extras: bool = True
) -> dict[str, Any]:
    """The complete GLPI inventory document of this machine (``root`` is for tests)."""
    started = time.monotonic()
    return document(collect_content(root, extras), device_id, started)
