"""Windows collectors: CIM/WMI classes and the Uninstall registry keys through PowerShell.

One PowerShell run (``SCRIPT``) prints a JSON object whose keys are CIM class names (and
``Uninstall`` for the registry, ``Firewall`` for ``Get-NetFirewallProfile``,
``AntiVirus`` for ``root/SecurityCenter2``). :func:`content_from` turns that object into
GLPI sections; it is pure, so it is tested on recorded outputs on any platform. Processes,
drives and network addresses come from psutil, as on the other platforms.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import psutil

from .common import (
    MB,
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
)

CLASSES = [
    "Win32_ComputerSystem",
    "Win32_ComputerSystemProduct",
    "Win32_BIOS",
    "Win32_BaseBoard",
    "Win32_SystemEnclosure",
    "Win32_OperatingSystem",
    "Win32_TimeZone",
    "Win32_Processor",
    "Win32_PhysicalMemory",
    "Win32_DiskDrive",
    "Win32_NetworkAdapter",
    "Win32_NetworkAdapterConfiguration",
    "Win32_Battery",
    "Win32_VideoController",
    "Win32_DesktopMonitor",
    "Win32_PnPEntity",
]

SCRIPT = (
    "$ErrorActionPreference='SilentlyContinue';$o=@{};"
    + "".join(f"$o['{c}']=@(Get-CimInstance {c});" for c in CLASSES if c != "Win32_PnPEntity")
    + "$o['Win32_PnPEntity']=@(Get-CimInstance Win32_PnPEntity -Filter \"PNPDeviceID LIKE 'USB\\\\VID%'\");"
    + "$o['UserAccount']=@(Get-CimInstance Win32_UserAccount -Filter 'LocalAccount=True');"
    + "$o['Group']=@(Get-CimInstance Win32_Group -Filter 'LocalAccount=True' | ForEach-Object {"
    + "$m=@(Get-CimAssociatedInstance -InputObject $_ -ResultClassName Win32_UserAccount | ForEach-Object Name);"
    + "[pscustomobject]@{Name=$_.Name;SID=$_.SID;Members=$m}});"
    + "$o['AntiVirus']=@(Get-CimInstance -Namespace root/SecurityCenter2 AntiVirusProduct);"
    + "$o['Firewall']=@(Get-NetFirewallProfile | Select-Object Name,Enabled);"
    + "$o['Uninstall']=@(Get-ItemProperty 'HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*',"
    + "'HKLM:\\Software\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\*' |"
    + " Where-Object DisplayName | Select-Object DisplayName,DisplayVersion,Publisher,InstallDate,"
    + "EstimatedSize,InstallLocation,UninstallString,URLInfoAbout,HelpLink,NoRemove,PSChildName);"
    + "$o | ConvertTo-Json -Depth 4 -Compress"
)


def _list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key) or []
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]


def _first(data: dict[str, Any], key: str) -> dict[str, Any]:
    items = _list(data, key)
    return items[0] if items else {}


def cim_datetime(value: Any) -> dt.datetime | None:
    """CIM dates as ConvertTo-Json writes them: ``/Date(ms)/`` (PS 5.1), ISO (PS 7), DMTF."""
    if isinstance(value, dict):
        value = value.get("value") or value.get("DateTime")
    if not isinstance(value, str):
        return None
    match = re.search(r"/Date\((-?\d+)", value)
    if match:
        stamp = int(match.group(1)) / 1000
        return dt.datetime.fromtimestamp(stamp) if stamp > 86400 * 365 else None
    match = re.match(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})", value)  # DMTF
    if match:
        year, month, day, hour, minute, second = map(int, match.groups())
        return dt.datetime(year, month, day, hour, minute, second)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00")[:26])
    except ValueError:
        return None
    return parsed if parsed.year > 1970 else None


def _dt(value: Any) -> str | None:
    parsed = cim_datetime(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else None


def _date(value: Any) -> str | None:
    parsed = cim_datetime(value)
    return parsed.strftime("%Y-%m-%d") if parsed else None


CPU_ARCH = {0: "i686", 5: "arm", 9: "x86_64", 12: "aarch64"}
MEMORY_TYPES = {20: "DDR", 21: "DDR2", 24: "DDR3", 26: "DDR4", 34: "DDR5", 0: None}
FORM_FACTORS = {8: "DIMM", 12: "SODIMM"}
CHASSIS = {
    3: "Desktop",
    8: "Portable",
    9: "Laptop",
    10: "Notebook",
    13: "All in One",
    31: "Convertible",
}


def content_from(data: dict[str, Any]) -> dict[str, Any]:
    cs = _first(data, "Win32_ComputerSystem")
    product = _first(data, "Win32_ComputerSystemProduct")
    bios_ = _first(data, "Win32_BIOS")
    board = _first(data, "Win32_BaseBoard")
    enclosure = _first(data, "Win32_SystemEnclosure")
    os_ = _first(data, "Win32_OperatingSystem")
    tz = _first(data, "Win32_TimeZone")
    chassis = (enclosure.get("ChassisTypes") or [None])[0]
    model = (cs.get("Model") or "").lower()
    vm = None
    if cs:
        vm = "Physical"
        for key, name in (("virtualbox", "VirtualBox"), ("vmware", "VMware"), ("kvm", "KVM"),
                          ("qemu", "QEMU"), ("virtual machine", "Hyper-V")):  # fmt: skip
            if key in model:
                vm = name
    bias = tz.get("Bias")
    offset = None
    if isinstance(bias, int):
        sign = "+" if bias >= 0 else "-"
        offset = f"{sign}{abs(bias) // 60:02d}{abs(bias) % 60:02d}"
    content: dict[str, Any] = {
        "hardware": {
            "name": cs.get("Name"),
            "uuid": text(product.get("UUID")),
            "memory": positive_int(cs.get("TotalPhysicalMemory"))
            and int(cs["TotalPhysicalMemory"]) // MB,
            "workgroup": cs.get("Domain") if cs.get("PartOfDomain") else cs.get("Workgroup"),
            "vmsystem": vm,
            "chassis_type": CHASSIS.get(chassis) if isinstance(chassis, int) else None,
            "lastloggeduser": (cs.get("UserName") or "").split("\\")[-1] or None,
            "winowner": os_.get("RegisteredUser"),
            "wincompany": os_.get("Organization"),
            "winprodid": os_.get("SerialNumber"),
            "winlang": str(os_["OSLanguage"]) if os_.get("OSLanguage") else None,
        },
        "bios": {
            "bmanufacturer": text(bios_.get("Manufacturer")),
            "bversion": text(bios_.get("SMBIOSBIOSVersion")),
            "bdate": _date(bios_.get("ReleaseDate")),
            "ssn": text(bios_.get("SerialNumber")),
            "smanufacturer": text(cs.get("Manufacturer")),
            "smodel": text(cs.get("Model")),
            "skunumber": text(cs.get("SystemSKUNumber")),
            "mmanufacturer": text(board.get("Manufacturer")),
            "mmodel": text(board.get("Product")),
            "msn": text(board.get("SerialNumber")),
            "assettag": text(enclosure.get("SMBIOSAssetTag")),
            "enclosureserial": text(enclosure.get("SerialNumber")),
        },
        "operatingsystem": {
            "name": "Windows",
            "full_name": os_.get("Caption"),
            "version": os_.get("Version"),
            "kernel_name": "MSWin32",
            "kernel_version": os_.get("Version"),
            "service_pack": os_.get("CSDVersion"),
            "arch": os_.get("OSArchitecture"),
            "install_date": _dt(os_.get("InstallDate")),
            "boot_time": _dt(os_.get("LastBootUpTime")),
            "fqdn": ".".join(p for p in (cs.get("DNSHostName"), cs.get("Domain")) if p)
            if cs.get("PartOfDomain")
            else cs.get("DNSHostName"),
            "dns_domain": cs.get("Domain") if cs.get("PartOfDomain") else None,
            "timezone": {"name": tz.get("StandardName"), "offset": offset}
            if tz.get("StandardName") and offset
            else None,
        },
        "cpus": [
            {
                "name": text(cpu.get("Name")),
                "manufacturer": {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(
                    str(cpu.get("Manufacturer")), cpu.get("Manufacturer")
                ),
                "core": positive_int(cpu.get("NumberOfCores")),
                "thread": positive_int(cpu.get("NumberOfLogicalProcessors")),
                "speed": positive_int(cpu.get("MaxClockSpeed")),
                "external_clock": positive_int(cpu.get("ExtClock")),
                "description": cpu.get("Description"),
                "id": cpu.get("ProcessorId"),
                "serial": text(cpu.get("SerialNumber")),
                "arch": CPU_ARCH.get(cpu.get("Architecture")),  # type: ignore[arg-type]
            }
            for cpu in _list(data, "Win32_Processor")
        ],
        "memories": [
            {
                "capacity": positive_int(mem.get("Capacity")) and int(mem["Capacity"]) // MB,
                "caption": mem.get("DeviceLocator"),
                "description": FORM_FACTORS.get(mem.get("FormFactor")),  # type: ignore[arg-type]
                "manufacturer": text(mem.get("Manufacturer")),
                "serialnumber": text(mem.get("SerialNumber")),
                "model": text(mem.get("PartNumber")),
                "speed": f"{mem['Speed']} MT/s" if positive_int(mem.get("Speed")) else None,
                "type": MEMORY_TYPES.get(mem.get("SMBIOSMemoryType")),  # type: ignore[arg-type]
                "numslots": number + 1,
            }
            for number, mem in enumerate(_list(data, "Win32_PhysicalMemory"))
        ],
        "storages": [
            {
                "name": disk.get("DeviceID"),
                "model": text(disk.get("Model")),
                "serial": text(disk.get("SerialNumber")),
                "disksize": positive_int(disk.get("Size")) and int(disk["Size"]) // (1000 * 1000),
                "interface": disk.get("InterfaceType"),
                "firmware": text(disk.get("FirmwareRevision")),
                "description": disk.get("Caption"),
                "type": "disk",
            }
            for disk in _list(data, "Win32_DiskDrive")
        ],
        "batteries": [
            {
                "name": text(bat.get("Name")) or bat.get("DeviceID"),
                "capacity": positive_int(bat.get("DesignCapacity")),
                "real_capacity": positive_int(bat.get("FullChargeCapacity")),
                "voltage": positive_int(bat.get("DesignVoltage")),
                "chemistry": {1: "Other", 3: "Lead Acid", 5: "NiCd", 6: "NiMH", 7: "Li-ION"}.get(
                    bat.get("Chemistry")  # type: ignore[arg-type]
                ),
            }
            for bat in _list(data, "Win32_Battery")
        ],
        "videos": [
            {
                "name": video.get("Name"),
                "chipset": video.get("VideoProcessor"),
                "memory": positive_int(video.get("AdapterRAM")) and int(video["AdapterRAM"]) // MB,
                "resolution": f"{video['CurrentHorizontalResolution']}x{video['CurrentVerticalResolution']}"
                if video.get("CurrentHorizontalResolution")
                else None,
            }
            for video in _list(data, "Win32_VideoController")
        ],
        "monitors": [
            {
                "name": mon.get("Name"),
                "caption": mon.get("Name"),
                "manufacturer": text(mon.get("MonitorManufacturer")),
            }
            for mon in _list(data, "Win32_DesktopMonitor")
            if text(mon.get("Name"))
        ],
        "usbdevices": _usb(data),
        "local_users": [
            {"login": user.get("Name"), "id": user.get("SID"), "name": user.get("FullName")}
            for user in _list(data, "UserAccount")
            if user.get("SID")
        ],
        "local_groups": [
            {
                "name": group.get("Name"),
                "id": group.get("SID"),
                "members": group.get("Members") or [],
            }
            for group in _list(data, "Group")
            if group.get("SID") and group.get("Name")
        ],
        "softwares": [_software(entry) for entry in _list(data, "Uninstall")],
        "antivirus": [_antivirus(av) for av in _list(data, "AntiVirus")],
        "firewalls": [
            {
                "profile": f"{fw.get('Name')}Profile",
                "status": "on" if fw.get("Enabled") in (True, 1) else "off",
            }
            for fw in _list(data, "Firewall")
            if fw.get("Name")
        ],
        "networks": _networks_from_cim(data),
    }
    return content


def _usb(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for dev in _list(data, "Win32_PnPEntity"):
        match = re.match(
            r"USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:\\(.+))?",
            dev.get("PNPDeviceID") or "",
            re.I,
        )
        if not match:
            continue
        serial = match.group(3)
        rows.append(
            {
                "vendorid": match.group(1).lower(),
                "productid": match.group(2).lower(),
                "name": dev.get("Name"),
                "manufacturer": text(dev.get("Manufacturer")),
                "serial": serial if serial and "&" not in serial else None,
            }
        )
    return rows


def _software(entry: dict[str, Any]) -> dict[str, Any]:
    installed = entry.get("InstallDate")
    date = None
    if isinstance(installed, str) and re.fullmatch(r"(19|20)\d{6}", installed):
        date = f"{installed[:4]}-{installed[4:6]}-{installed[6:]}"
    size = positive_int(entry.get("EstimatedSize"))  # KB
    return {
        "name": entry.get("DisplayName"),
        "version": entry.get("DisplayVersion"),
        "publisher": entry.get("Publisher"),
        "install_date": date,
        "filesize": size * 1024 if size else None,
        "folder": entry.get("InstallLocation"),
        "uninstall_string": entry.get("UninstallString"),
        "url_info_about": entry.get("URLInfoAbout"),
        "helplink": entry.get("HelpLink"),
        "no_remove": bool(entry["NoRemove"]) if entry.get("NoRemove") is not None else None,
        "guid": entry.get("PSChildName"),
        "from": "registry",
    }


def _antivirus(av: dict[str, Any]) -> dict[str, Any]:
    state = av.get("productState")
    enabled = uptodate = None
    if isinstance(state, int):  # documented by practice: bits 12-13 on, bits 4-7 signatures
        enabled = (state >> 12) & 0x3 in (1, 3)
        uptodate = (state >> 4) & 0xF == 0
    return {
        "name": av.get("displayName"),
        "guid": av.get("instanceGuid"),
        "enabled": enabled,
        "uptodate": uptodate,
    }


def _networks_from_cim(data: dict[str, Any]) -> list[dict[str, Any]]:
    adapters = {a.get("Index"): a for a in _list(data, "Win32_NetworkAdapter")}
    rows = []
    for conf in _list(data, "Win32_NetworkAdapterConfiguration"):
        if not conf.get("IPEnabled"):
            continue
        adapter = adapters.get(conf.get("Index"), {})
        base = {
            "description": conf.get("Description") or adapter.get("Name"),
            "mac": (conf.get("MACAddress") or "").lower() or None,
            "status": "up" if adapter.get("NetConnectionStatus", 2) == 2 else "down",
            "virtualdev": not adapter.get("PhysicalAdapter", True),
            "pnpdeviceid": adapter.get("PNPDeviceID"),
            "speed": str(int(adapter["Speed"]) // 1_000_000)
            if positive_int(adapter.get("Speed"))
            else None,
            "ipdhcp": conf.get("DHCPServer"),
            "type": "wifi"
            if "wi" in (adapter.get("AdapterType") or "").lower()
            and "wireless" in (conf.get("Description") or "").lower()
            else "ethernet",
        }
        gateways = conf.get("DefaultIPGateway") or []
        masks = conf.get("IPSubnet") or []
        for index, address in enumerate(conf.get("IPAddress") or []):
            row = dict(base)
            if ":" in address:
                row["ipaddress6"] = address
            else:
                row["ipaddress"] = address
                if index < len(masks) and "." in str(masks[index]):
                    row["ipmask"] = masks[index]
                v4_gateways = [g for g in gateways if "." in g]
                row["ipgateway"] = v4_gateways[0] if v4_gateways else None
            rows.append(row)
    return rows


def collect_content(extras: bool = True) -> dict[str, Any]:  # pragma: no cover - Windows only
    out = run(["powershell", "-NoProfile", "-NonInteractive", "-Command", SCRIPT], timeout=120)
    data = json.loads(out) if out else {}
    content = content_from(data)
    content["hardware"].update({k: v for k, v in memory_section().items() if k == "swap"})
    content["processes"] = processes()
    content["drives"] = drives("C:\\")
    if not content["networks"]:
        addrs, stats = psutil.net_if_addrs(), psutil.net_if_stats()
        for name, entries in addrs.items():
            stat = stats.get(name)
            base = {
                "description": name,
                "mac": mac_of(entries),
                "status": "up" if stat and stat.isup else "down",
            }
            content["networks"] += address_rows(name, entries, base, None)
    if extras:
        content["backdesk_health"] = {"temperatures": temperatures()}
    content["operatingsystem"].setdefault("boot_time", local_datetime(psutil.boot_time()))
    return content
