"""A few facts about this machine, sent on every start (the full inventory is separate)."""

from __future__ import annotations

import platform
import socket
from typing import Any

import psutil

from . import __version__


def hostname() -> str:
    return socket.gethostname()


def collect() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "hostname": hostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "os_version": platform.version()[:200],
        "machine": platform.machine(),
        "cpu_count": psutil.cpu_count(logical=True),
        "memory_total": memory.total,
        "boot_time": psutil.boot_time(),
        "agent_version": __version__,
    }
