"""One snapshot for the rules: a plain dict of what this machine says about itself.

Each collector reads one thing from psutil or a cheap system source and returns a value,
or ``None`` when the machine cannot tell (a container, a VM, another OS, no permission):
then the key is left out of the snapshot, and the rules that need it are not checked.
Nothing is invented. Collectors that run a program (``smartctl``, ``systemctl``) do so
with a timeout, and only when the program exists.

Keys (all optional):

    filesystems       [{mountpoint, device, fstype, total, free, percent, read_only}]
    root              {read_only}
    memory            {total, available, percent, swap_total, swap_used, swap_percent,
                       swap_in_rate, swap_out_rate, swap_io_rate}      (rates in bytes/s)
    processes         [{pid, name, user, cpu_percent, rss, memory_percent}]  top N by CPU
                       and top N by memory
    system            {uptime_days, boot_time, pending_reboot, reboot_packages}
    batteries         [{name, percent, full, design, wear_percent}]
    temperatures      [{sensor, current, high, critical}]            (°C)
    smart             [{device, model, passed}]
    services          {failed, units}
    network           {default_route}
    dns               {name, resolves, addresses, error}
    clock             {offset_seconds, skew_seconds}      (local minus coordinator time)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from .. import diagnostics

SAMPLE_SECONDS = 0.5
TOP_PROCESSES = 10
COMMAND_TIMEOUT = 5.0
DNS_TIMEOUT = 3.0
MAX_SMART_DISKS = 8
MAX_SENSORS = 32
MAX_UNITS = 50
POWER_SUPPLY = Path("/sys/class/power_supply")
REBOOT_REQUIRED = (Path("/run/reboot-required"), Path("/var/run/reboot-required"))
PROC_ROUTE = Path("/proc/net/route")
PROC_IPV6_ROUTE = Path("/proc/net/ipv6_route")


def _safe(collect: Callable[[], Any]) -> Any:
    """A collector's value, or None when the machine refuses to tell."""
    try:
        return collect()
    except (OSError, psutil.Error, ValueError, TypeError, KeyError, AttributeError):
        return None


# --- filesystems ---------------------------------------------------------------------


def filesystems(sections: Iterable[diagnostics.Section] | None = None) -> list[dict[str, Any]]:
    """The diagnostics' disks section (already collected for Get help, or read now)."""
    for section in sections or ():
        if section.name == "disks" and isinstance(section.data, list):
            return list(section.data)
    data = diagnostics.COLLECTORS["disks"]().data
    return list(data) if isinstance(data, list) else []


def root_filesystem() -> dict[str, Any] | None:
    if os.name != "posix":
        return None
    return {"read_only": bool(os.statvfs("/").f_flag & os.ST_RDONLY)}


# --- memory, processes (sampled together over one short interval) -------------------


def _swap_counters() -> tuple[int, int] | None:
    swap = psutil.swap_memory()
    if not isinstance(swap.sin, int | float) or not isinstance(swap.sout, int | float):
        return None
    return int(swap.sin), int(swap.sout)


def memory(before: tuple[int, int] | None, after: tuple[int, int] | None, seconds: float) -> dict:
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    data: dict[str, Any] = {
        "total": vm.total,
        "available": vm.available,
        "percent": vm.percent,
        "swap_total": swap.total,
        "swap_used": swap.used,
        "swap_percent": swap.percent,
    }
    if before and after and seconds > 0:
        # a counter that went backwards (wrapped, or psutil could not read it): no rate
        if after[0] >= before[0] and after[1] >= before[1]:
            data["swap_in_rate"] = round((after[0] - before[0]) / seconds)
            data["swap_out_rate"] = round((after[1] - before[1]) / seconds)
            data["swap_io_rate"] = data["swap_in_rate"] + data["swap_out_rate"]
    return data


def _prime_processes() -> list[psutil.Process]:
    procs = []
    for proc in psutil.process_iter(["pid", "name", "username", "memory_info"]):
        try:
            proc.cpu_percent(None)  # the first call starts the sample
        except psutil.Error:
            continue
        procs.append(proc)
    return procs


