"""A diagnostics snapshot to attach to a Get-help request, in sections the user can
leave out, each with a one-line summary a person can read.

The diagnostics issue deepens this (findings, GLPI inventory); the sections and their
names are the contract the Get-help preview and the ticket page rely on.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from . import __version__, facts


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    summary: str
    data: Any


def _gib(value: float) -> str:
    return f"{value / 2**30:.1f} GiB"


def _system() -> Section:
    boot = psutil.boot_time()
    uptime_h = (time.time() - boot) / 3600
    data = {
        "hostname": facts.hostname(),
        "os": platform.system(),
        "os_release": platform.release(),
        "os_version": platform.version()[:200],
        "machine": platform.machine(),
        "boot_time": boot,
        "uptime_hours": round(uptime_h, 1),
        "agent_version": __version__,
    }
    summary = f"{data['os']} {data['os_release']} on {data['machine']}, up {uptime_h:.1f} h"
    return Section("system", "System", summary, data)


def _cpu() -> Section:
    load = psutil.getloadavg() if hasattr(psutil, "getloadavg") else None
    data = {
        "logical": psutil.cpu_count(logical=True),
        "physical": psutil.cpu_count(logical=False),
        "percent": psutil.cpu_percent(interval=0.2),
        "load_average": list(load) if load else None,
    }
    return Section("cpu", "Processor", f"{data['logical']} CPUs, {data['percent']:.0f}% busy", data)


def _memory() -> Section:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    data = {
        "total": vm.total,
        "available": vm.available,
        "percent": vm.percent,
        "swap_total": swap.total,
        "swap_used": swap.used,
    }
    summary = f"{_gib(vm.available)} free of {_gib(vm.total)} ({vm.percent:.0f}% used)"
    return Section("memory", "Memory", summary, data)


def _disks() -> Section:
    disks = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        disks.append(
            {
                "mountpoint": part.mountpoint,
                "device": part.device,
                "fstype": part.fstype,
                "total": usage.total,
                "free": usage.free,
                "percent": usage.percent,
                "read_only": "ro" in part.opts.split(","),
            }
        )
    fullest = max(disks, key=lambda d: d["percent"], default=None)
    summary = (
        f"{len(disks)} filesystems; fullest {fullest['mountpoint']} at {fullest['percent']:.0f}%"
        if fullest
        else "no filesystems reported"
    )
    return Section("disks", "Disks", summary, disks)


def _network() -> Section:
    stats = psutil.net_if_stats()
    interfaces = []
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        interfaces.append(
            {
                "name": name,
                "up": bool(st and st.isup),
                "addresses": [a.address for a in addrs if a.family.name in ("AF_INET", "AF_INET6")],
            }
        )
    up = [i["name"] for i in interfaces if i["up"] and i["name"] != "lo"]
    return Section("network", "Network", f"interfaces up: {', '.join(up) or 'none'}", interfaces)


def _processes() -> Section:
    procs = []
    for p in psutil.process_iter(["pid", "name", "username", "cpu_percent", "memory_info"]):
        info = p.info
        rss = info["memory_info"].rss if info.get("memory_info") else 0
        procs.append(
            {
                "pid": info["pid"],
                "name": (info["name"] or "")[:64],
                "user": (info["username"] or "")[:64],
                "rss": rss,
            }
        )
    top = sorted(procs, key=lambda p: p["rss"], reverse=True)[:10]
    summary = (
        f"{len(procs)} processes; largest {top[0]['name']} ({_gib(top[0]['rss'])})"
        if top
        else "none"
    )
    return Section("processes", "Processes (top 10 by memory)", summary, top)


COLLECTORS: dict[str, Callable[[], Section]] = {
    "system": _system,
    "cpu": _cpu,
    "memory": _memory,
    "disks": _disks,
    "network": _network,
    "processes": _processes,
}


def snapshot() -> list[Section]:
    sections = []
    for collect in COLLECTORS.values():
        try:
            sections.append(collect())
        except (OSError, psutil.Error) as exc:  # a container or VM may refuse some reads
            name = collect.__name__.strip("_")
            sections.append(Section(name, name.title(), f"not available: {exc}", None))
    return sections
