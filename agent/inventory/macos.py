"""macOS collectors: ``system_profiler -json`` plus psutil and /etc files.

:func:`content_from` turns the JSON ``system_profiler -json`` prints for ``DATA_TYPES``
into GLPI sections; it is pure, so it is tested on recorded outputs on any platform.
"""

from __future__ import annotations

import json
import platform
import re
import socket
from typing import Any

import psutil

from .common import (
    address_rows,
    drives,
    local_datetime,
    mac_of,
    memory_section,
    positive_int,
    processes,
    run,
    temperatures,
    text,
    timezone,
)

DATA_TYPES = [
    "SPHardwareDataType",
    "SPSoftwareDataType",
    "SPMemoryDataType",
    "SPNVMeDataType",
    "SPSerialATADataType",
    "SPPowerDataType",
    "SPDisplaysDataType",
    "SPUSBDataType",
    "SPApplicationsDataType",
    "SPFirewallDataType",
]

UNITS = {"KB": 1e-3, "MB": 1, "GB": 1e3, "TB": 1e6}


def size_mb(value: Any) -> int | None:
    """'16 GB' -> 16384 for memory, decimal for disks via ``size_in_bytes`` when given."""
    match = re.match(r"([\d.,]+)\s*([KMGT]B)", str(value or ""))
    if not match:
        return None
    number = float(match.group(1).replace(",", "."))
    return positive_int(
        number * {"KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}[match.group(2)]
    )


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [i for i in data.get(key) or [] if isinstance(i, dict)]


def _walk_usb(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        vendor = re.match(r"0x([0-9a-f]{4})", str(item.get("vendor_id", "")))
        product = re.match(r"0x([0-9a-f]{4})", str(item.get("product_id", "")))
        if vendor and product:
            manufacturer = re.sub(r"\s*\(0x[0-9a-f]+\)\s*$", "", str(item.get("manufacturer", "")))
            rows.append(
                {
                    "vendorid": vendor.group(1),
                    "productid": product.group(1),
                    "name": item.get("_name"),
                    "manufacturer": text(manufacturer),
                    "serial": text(item.get("serial_num")),
                }
            )
        rows += _walk_usb(_items(item, "_items"))
    return rows


def _date(value: Any) -> str | None:
    match = re.match(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})", str(value or ""))
    return f"{match.group(1)} {match.group(2)}" if match else None


def content_from(data: dict[str, Any]) -> dict[str, Any]:
    hw = (_items(data, "SPHardwareDataType") or [{}])[0]
    sw = (_items(data, "SPSoftwareDataType") or [{}])[0]
    os_version = str(sw.get("os_version", ""))  # "macOS 14.4.1 (23E224)"
    version = re.search(r"(\d+(?:\.\d+)+)", os_version)
    kernel = re.search(r"Darwin ([\d.]+)", str(sw.get("kernel_version", "")))
    chip = hw.get("chip_type") or hw.get("cpu_type")
    cores = re.match(r"(\d+)", str(hw.get("number_processors", "")).replace("proc ", ""))
    memories = []
    for bank in _items(data, "SPMemoryDataType"):
        for dimm in _items(bank, "_items") or ([bank] if bank.get("dimm_size") else []):
            memories.append(
                {
                    "capacity": size_mb(dimm.get("dimm_size")),
                    "caption": dimm.get("_name"),
                    "type": text(dimm.get("dimm_type")),
                    "speed": text(dimm.get("dimm_speed")),
                    "manufacturer": text(dimm.get("dimm_manufacturer")),
                    "serialnumber": text(dimm.get("dimm_serial_number")),
                    "model": text(dimm.get("dimm_part_number")),
                }
            )
        if bank.get("SPMemoryDataType") and not memories:  # Apple silicon: one unified block
            memories.append(
                {
                    "capacity": size_mb(bank.get("SPMemoryDataType")),
                    "type": text(bank.get("dimm_type")),
                    "manufacturer": text(bank.get("dimm_manufacturer")),
                    "description": "Unified memory",
                }
            )
    storages = []
    for key, interface in (("SPNVMeDataType", "NVMe"), ("SPSerialATADataType", "SATA")):
        for controller in _items(data, key):
            for disk in _items(controller, "_items"):
                size = positive_int(disk.get("size_in_bytes"))
                storages.append(
                    {
                        "name": disk.get("bsd_name") or disk.get("_name"),
                        "model": text(disk.get("device_model") or disk.get("_name")),
                        "serial": text(disk.get("device_serial")),
                        "firmware": text(disk.get("device_revision")),
                        "disksize": size // (1000 * 1000) if size else None,
                        "interface": interface,
                        "type": "disk",
                    }
                )
    batteries: list[dict[str, Any]] = []
    for power in _items(data, "SPPowerDataType"):
        if power.get("_name") != "spbattery_information":
            continue
        model = power.get("sppower_battery_model_info") or {}
        health = power.get("sppower_battery_health_info") or {}
        batteries.append(
            {
                "name": text(model.get("sppower_battery_device_name")) or "Internal battery",
                "serial": text(model.get("sppower_battery_serial_number")),
                "manufacturer": text(model.get("sppower_battery_manufacturer")),
                "chemistry": "Li-ION",
            }
        )
        cycles = health.get("sppower_battery_cycle_count")
        condition = health.get("sppower_battery_health")
        batteries[-1]["_health"] = {"cycles": cycles, "condition": condition}
    videos, monitors = [], []
    for gpu in _items(data, "SPDisplaysDataType"):
        resolution = None
        for display in _items(gpu, "spdisplays_ndrvs"):
            res = re.match(
                r"(\d+)\s*x\s*(\d+)",
                str(
                    display.get("_spdisplays_pixels") or display.get("_spdisplays_resolution") or ""
                ),
            )
            resolution = resolution or (f"{res.group(1)}x{res.group(2)}" if res else None)
            monitors.append(
                {
                    "name": display.get("_name"),
                    "caption": display.get("_name"),
                    "serial": text(display.get("_spdisplays_display-serial-number")),
                    "type": display.get("spdisplays_connection_type"),
                }
            )
        videos.append(
            {
                "name": gpu.get("sppci_model") or gpu.get("_name"),
                "chipset": gpu.get("sppci_model"),
                "memory": size_mb(gpu.get("spdisplays_vram") or gpu.get("_spdisplays_vram")),
                "resolution": resolution,
            }
        )
    softwares = [
        {
            "name": app.get("_name"),
            "version": text(app.get("version")),
            "publisher": text((app.get("signed_by") or [None])[0]),
            "install_date": _date(app.get("lastModified")),
            "folder": app.get("path"),
            "arch": {"arch_arm_i64": "arm64", "arch_i64": "x86_64", "arch_other": None}.get(
                str(app.get("arch_kind"))
            ),
            "from": "system_profiler",
        }
        for app in _items(data, "SPApplicationsDataType")
    ]
    firewalls = []
    for fw in _items(data, "SPFirewallDataType"):
        state = str(fw.get("spfirewall_globalstate", ""))
        if state:
            firewalls.append(
                {
                    "description": "Application Firewall",
                    "status": "off" if state.endswith("off") else "on",
                }
            )
    return {
        "hardware": {
            "name": text(sw.get("local_host_name")),
            "uuid": text(hw.get("platform_UUID")),
            "memory": size_mb(hw.get("physical_memory")),
            "vmsystem": "Physical"
            if hw and not str(hw.get("machine_model", "")).startswith(("VMware", "Parallels"))
            else None,
        },
        "bios": {
            "bversion": text(hw.get("boot_rom_version")),
            "bmanufacturer": "Apple Inc." if hw else None,
            "smanufacturer": "Apple Inc." if hw else None,
            "smodel": text(hw.get("machine_model")),
            "ssn": text(hw.get("serial_number")),
            "mmodel": text(hw.get("model_number")),
        },
        "operatingsystem": {
            "name": "macOS",
            "full_name": text(os_version),
            "version": version.group(1) if version else None,
            "kernel_name": "darwin",
            "kernel_version": kernel.group(1) if kernel else None,
        },
        "cpus": [
            {
                "name": text(chip),
                "manufacturer": "Apple"
                if str(chip or "").startswith("Apple")
                else ("Intel" if "Intel" in str(chip) else None),
                "core": positive_int(cores.group(1))
                if cores
                else positive_int(hw.get("number_processors")),
                "speed": positive_int(
                    float(str(hw.get("current_processor_speed", "0")).split()[0].replace(",", "."))
                    * 1000
                )
                if "GHz" in str(hw.get("current_processor_speed", ""))
                else None,
            }
        ]
        if chip
        else [],
        "memories": memories,
        "storages": storages,
        "batteries": [{k: v for k, v in b.items() if k != "_health"} for b in batteries],
        "videos": videos,
        "monitors": monitors,
        "usbdevices": _walk_usb(_items(data, "SPUSBDataType")),
        "softwares": softwares,
        "firewalls": firewalls,
        "_battery_health": [b["_health"] for b in batteries],
    }


def local_accounts(passwd: str, group: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Accounts from /etc/passwd and /etc/group (BSD layout): on macOS these hold only the
    system accounts; people's accounts live in Directory Services (``dscl``), not read yet."""
    users = []
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 10 and not line.startswith("#"):
            users.append(
                {
                    "login": fields[0],
                    "id": fields[2],
                    "name": fields[7],
                    "home": fields[8],
                    "shell": fields[9],
                }
            )
    groups = []
    for line in group.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and not line.startswith("#"):
            groups.append(
                {
                    "name": fields[0],
                    "id": fields[2],
                    "members": [m for m in fields[3].split(",") if m],
                }
            )
    return users, groups


def collect_content(extras: bool = True) -> dict[str, Any]:  # pragma: no cover - macOS only
    out = run(["system_profiler", "-json", "-detailLevel", "mini", *DATA_TYPES], timeout=180)
    content = content_from(json.loads(out) if out else {})
    battery_health = content.pop("_battery_health", [])
    content["hardware"].update(memory_section())
    content["hardware"]["name"] = (
        content["hardware"].get("name") or socket.gethostname().split(".")[0]
    )
    content["operatingsystem"].update(
        {
            "arch": platform.machine(),
            "boot_time": local_datetime(psutil.boot_time()),
            "timezone": timezone(),
            "fqdn": socket.getfqdn(),
        }
    )
    content["processes"] = processes()
    content["drives"] = drives("/")
    addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
    content["networks"] = []
    for name, entries in sorted(addrs.items()):
        stat = stats.get(name)
        base = {
            "description": name,
            "mac": mac_of(entries),
            "status": "up" if stat and stat.isup else "down",
            "type": "loopback" if name.startswith("lo") else None,
        }
        content["networks"] += address_rows(name, entries, base, None)
    try:
        with open("/etc/passwd") as passwd, open("/etc/group") as group:
            content["local_users"], content["local_groups"] = local_accounts(
                passwd.read(), group.read()
            )
    except OSError:
        pass
    if extras:
        content["backdesk_health"] = {"temperatures": temperatures(), "battery": battery_health}
    return content