def processes(primed: list[psutil.Process], top: int = TOP_PROCESSES) -> list[dict[str, Any]]:
    total = psutil.virtual_memory().total or 1
    rows = []
    for proc in primed:
        if proc.pid == 0:  # the idle "process" of Windows and BSD is not a hog
            continue
        try:
            cpu = proc.cpu_percent(None)
        except psutil.Error:
            continue
        info = proc.info
        rss = info["memory_info"].rss if info.get("memory_info") else 0
        rows.append(
            {
                "pid": info["pid"],
                "name": (info.get("name") or "")[:64],
                "user": (info.get("username") or "")[:64],
                "cpu_percent": round(cpu, 1),
                "rss": rss,
                "memory_percent": round(rss * 100 / total, 1),
            }
        )
    by_cpu = sorted(rows, key=lambda r: r["cpu_percent"], reverse=True)[:top]
    by_rss = sorted(rows, key=lambda r: r["rss"], reverse=True)[:top]
    seen: set[int] = set()
    merged = []
    for row in by_cpu + by_rss:
        if row["pid"] not in seen:
            seen.add(row["pid"])
            merged.append(row)
    return merged


# --- system ----------------------------------------------------------------------------


def system(reboot_files: Iterable[Path] = REBOOT_REQUIRED) -> dict[str, Any]:
    boot = psutil.boot_time()
    data: dict[str, Any] = {
        "boot_time": boot,
        "uptime_days": round((time.time() - boot) / 86400, 2),
    }
    if sys.platform.startswith("linux"):
        data["pending_reboot"] = False
        for path in reboot_files:
            if path.exists():
                data["pending_reboot"] = True
                pkgs = path.with_name(path.name + ".pkgs")
                try:
                    names = pkgs.read_text(errors="replace").split()
                    data["reboot_packages"] = sorted(set(names))[:20]
                except OSError:
                    pass
                break
    return data


# --- battery, temperatures -----------------------------------------------------------


