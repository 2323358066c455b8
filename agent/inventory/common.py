"""Helpers shared by the platform collectors: cleaning, commands, dates, psutil sections.

Every value that reaches the document goes through :func:`clean`: ``None``, empty strings
and empty lists/dicts are dropped, so a section only says what the machine really told us.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

log = logging.getLogger("backdesk.agent.inventory")

MB = 1024 * 1024

# Placeholders firmware vendors leave in DMI/SMBIOS strings: they are not values.
JUNK = {
    "",
    "none",
    "n/a",
    "na",
    "not specified",
    "not available",
    "not applicable",
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "system product name",
    "system manufacturer",
    "system version",
    "base board serial number",
    "chassis serial number",
    "asset-1234567890",
    "no asset tag",
    "no asset information",
    "unknown",
    "0",
    "00000000",
    "0123456789",
    "123456789",
    "x.x",
    "oem",
    "o.e.m.",
    "00000000-0000-0000-0000-000000000000",
    "03000200-0400-0500-0006-000700080009",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
}


def text(value: Any) -> str | None:
    """A meaningful string, or None for missing values and firmware placeholders."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value).replace("\x00", "").strip()
    if value.lower() in JUNK:
        return None
    return value


def positive_int(value: Any) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def clean(value: Any) -> Any:
    """Drop None, blank strings and empty containers, recursively."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = clean(item)
            if item is None or item == "" or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        items = [clean(item) for item in value]
        return [item for item in items if item not in (None, "", [], {})]
    if isinstance(value, str):
        value = value.replace("\x00", "").strip()
        return value or None
    return value


def run(args: list[str], timeout: float = 10.0, ok_codes: Iterable[int] = (0,)) -> str | None:
    """stdout of a standard tool, or None when it is absent, fails or takes too long."""
    if shutil.which(args[0]) is None:
        return None
    try:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", args[0], exc)
        return None
    if result.returncode not in tuple(ok_codes):
        log.debug("%s exited %s", args[0], result.returncode)
        return None
    return result.stdout


def local_datetime(timestamp: float | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS`` in local time, the schema's datetime; None for 1970-ish nonsense."""
    if timestamp is None or timestamp < 86400 * 365:  # before 1971: a missing clock, not a date
        return None
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def local_date(timestamp: float | None) -> str | None:
    value = local_datetime(timestamp)
    return value[:10] if value else None


def timezone() -> dict[str, str]:
    now = time.localtime()
    name = time.strftime("%Z", now) or "UTC"
    offset = time.strftime("%z", now)
    if len(offset) != 5:
        seconds = now.tm_gmtoff or 0
        sign = "+" if seconds >= 0 else "-"
        offset = f"{sign}{abs(seconds) // 3600:02d}{abs(seconds) % 3600 // 60:02d}"
    return {"name": name, "offset": offset}


def memory_section() -> dict[str, int | None]:
    return {
        "memory": positive_int(psutil.virtual_memory().total // MB),
        "swap": positive_int(psutil.swap_memory().total // MB),
    }


def processes(now: float | None = None) -> list[dict[str, Any]]:
    """ps-like rows: %CPU over the process lifetime (no sampling delay), %MEM, VSZ in KB."""
    now = now or time.time()
    total = psutil.virtual_memory().total or 1
    rows = []
    attrs = ["pid", "username", "cmdline", "name", "create_time", "cpu_times", "memory_info"]
    attrs += ["terminal"] if hasattr(psutil.Process, "terminal") else []
    for proc in psutil.process_iter(attrs):
        info = proc.info
        cmdline = info.get("cmdline")
        cmd = " ".join(cmdline) if cmdline else f"[{info.get('name') or info['pid']}]"
        user = info.get("username")
        if not user:
            try:
                user = str(proc.uids().real)  # type: ignore[attr-defined]
            except (psutil.Error, AttributeError):
                user = "?"
        row: dict[str, Any] = {"pid": info["pid"], "user": user, "cmd": cmd[:4096]}
        created = info.get("create_time")
        times = info.get("cpu_times")
        if created and times:
            elapsed = max(now - created, 1e-3)
            row["cpuusage"] = f"{100.0 * (times.user + times.system) / elapsed:.1f}"
        row["started"] = local_datetime(created)
        mem = info.get("memory_info")
        if mem:
            row["mem"] = f"{100.0 * mem.rss / total:.1f}"
            row["virtualmemory"] = positive_int(mem.vms // 1024)
        if info.get("terminal"):
            row["tty"] = os.path.basename(info["terminal"])
        rows.append(row)
    return rows


def drives(
    system_mount: str = "/", labels: Callable[[str], dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    parts = psutil.disk_partitions(all=False)
    if not any(p.mountpoint == system_mount for p in parts):
        parts += [p for p in psutil.disk_partitions(all=True) if p.mountpoint == system_mount]
    rows = []
    seen = set()
    for part in parts:
        if part.mountpoint in seen or part.fstype == "squashfs":
            continue
        seen.add(part.mountpoint)
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            usage = None
        row: dict[str, Any] = {
            "volumn": part.device,
            "filesystem": part.fstype,
            "type": part.mountpoint,
            "systemdrive": part.mountpoint == system_mount,
        }
        if os.name == "nt":
            row["letter"] = part.mountpoint.rstrip("\\")
        if usage is not None and usage.total:
            row["total"] = usage.total // MB
            row["free"] = usage.free // MB
        if labels:
            row.update(labels(part.device))
        rows.append(row)
    return rows


def address_rows(
    name: str, addrs: list[Any], base: dict[str, Any], gateway: str | None
) -> list[dict[str, Any]]:
    """One networks row per address, as the GLPI agent does."""
    rows = []
    for addr in addrs:
        family = getattr(addr.family, "name", str(addr.family))
        row = dict(base)
        if family == "AF_INET":
            row["ipaddress"] = addr.address
            if addr.netmask:
                row["ipmask"] = addr.netmask
                try:
                    net4 = ipaddress.IPv4Network(f"{addr.address}/{addr.netmask}", strict=False)
                    row["ipsubnet"] = str(net4.network_address)
                except ValueError:
                    pass
            if gateway:
                row["ipgateway"] = gateway
        elif family == "AF_INET6":
            address = addr.address.split("%")[0]
            try:
                ipaddress.IPv6Address(address)
            except ValueError:
                continue
            row["ipaddress6"] = address
            if addr.netmask:
                mask = addr.netmask.split("/")[0]
                row["ipmask6"] = mask
                try:
                    prefix = bin(int(ipaddress.IPv6Address(mask))).count("1")
                    net6 = ipaddress.IPv6Network(f"{address}/{prefix}", strict=False)
                    row["ipsubnet6"] = str(net6.network_address)
                except ValueError:
                    pass
        else:
            continue
        rows.append(row)
    if not rows:
        rows.append(dict(base))
    return rows


def mac_of(addrs: list[Any]) -> str | None:
    for addr in addrs:
        if addr.family == psutil.AF_LINK and addr.address:
            mac = addr.address.replace("-", ":").lower()
            if len(mac) == 17:
                return mac
    return None


def temperatures() -> list[dict[str, Any]]:
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return []
    try:
        sensors = reader()
    except Exception:  # a broken hwmon driver must not fail the inventory
        return []
    rows = []
    for chip, entries in sensors.items():
        for entry in entries:
            if entry.current is None or entry.current <= -273:
                continue
            rows.append(
                {
                    "sensor": chip,
                    "label": entry.label or None,
                    "celsius": round(entry.current, 1),
                    "high": entry.high or None,
                    "critical": entry.critical or None,
                }
            )
    return rows