def _read_number(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def batteries(root: Path = POWER_SUPPLY) -> list[dict[str, Any]] | None:
    """Batteries from sysfs: wear is how much of the design capacity is gone."""
    if not root.is_dir():
        return None
    found = []
    for supply in sorted(root.iterdir()):
        try:
            kind = (supply / "type").read_text().strip()
        except OSError:
            continue
        if kind != "Battery":
            continue
        entry: dict[str, Any] = {"name": supply.name}
        percent = _read_number(supply / "capacity")
        if percent is not None:
            entry["percent"] = percent
        for prefix in ("energy", "charge"):
            full = _read_number(supply / f"{prefix}_full")
            design = _read_number(supply / f"{prefix}_full_design")
            if full is not None and design:
                entry["full"] = full
                entry["design"] = design
                entry["wear_percent"] = round(max(0.0, (1 - full / design) * 100), 1)
                break
        found.append(entry)
    if not found:
        return None
    if len(found) == 1 and "percent" not in found[0]:
        battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
        if battery is not None:
            found[0]["percent"] = battery.percent
    return found


def temperatures() -> list[dict[str, Any]] | None:
    if not hasattr(psutil, "sensors_temperatures"):
        return None
    readings = []
    for chip, entries in psutil.sensors_temperatures().items():
        for i, entry in enumerate(entries):
            if entry.current is None:
                continue
            readings.append(
                {
                    "sensor": f"{chip}/{entry.label or i}"[:80],
                    "current": entry.current,
                    # a sensor reporting 0 as its limit has no limit
                    "high": entry.high if entry.high and entry.high > 0 else None,
                    "critical": entry.critical if entry.critical and entry.critical > 0 else None,
                }
            )
    return readings[:MAX_SENSORS] or None


# --- programs: smartctl, systemctl ---------------------------------------------------


def _run(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def parse_smart(device: str, output: str) -> dict[str, Any] | None:
    """``smartctl -H -j`` output: the overall health, when the disk answered it."""
    try:
        data = json.loads(output)
    except ValueError:
        return None
    status = data.get("smart_status") if isinstance(data, dict) else None
    if not isinstance(status, dict) or not isinstance(status.get("passed"), bool):
        return None
    entry: dict[str, Any] = {"device": device, "passed": status["passed"]}
    model = data.get("model_name") or data.get("model_family")
    if isinstance(model, str):
        entry["model"] = model[:80]
    return entry


def smart() -> list[dict[str, Any]] | None:
    smartctl = shutil.which("smartctl")
    if not smartctl:
        return None
    scan = _run([smartctl, "--scan", "-j"])
    if scan is None:
        return None
    try:
        devices = [d["name"] for d in json.loads(scan.stdout).get("devices", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    results = []
    for device in devices[:MAX_SMART_DISKS]:
        done = _run([smartctl, "-H", "-j", device])
        if done is not None and (entry := parse_smart(device, done.stdout)):
            results.append(entry)
    return results or None


def parse_failed_units(output: str) -> dict[str, Any] | None:
    """``systemctl --failed --output=json``: the names of the failed units."""
    try:
        units = json.loads(output)
    except ValueError:
        return None
    if not isinstance(units, list):
        return None
    names = [str(u["unit"])[:120] for u in units if isinstance(u, dict) and u.get("unit")]
    return {"failed": len(names), "units": names[:MAX_UNITS]}


def services() -> dict[str, Any] | None:
    systemctl = shutil.which("systemctl")
    if not systemctl or not Path("/run/systemd/system").is_dir():
        return None  # not booted with systemd (a container, another OS)
    done = _run([systemctl, "--failed", "--output=json", "--no-pager", "--no-legend"])
    if done is None or done.returncode != 0:
        return None
    return parse_failed_units(done.stdout)


# --- network -----------------------------------------------------------------------------


def has_default_route(route: Path = PROC_ROUTE, ipv6_route: Path = PROC_IPV6_ROUTE) -> bool | None:
    """Whether the kernel has a default route (IPv4 or IPv6); None when it cannot tell."""
    readable = False
    try:
        lines = route.read_text().splitlines()[1:]
        readable = True
        for line in lines:
            fields = line.split()
            # Destination 0.0.0.0, Mask 0.0.0.0, flag RTF_UP (0x1)
            if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
                if int(fields[3], 16) & 0x1:
                    return True
    except (OSError, ValueError):
        pass
    try:
        lines = ipv6_route.read_text().splitlines()
        readable = True
        for line in lines:
            fields = line.split()
            # ::/0 through a real interface, not the "unreachable" entry on lo
            if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00":
                if fields[9] != "lo" and int(fields[8], 16) & 0x1:
                    return True
    except (OSError, ValueError):
        pass
    return False if readable else None


def network() -> dict[str, Any] | None:
    route = has_default_route()
    return None if route is None else {"default_route": route}


def resolve(name: str, timeout: float = DNS_TIMEOUT) -> dict[str, Any]:
    """Resolve ``name`` with the system's resolver, giving up after ``timeout``."""
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            outcome["addresses"] = sorted({str(info[4][0]) for info in infos})[:8]
        except (OSError, UnicodeError) as exc:
            outcome["error"] = str(exc)[:200]

    worker = threading.Thread(target=lookup, name="backdesk-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    result: dict[str, Any] = {"name": name[:253], "resolves": bool(outcome.get("addresses"))}
    if worker.is_alive():
        result["error"] = f"no answer within {timeout:g} s"
    elif "addresses" in outcome:
        result["addresses"] = outcome["addresses"]
    else:
        result["error"] = outcome.get("error", "no address")
    return result


def clock(offset_seconds: float | None) -> dict[str, Any] | None:
    if offset_seconds is None:
        return None
    return {
        "offset_seconds": round(offset_seconds, 1),
        "skew_seconds": round(abs(offset_seconds), 1),
    }


# --- the snapshot ------------------------------------------------------------------------


def collect(
    *,
    dns_name: str | None = None,
    clock_offset: float | None = None,
    sections: Iterable[diagnostics.Section] | None = None,
    sample_seconds: float = SAMPLE_SECONDS,
    top: int = TOP_PROCESSES,
) -> dict[str, Any]:
    """This machine's snapshot.

    ``dns_name``: a name to resolve (the coordinator's host); the DNS check is skipped
    without one. ``clock_offset``: local time minus the coordinator's time in seconds,
    None when unknown. ``sections``: diagnostics already collected, reused when they fit.
    """
    sections = list(sections or ())
    swap_before = _safe(_swap_counters)
    primed = _safe(_prime_processes) or []
    started = time.monotonic()
    time.sleep(sample_seconds)
    elapsed = time.monotonic() - started
    swap_after = _safe(_swap_counters)

    values: dict[str, Any] = {
        "filesystems": _safe(lambda: filesystems(sections)),
        "root": _safe(root_filesystem),
        "memory": _safe(lambda: memory(swap_before, swap_after, elapsed)),
        "processes": _safe(lambda: processes(primed, top)) if primed else None,
        "system": _safe(system),
        "batteries": _safe(batteries),
        "temperatures": _safe(temperatures),
        "smart": _safe(smart),
        "services": _safe(services),
        "network": _safe(network),
        "dns": _safe(lambda: resolve(dns_name)) if dns_name else None,
        "clock": clock(clock_offset),
    }
    return {key: value for key, value in values.items() if value is not None}
