"""Linux collectors: /proc, /sys, /etc, psutil and a few standard tools.

Every file-based collector takes ``root`` (``/`` on a real machine, a fake tree in tests)
and returns what it found, omitting what the machine cannot give.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import platform
import re
import shutil
import socket
import struct
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from .common import (
    address_rows,
    drives,
    local_date,
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


def _read(path: Path, binary: bool = False) -> Any:
    try:
        return path.read_bytes() if binary else path.read_text(errors="replace").strip()
    except OSError:
        return None


def _dmi(root: Path, name: str) -> str | None:
    return text(_read(root / "sys/class/dmi/id" / name))


def _kv_file(path: Path, sep: str = "=") -> dict[str, str]:
    out = {}
    for line in (_read(path) or "").splitlines():
        if sep in line and not line.lstrip().startswith("#"):
            key, value = line.split(sep, 1)
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


# --- hardware / bios -------------------------------------------------------------------

CHASSIS = {
    1: "Other", 3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box", 6: "Mini Tower",
    7: "Tower", 8: "Portable", 9: "Laptop", 10: "Notebook", 11: "Hand Held",
    12: "Docking Station", 13: "All in One", 14: "Sub Notebook", 15: "Space-saving",
    16: "Lunch Box", 17: "Main Server Chassis", 23: "Rack Mount Chassis", 24: "Sealed-case PC",
    30: "Tablet", 31: "Convertible", 32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC",
    35: "Mini PC", 36: "Stick PC",
}  # fmt: skip

VIRT = {
    "none": "Physical", "kvm": "KVM", "qemu": "QEMU", "vmware": "VMware",
    "oracle": "VirtualBox", "microsoft": "Hyper-V", "xen": "Xen", "bochs": "Bochs",
    "parallels": "Parallels", "docker": "Docker", "lxc": "lxc", "lxc-libvirt": "lxc",
    "podman": "Podman", "openvz": "Virtuozzo", "systemd-nspawn": "systemd-nspawn", "wsl": "WSL",
}  # fmt: skip

DMI_VENDORS = {
    "qemu": "QEMU", "vmware": "VMware", "innotek gmbh": "VirtualBox", "xen": "Xen",
    "microsoft corporation": "Hyper-V", "parallels": "Parallels",
}  # fmt: skip


def vmsystem(root: Path) -> str | None:
    if root == Path("/"):
        out = run(["systemd-detect-virt"], timeout=5, ok_codes=(0, 1))
        if out and out.strip() in VIRT:
            return VIRT[out.strip()]
    if (root / ".dockerenv").exists():
        return "Docker"
    if (root / "run/.containerenv").exists():
        return "Podman"
    environ = _read(root / "proc/1/environ", binary=True) or b""
    if b"container=lxc" in environ:
        return "lxc"
    vendor = (_dmi(root, "sys_vendor") or "").lower()
    product = (_dmi(root, "product_name") or "").lower()
    for key, name in DMI_VENDORS.items():
        if vendor.startswith(key):
            if name == "Hyper-V" and "virtual" not in product:
                break
            return name
    if "kvm" in product:
        return "KVM"
    if vendor:  # DMI readable and no hypervisor named: real hardware
        return "Physical"
    return None


def hardware(root: Path, network: dict[str, Any]) -> dict[str, Any]:
    hostname = _read(root / "proc/sys/kernel/hostname") or socket.gethostname()
    section: dict[str, Any] = {"name": hostname.split(".")[0]}
    if root == Path("/"):
        section.update(memory_section())
    else:
        meminfo = _kv_file(root / "proc/meminfo", ":")
        section["memory"] = positive_int(meminfo.get("MemTotal", "0 kB").split()[0]) and (
            int(meminfo["MemTotal"].split()[0]) // 1024
        )
        section["swap"] = positive_int(meminfo.get("SwapTotal", "0 kB").split()[0]) and (
            int(meminfo["SwapTotal"].split()[0]) // 1024
        )
    uuid = _dmi(root, "product_uuid")
    if uuid:
        section["uuid"] = uuid
    chassis = positive_int(_dmi(root, "chassis_type"))
    if chassis in CHASSIS:
        section["chassis_type"] = CHASSIS[chassis]
    section["vmsystem"] = vmsystem(root)
    section["defaultgateway"] = network.get("gateway")
    if network.get("dns"):
        section["dns"] = "/".join(network["dns"])
    if root == Path("/"):
        users = sorted(psutil.users(), key=lambda u: u.started or 0)
        if users:
            section["lastloggeduser"] = users[-1].name
            section["datelastloggeduser"] = local_datetime(users[-1].started)
    return section


def _bios_date(value: str | None) -> str | None:
    match = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", value or "")
    if match:
        month, day, year = match.groups()
        if year > "1980" and "01" <= month <= "12" and "01" <= day <= "31":
            return f"{year}-{month}-{day}"
    return None


def bios(root: Path) -> dict[str, Any]:
    section = {
        "bmanufacturer": _dmi(root, "bios_vendor"),
        "bversion": _dmi(root, "bios_version"),
        "bdate": _bios_date(_dmi(root, "bios_date")),
        "smanufacturer": _dmi(root, "sys_vendor"),
        "smodel": _dmi(root, "product_name"),
        "ssn": _dmi(root, "product_serial"),
        "skunumber": _dmi(root, "product_sku"),
        "mmanufacturer": _dmi(root, "board_vendor"),
        "mmodel": _dmi(root, "board_name"),
        "msn": _dmi(root, "board_serial"),
        "assettag": _dmi(root, "chassis_asset_tag"),
        "enclosureserial": _dmi(root, "chassis_serial"),
    }
    efivar = glob.glob(
        str(root / "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    )
    if efivar:
        data = _read(Path(efivar[0]), binary=True)
        if data and len(data) >= 5:
            section["secure_boot"] = "enabled" if data[4] == 1 else "disabled"
    return section


# --- operating system ------------------------------------------------------------------


def boot_time(root: Path) -> float | None:
    for line in (_read(root / "proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None


def hostid(root: Path) -> str | None:
    data = _read(root / "etc/hostid", binary=True)
    if data and len(data) == 4:
        return f"{struct.unpack('<I', data)[0]:08x}"
    if root == Path("/"):
        out = run(["hostid"], timeout=3)
        if out and re.fullmatch(r"[0-9a-f]{8}", out.strip()):
            return out.strip()
    return None


def _canonical_name(hostname: str) -> str | None:
    try:
        infos = socket.getaddrinfo(hostname, None, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    except OSError:
        return None
    return next((info[3] for info in infos if info[3]), None)


def fqdn(hostname: str) -> str:
    """The canonical name when the resolver knows one, without hanging on a broken one."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(_canonical_name, hostname)
    try:
        canonical = future.result(timeout=2)
    except Exception:
        canonical = None
    pool.shutdown(wait=False)
    if canonical and "." in canonical and not canonical.startswith("localhost"):
        return canonical
    return hostname


def operatingsystem(root: Path, network: dict[str, Any]) -> dict[str, Any]:
    release = _kv_file(root / "etc/os-release") or _kv_file(root / "usr/lib/os-release")
    version = release.get("VERSION_ID")
    debian = _read(root / "etc/debian_version")
    if release.get("ID") == "debian" and debian and re.fullmatch(r"[\d.]+", debian):
        version = debian
    hostname = _read(root / "proc/sys/kernel/hostname") or socket.gethostname()
    section: dict[str, Any] = {
        "name": release.get("NAME"),
        "version": version or release.get("VERSION"),
        "full_name": release.get("PRETTY_NAME"),
        "kernel_name": "linux",
        "kernel_version": _read(root / "proc/sys/kernel/osrelease"),
        "arch": platform.machine() if root == Path("/") else None,
        "boot_time": local_datetime(boot_time(root)),
        "timezone": timezone(),
        "fqdn": fqdn(hostname) if root == Path("/") else hostname,
        "hostid": hostid(root),
        "dns_domain": network.get("domain"),
    }
    for key in ("ssh_host_rsa_key.pub", "ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub"):
        key_text = _read(root / "etc/ssh" / key)
        if key_text:
            section["ssh_key"] = " ".join(key_text.split()[:2])
            break
    return section


# --- cpus and memory modules -----------------------------------------------------------

CPU_ARCH = re.compile(
    r"^(mips|mips64|alpha|sparc|sparc64|m68k|i\d86|x86_64|powerpc|powerpc64|arm.*|aarch64)$"
)
VENDORS = {
    "GenuineIntel": "Intel",
    "AuthenticAMD": "AMD",
    "HygonGenuine": "Hygon",
    "CentaurHauls": "VIA",
}


def cpus(root: Path, arch: str | None = None) -> list[dict[str, Any]]:
    blocks = [b for b in (_read(root / "proc/cpuinfo") or "").split("\n\n") if b.strip()]
    logical = []
    for block in blocks:
        entry = {}
        for line in block.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                entry[key.strip()] = value.strip()
        if "processor" in entry:
            logical.append(entry)
    packages: dict[str, list[dict[str, str]]] = {}
    for entry in logical:
        packages.setdefault(entry.get("physical id", "0"), []).append(entry)
    max_khz = positive_int(_read(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
    arch = arch if arch is not None else (platform.machine() if root == Path("/") else None)
    rows = []
    for _package, entries in sorted(packages.items()):
        first = entries[0]
        name = first.get("model name") or first.get("cpu model") or first.get("Model")
        cores = positive_int(first.get("cpu cores"))
        speed = None
        if max_khz:
            speed = max_khz // 1000
        else:
            rated = re.search(r"@\s*([\d.]+)\s*GHz", name or "")
            speed = (
                round(float(rated.group(1)) * 1000) if rated else positive_int(first.get("cpu MHz"))
            )
        rows.append(
            {
                "name": name,
                "manufacturer": VENDORS.get(first.get("vendor_id", ""), first.get("vendor_id")),
                "core": cores
                or (len({e.get("core id") for e in entries}) if "core id" in first else None),
                "thread": positive_int(first.get("siblings")) or len(entries),
                "speed": speed,
                "familynumber": first.get("cpu family"),
                "model": first.get("model"),
                "stepping": positive_int(first.get("stepping")),
                "arch": arch if arch and CPU_ARCH.match(arch) else None,
            }
        )
    return rows


MEMORY_TYPES = {
    0x12: "DDR", 0x13: "DDR2", 0x14: "DDR2 FB-DIMM", 0x18: "DDR3", 0x1A: "DDR4",
    0x1B: "LPDDR", 0x1C: "LPDDR2", 0x1D: "LPDDR3", 0x1E: "LPDDR4", 0x22: "DDR5", 0x23: "LPDDR5",
    0x0F: "SDRAM", 0x11: "RDRAM", 0x07: "RAM",
}  # fmt: skip
FORM_FACTORS = {0x09: "DIMM", 0x0D: "SODIMM", 0x0F: "FB-DIMM", 0x0B: "Row of chips", 0x0C: "TSOP"}


def smbios_memory_device(raw: bytes) -> dict[str, Any] | None:
    """Parse one SMBIOS type 17 (Memory Device) structure; None for empty slots."""
    if len(raw) < 0x1B or raw[0] != 17:
        return None
    length = raw[1]
    strings = raw[length:].split(b"\x00")

    def string(offset: int) -> str | None:
        if offset >= length:
            return None
        index = raw[offset]
        return text(strings[index - 1]) if 0 < index <= len(strings) else None

    size = struct.unpack_from("<H", raw, 0x0C)[0]
    if size in (0, 0xFFFF):
        return None  # empty slot or unknown size
    if size == 0x7FFF and length >= 0x20:
        capacity = struct.unpack_from("<I", raw, 0x1C)[0]
    else:
        capacity = size & 0x7FFF if not size & 0x8000 else (size & 0x7FFF) // 1024
    speed = struct.unpack_from("<H", raw, 0x15)[0] if length >= 0x17 else 0
    return {
        "capacity": positive_int(capacity),
        "caption": string(0x10),
        "description": FORM_FACTORS.get(raw[0x0E]),
        "type": MEMORY_TYPES.get(raw[0x12]),
        "speed": f"{speed} MT/s" if speed and speed != 0xFFFF else None,
        "manufacturer": string(0x17) if length > 0x17 else None,
        "serialnumber": string(0x18) if length > 0x18 else None,
        "model": string(0x1A) if length > 0x1A else None,
    }


def memories(root: Path) -> list[dict[str, Any]]:
    """Memory modules from the raw SMBIOS tables (readable by root only)."""
    rows = []
    for number, entry in enumerate(sorted(glob.glob(str(root / "sys/firmware/dmi/entries/17-*")))):
        module = smbios_memory_device(_read(Path(entry) / "raw", binary=True) or b"")
        if module:
            module["numslots"] = number + 1
            rows.append(module)
    return rows


# --- PCI: controllers, names for videos and disks -----------------------------------------

PCI_IDS = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids", "usr/share/pci.ids")


class PciNames:
    """Vendor, device and class names from the system's pci.ids (hwdata), when installed."""

    def __init__(self, root: Path, vendors: set[str]) -> None:
        self.vendors: dict[str, str] = {}
        self.devices: dict[tuple[str, str], str] = {}
        self.classes: dict[str, str] = {}
        for relative in PCI_IDS:
            try:
                handle = (root / relative).open(encoding="utf-8", errors="replace")
            except OSError:
                continue
            with handle:
                self._parse(handle, vendors)
            break

    def _parse(self, lines: Any, vendors: set[str]) -> None:
        vendor = klass = None
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("C "):
                klass, _, name = line[2:].rstrip("\n").partition("  ")
                self.classes[klass] = name
                vendor = None
            elif line[0] != "\t":
                code, _, name = line.rstrip("\n").partition("  ")
                self.vendors[code] = name
                vendor, klass = (code, None) if code in vendors else (None, None)
            elif line[1] != "\t":
                code, _, name = line[1:].rstrip("\n").partition("  ")
                if vendor:
                    self.devices[(vendor, code)] = name
                elif klass:
                    self.classes[klass + code] = name


def _hex_id(value: str | None) -> str | None:
    value = (value or "").strip().lower().removeprefix("0x")
    return value if re.fullmatch(r"[0-9a-f]{4}", value) else None


def pci_devices(root: Path) -> list[dict[str, Any]]:
    rows = []
    for dev in sorted((root / "sys/bus/pci/devices").glob("*")):
        klass = (_read(dev / "class") or "").lower().removeprefix("0x")
        vendor, product = _hex_id(_read(dev / "vendor")), _hex_id(_read(dev / "device"))
        if not vendor or not product:
            continue
        sub_vendor, sub_device = (
            _hex_id(_read(dev / "subsystem_vendor")),
            _hex_id(_read(dev / "subsystem_device")),
        )
        revision = (_read(dev / "revision") or "").lower().removeprefix("0x")
        driver = (
            os.path.basename(os.path.realpath(dev / "driver"))
            if (dev / "driver").exists()
            else None
        )
        rows.append(
            {
                "slot": dev.name,
                "vendorid": vendor,
                "productid": product,
                "pciclass": klass[:4] if len(klass) >= 4 else None,
                "pcisubsystemid": f"{sub_vendor}:{sub_device}"
                if sub_vendor and sub_device and (sub_vendor, sub_device) != ("0000", "0000")
                else None,
                "rev": revision or None,
                "driver": driver,
            }
        )
    return rows


def controllers(root: Path, devices: list[dict[str, Any]], names: PciNames) -> list[dict[str, Any]]:
    rows = []
    for dev in devices:
        name = names.devices.get((dev["vendorid"], dev["productid"]))
        klass = dev.get("pciclass") or ""
        rows.append(
            {
                "name": name
                or names.classes.get(klass)
                or f"PCI {dev['vendorid']}:{dev['productid']}",
                "caption": name,
                "manufacturer": names.vendors.get(dev["vendorid"]),
                "type": names.classes.get(klass) or names.classes.get(klass[:2]),
                "vendorid": dev["vendorid"],
                "productid": dev["productid"],
                "pciclass": klass or None,
                "pcislot": dev["slot"].split(":", 1)[1]
                if dev["slot"].count(":") == 2
                else dev["slot"],
                "pcisubsystemid": dev.get("pcisubsystemid"),
                "rev": dev.get("rev"),
                "driver": dev.get("driver"),
            }
        )
    return rows


# --- storage ---------------------------------------------------------------------------

SKIP_DISKS = re.compile(r"^(loop|ram|zram|dm-|md|nbd|fd)\d*")


def storages_from_lsblk(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for dev in data.get("blockdevices", []):
        name = dev.get("name") or ""
        size = positive_int(dev.get("size"))
        if SKIP_DISKS.match(name) or dev.get("type") not in ("disk", "rom") or not size:
            continue
        vendor = text(dev.get("vendor"))
        tran = text(dev.get("tran"))
        rows.append(
            {
                "name": name,
                "model": text(dev.get("model")),
                "serial": text(dev.get("serial")),
                "disksize": size // (1000 * 1000),
                "interface": {"nvme": "NVMe", "sata": "SATA", "usb": "USB", "sas": "SAS"}.get(
                    tran or "", tran.upper() if tran else None
                ),
                "manufacturer": vendor if vendor and not vendor.startswith("0x") else None,
                "firmware": text(dev.get("rev")),
                "wwn": text(dev.get("wwn")),
                "type": "cdrom" if dev.get("type") == "rom" else "disk",
            }
        )
    return rows


def storages_from_sys(root: Path) -> list[dict[str, Any]]:
    rows = []
    for block in sorted((root / "sys/block").glob("*")):
        name = block.name
        sectors = positive_int(_read(block / "size"))
        if SKIP_DISKS.match(name) or not sectors:
            continue
        dev = block / "device"
        rows.append(
            {
                "name": name,
                "model": text(_read(dev / "model")),
                "serial": text(_read(dev / "serial")),
                "manufacturer": text(_read(dev / "vendor")),
                "firmware": text(_read(dev / "rev") or _read(dev / "firmware_rev")),
                "disksize": sectors * 512 // (1000 * 1000),
                "type": "disk",
            }
        )
    return rows


def storages(root: Path, names: PciNames | None = None) -> list[dict[str, Any]]:
    rows = None
    if root == Path("/"):
        out = run(
            ["lsblk", "-J", "-b", "-d", "-o", "NAME,MODEL,SERIAL,SIZE,TRAN,TYPE,VENDOR,REV,WWN"]
        )
        if out:
            try:
                rows = storages_from_lsblk(json.loads(out))
            except ValueError:
                rows = None
    if rows is None:
        rows = storages_from_sys(root)
    for row in rows:
        block = root / "sys/block" / row["name"]
        if not row.get("serial"):  # virtio disks: /sys/block/vdX/serial, not in lsblk
            row["serial"] = text(_read(block / "serial") or _read(block / "device/serial"))
        if not row.get("manufacturer") and names is not None:
            vendor = _hex_id(
                _read(block / "device/vendor") or _read(block / "device/device/vendor")
            )
            row["manufacturer"] = names.vendors.get(vendor or "")
    return rows


def _by_links(root: Path, kind: str) -> dict[str, str]:
    out = {}
    for link in (root / "dev/disk" / kind).glob("*"):
        try:
            out[os.path.realpath(link)] = link.name.replace("\\x20", " ")
        except OSError:
            continue
    return out


def linux_drives(root: Path) -> list[dict[str, Any]]:
    uuids, labels = _by_links(root, "by-uuid"), _by_links(root, "by-label")

    def extra(device: str) -> dict[str, str]:
        real = os.path.realpath(device) if device.startswith("/") else device
        return {k: v for k, v in (("serial", uuids.get(real)), ("label", labels.get(real))) if v}

    return drives("/", extra)


# --- network ---------------------------------------------------------------------------


def network_facts(root: Path) -> dict[str, Any]:
    """Default gateway (/proc/net/route), nameservers and search domain (resolv.conf)."""
    facts: dict[str, Any] = {"gateways": {}}
    for line in (_read(root / "proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            raw = int(fields[2], 16)
            if raw:
                gateway = socket.inet_ntoa(struct.pack("<I", raw))
                facts["gateways"].setdefault(fields[0], gateway)
                facts.setdefault("gateway", gateway)
    dns, domain = [], None
    for line in (_read(root / "etc/resolv.conf") or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            dns.append(fields[1])
        elif len(fields) >= 2 and fields[0] in ("domain", "search") and not domain:
            domain = fields[1]
    facts["dns"] = dns
    facts["domain"] = domain
    return facts


IF_STATUS = {"up", "down", "dormant", "notpresent", "lowerlayerdown", "unknown", "testing"}


def interface_base(root: Path, name: str, stats: Any) -> dict[str, Any]:
    sysdir = root / "sys/class/net" / name
    operstate = _read(sysdir / "operstate")
    if operstate == "unknown" and stats is not None:
        operstate = "up" if stats.isup else "down"
    kind = None
    if name == "lo" or _read(sysdir / "type") == "772":
        kind = "loopback"
    elif (sysdir / "wireless").exists() or (sysdir / "phy80211").exists():
        kind = "wifi"
    elif (sysdir / "bridge").exists():
        kind = "bridge"
    elif (sysdir / "bonding").exists():
        kind = "aggregate"
    elif _read(sysdir / "type") == "1":
        kind = "ethernet"
    driver = None
    if (sysdir / "device/driver").exists():
        driver = os.path.basename(os.path.realpath(sysdir / "device/driver"))
    pcislot = None
    if (sysdir / "device").exists():
        slot = os.path.basename(os.path.realpath(sysdir / "device"))
        pcislot = slot if re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d", slot) else None
    speed = positive_int(stats.speed if stats is not None else _read(sysdir / "speed"))
    slaves = sorted(p.name for p in (sysdir / "brif").glob("*")) if kind == "bridge" else []
    return {
        "description": name,
        "status": operstate if operstate in IF_STATUS else None,
        "type": kind,
        "virtualdev": not (sysdir / "device").exists(),
        "driver": driver,
        "pcislot": pcislot,
        "speed": str(speed) if speed else None,
        "mtu": positive_int(stats.mtu if stats is not None else _read(sysdir / "mtu")),
        "slaves": ",".join(slaves) or None,
    }


def networks(root: Path, facts: dict[str, Any]) -> list[dict[str, Any]]:
    addrs = psutil.net_if_addrs()
    stats = psutil.net_if_stats()
    rows = []
    for name, entries in sorted(addrs.items()):
        base = interface_base(root, name, stats.get(name))
        mac = mac_of(entries)
        if mac:
            base["mac"] = mac
        rows += address_rows(name, entries, base, facts["gateways"].get(name))
    return rows


# --- software, users ---------------------------------------------------------------------

DPKG_FORMAT = (
    "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${Installed-Size}\t"
    "${Maintainer}\t${Section}\t${binary:Summary}\n"
)
RPM_FORMAT = (
    "%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SIZE}\t%{VENDOR}\t%{GROUP}\t"
    "%{SUMMARY}\t%{INSTALLTIME}\n"
)


def parse_dpkg(output: str, info_dir: Path | None = None) -> list[dict[str, Any]]:
    rows = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) < 8 or not fields[0].startswith("ii"):
            continue
        _status, name, version, arch, size, maintainer, section, summary = fields[:8]
        row: dict[str, Any] = {
            "name": name,
            "version": version,
            "arch": arch,
            "filesize": positive_int(size) and int(size) * 1024,
            "publisher": maintainer,
            "system_category": section,
            "comments": summary,
            "from": "deb",
        }
        if info_dir is not None:
            for candidate in (f"{name}:{arch}.list", f"{name}.list"):
                try:
                    row["install_date"] = local_date((info_dir / candidate).stat().st_mtime)
                    break
                except OSError:
                    continue
        rows.append(row)
    return rows


def parse_rpm(output: str) -> list[dict[str, Any]]:
    rows = []
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) < 8:
            continue
        name, version, arch, size, vendor, group, summary, installed = fields[:8]
        version = version.removeprefix("(none):")
        rows.append(
            {
                "name": name,
                "version": version,
                "arch": None if arch == "(none)" else arch,
                "filesize": positive_int(size),
                "publisher": None if vendor == "(none)" else vendor,
                "system_category": None if group in ("(none)", "Unspecified") else group,
                "comments": summary,
                "install_date": local_date(positive_int(installed)),
                "from": "rpm",
            }
        )
    return rows


def softwares(root: Path) -> list[dict[str, Any]]:
    if root != Path("/"):
        return []
    out = run(["dpkg-query", "-W", "-f", DPKG_FORMAT], timeout=60)
    if out:
        return parse_dpkg(out, Path("/var/lib/dpkg/info"))
    out = run(["rpm", "-qa", "--queryformat", RPM_FORMAT], timeout=60)
    if out:
        return parse_rpm(out)
    return []


def local_users(root: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (_read(root / "etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")):
            continue
        login, _pw, uid, _gid, gecos, home, shell = fields[:7]
        rows.append(
            {"login": login, "id": uid, "name": gecos.split(",")[0], "home": home, "shell": shell}
        )
    return rows


def local_groups(root: Path) -> list[dict[str, Any]]:
    rows = []
    for line in (_read(root / "etc/group") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith(("#", "+", "-")):
            continue
        members = [m for m in fields[3].split(",") if m]
        rows.append({"name": fields[0], "id": fields[2], "members": members})
    return rows


# --- peripherals --------------------------------------------------------------------------


def batteries(root: Path) -> list[dict[str, Any]]:
    rows = []
    for supply in sorted((root / "sys/class/power_supply").glob("*")):
        if _read(supply / "type") != "Battery":
            continue
        voltage_uv = positive_int(_read(supply / "voltage_min_design"))
        design = positive_int(_read(supply / "energy_full_design"))
        full = positive_int(_read(supply / "energy_full"))
        if design is None and voltage_uv:  # charge in µAh: convert with the design voltage
            charge_design = positive_int(_read(supply / "charge_full_design"))
            charge_full = positive_int(_read(supply / "charge_full"))
            design = charge_design and charge_design * voltage_uv // 1_000_000
            full = charge_full and charge_full * voltage_uv // 1_000_000
        year = positive_int(_read(supply / "manufacture_year"))
        month = positive_int(_read(supply / "manufacture_month"))
        day = positive_int(_read(supply / "manufacture_day"))
        rows.append(
            {
                "name": text(_read(supply / "model_name")) or supply.name,
                "manufacturer": text(_read(supply / "manufacturer")),
                "serial": text(_read(supply / "serial_number")),
                "chemistry": text(_read(supply / "technology")),
                "capacity": design and design // 1000,  # mWh
                "real_capacity": full and full // 1000,
                "voltage": voltage_uv and voltage_uv // 1000,  # mV
                "date": f"{year:04d}-{month:02d}-{day:02d}" if year and month and day else None,
            }
        )
    return rows


def parse_edid(edid: bytes) -> dict[str, Any] | None:
    if len(edid) < 128 or edid[:8] != b"\x00\xff\xff\xff\xff\xff\xff\x00":
        return None
    word = struct.unpack(">H", edid[8:10])[0]
    vendor = "".join(chr(((word >> shift) & 0x1F) + 64) for shift in (10, 5, 0))
    name = serial = None
    for offset in (54, 72, 90, 108):
        block = edid[offset : offset + 18]
        if block[:3] == b"\x00\x00\x00":
            value = block[5:].split(b"\n")[0].decode("ascii", "replace").strip()
            if block[3] == 0xFC:
                name = value
            elif block[3] == 0xFF:
                serial = value
    week, year = edid[16], edid[17] + 1990
    numeric_serial = struct.unpack("<I", edid[12:16])[0]
    return {
        "manufacturer": vendor if vendor.isalpha() else None,
        "caption": text(name),
        "name": text(name),
        "serial": text(serial) or (str(numeric_serial) if numeric_serial else None),
        "altserial": str(numeric_serial) if numeric_serial and serial else None,
        "description": f"{week:02d}/{year}" if 0 < week <= 53 else str(year),
        "base64": base64.b64encode(edid[:128]).decode(),
    }


def monitors(root: Path) -> list[dict[str, Any]]:
    rows = []
    for connector in sorted((root / "sys/class/drm").glob("card*-*")):
        if _read(connector / "status") != "connected":
            continue
        monitor = parse_edid(_read(connector / "edid", binary=True) or b"")
        if monitor:
            monitor["port"] = connector.name.split("-", 1)[1]
            rows.append(monitor)
    return rows


def videos(root: Path, names: PciNames | None = None) -> list[dict[str, Any]]:
    rows = []
    for card in sorted((root / "sys/class/drm").glob("card[0-9]*")):
        if "-" in card.name or not (card / "device").exists():
            continue
        device = card / "device"
        uevent = _kv_file(device / "uevent")
        slot = uevent.get("PCI_SLOT_NAME")
        vendor, product = _read(device / "vendor"), _read(device / "device")
        name = None
        vendor, product = _hex_id(vendor), _hex_id(product)
        if names is not None and vendor and product:
            device_name = names.devices.get((vendor, product))
            if device_name:
                name = f"{names.vendors.get(vendor, vendor)} {device_name}"
        if not name and vendor and product:
            name = f"PCI {vendor}:{product}"
        resolution = None
        for connector in sorted((root / "sys/class/drm").glob(f"{card.name}-*")):
            if _read(connector / "status") == "connected":
                modes = (_read(connector / "modes") or "").splitlines()
                resolution = modes[0] if modes else None
                break
        rows.append(
            {
                "name": name,
                "chipset": uevent.get("DRIVER"),
                "pcislot": slot,
                "resolution": resolution,
            }
        )
    return [r for r in rows if r.get("name")]


def usbdevices(root: Path) -> list[dict[str, Any]]:
    rows = []
    for dev in sorted((root / "sys/bus/usb/devices").glob("*")):
        if ":" in dev.name:
            continue  # an interface, not a device
        vendor = _read(dev / "idVendor")
        if not vendor or vendor == "1d6b":  # Linux Foundation root hubs
            continue
        dev_class = _read(dev / "bDeviceClass")
        subclass = _read(dev / "bDeviceSubClass")
        rows.append(
            {
                "vendorid": vendor,
                "productid": _read(dev / "idProduct"),
                "name": text(_read(dev / "product")),
                "manufacturer": text(_read(dev / "manufacturer")),
                "serial": text(_read(dev / "serial")),
                "class": str(int(dev_class, 16))
                if dev_class and re.fullmatch(r"[0-9a-f]+", dev_class)
                else None,
                "subclass": str(int(subclass, 16))
                if subclass and re.fullmatch(r"[0-9a-f]+", subclass)
                else None,
            }
        )
    return rows


# --- security -----------------------------------------------------------------------------


def firewalls(root: Path) -> list[dict[str, Any]]:
    rows = []
    ufw = _kv_file(root / "etc/ufw/ufw.conf")
    if "ENABLED" in ufw:
        rows.append({"description": "ufw", "status": "on" if ufw["ENABLED"] == "yes" else "off"})
    if root == Path("/") and shutil.which("firewall-cmd"):
        out = run(["firewall-cmd", "--state"], timeout=5, ok_codes=(0, 252))
        if out is not None:
            rows.append(
                {"description": "firewalld", "status": "on" if out.strip() == "running" else "off"}
            )
    if not rows:
        # No front end: look at netfilter itself. No table loaded and no nftables ruleset
        # means nothing filters (what FusionInventory reports as "off"); tables we cannot
        # read are left unsaid rather than guessed.
        tables = _read(root / "proc/net/ip_tables_names")
        ruleset = None
        if root == Path("/") and shutil.which("nft"):
            ruleset = run(["nft", "list", "ruleset"], timeout=5)
        if ruleset and "chain" in ruleset:
            rows.append({"description": "nftables", "status": "on"})
        elif tables is not None and not tables.strip() and not ruleset:
            rows.append({"description": "netfilter", "status": "off"})
    return rows


def antivirus(root: Path, running: set[str]) -> list[dict[str, Any]]:
    if root != Path("/") or not shutil.which("clamscan"):
        return []
    out = run(["clamscan", "--version"], timeout=10) or ""
    match = re.match(r"ClamAV ([\w.]+)(?:/(\d+)/)?", out)
    return [
        {
            "name": "ClamAV",
            "company": "Cisco Talos",
            "version": match.group(1) if match else None,
            "base_version": match.group(2) if match and match.group(2) else None,
            "enabled": "clamd" in running,
        }
    ]


# --- help-desk extras (content["backdesk_health"]) ----------------------------------------


def _cache_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/backdesk-agent")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backdesk-agent"


def _apt_pending_updates(root: Path) -> int | None:
    """``apt-get -s upgrade`` takes seconds; its answer only changes when the package
    database or the package lists do, so it is kept, keyed on their modification times."""
    stamps = []
    for path in ("var/lib/dpkg/status", "var/lib/apt/lists"):
        try:
            stamps.append((root / path).stat().st_mtime_ns)
        except OSError:
            stamps.append(0)
    key = f"{root}:{stamps[0]}:{stamps[1]}"
    cache = _cache_dir() / "pending-updates.json"
    try:
        saved = json.loads(cache.read_text())
        if saved.get("key") == key and isinstance(saved.get("count"), int):
            return int(saved["count"])
    except (OSError, ValueError, AttributeError):
        pass
    out = run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"], timeout=30)
    if out is None:
        return None
    count = sum(1 for line in out.splitlines() if line.startswith("Inst "))
    try:
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "count": count}))
        tmp.replace(cache)
    except OSError:
        pass  # no cache, just slower next time
    return count


def health(root: Path, battery_rows: list[dict[str, Any]]) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if root != Path("/"):
        return section
    if shutil.which("smartctl"):
        smart = []
        for disk in storages(root):
            out = run(
                ["smartctl", "-H", "-j", f"/dev/{disk['name']}"], timeout=10, ok_codes=range(256)
            )
            try:
                status = json.loads(out or "").get("smart_status", {})
            except ValueError:
                continue
            if "passed" in status:
                smart.append({"device": disk["name"], "passed": bool(status["passed"])})
        section["smart"] = smart
    if shutil.which("apt-get"):
        count = _apt_pending_updates(root)
        if count is not None:
            section["pending_updates"] = count
    elif shutil.which("dnf"):
        out = run(["dnf", "-C", "-q", "check-update"], timeout=30, ok_codes=(0, 100))
        if out is not None:
            section["pending_updates"] = sum(
                1 for line in out.splitlines() if line and not line.startswith(" ")
            )
    section["reboot_required"] = (root / "run/reboot-required").exists() or None
    if (root / "run/systemd/system").exists():
        out = run(["systemctl", "--failed", "--output=json", "--no-pager"], timeout=10)
        try:
            units = json.loads(out) if out else None
        except ValueError:
            units = None
        if isinstance(units, list):
            section["failed_services"] = [u.get("unit") for u in units if u.get("unit")]
        out = run(
            ["journalctl", "-p", "3", "-b", "-n", "20", "-o", "short-iso", "--no-pager", "-q"],
            timeout=10,
        )
        if out:
            section["recent_errors"] = [line[:300] for line in out.splitlines()[-20:]]
    section["temperatures"] = temperatures()
    wear = []
    for battery in battery_rows:
        if battery.get("capacity") and battery.get("real_capacity"):
            wear.append(
                {
                    "name": battery.get("name"),
                    "wear_percent": round(
                        100 - 100 * battery["real_capacity"] / battery["capacity"], 1
                    ),
                }
            )
    section["battery_wear"] = wear
    return section


SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)


def envs(environ: dict[str, str]) -> list[dict[str, str]]:
    """The agent's environment, as the GLPI agent reports it, minus anything secret-looking."""
    return [
        {"key": key, "val": value}
        for key, value in sorted(environ.items())
        if value and not SECRET_NAMES.search(key)
    ]


# --- the whole content ---------------------------------------------------------------------


def collect_content(root: Path | str = "/", extras: bool = True) -> dict[str, Any]:
    root = Path(root)
    live = root == Path("/")
    net = network_facts(root)
    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs: dict[str, Future[Any]] = {
            "softwares": pool.submit(softwares, root),
            "operatingsystem": pool.submit(operatingsystem, root, net),
            "hardware": pool.submit(hardware, root, net),
        }
        pci = pci_devices(root)
        names = PciNames(root, {d["vendorid"] for d in pci})
        content: dict[str, Any] = {
            "bios": bios(root),
            "cpus": cpus(root),
            "memories": memories(root),
            "networks": networks(root, net) if live else [],
            "drives": linux_drives(root) if live else [],
            "batteries": batteries(root),
            "monitors": monitors(root),
            "usbdevices": usbdevices(root),
            "local_users": local_users(root),
            "local_groups": local_groups(root),
            "firewalls": firewalls(root),
            "controllers": controllers(root, pci, names),
            "storages": storages(root, names),
            "videos": videos(root, names),
            "envs": envs(dict(os.environ)) if live else [],
            "accesslog": {"logdate": local_datetime(time.time())},
        }
        content["processes"] = processes() if live else []
        running = {p["cmd"].split()[0].rsplit("/", 1)[-1] for p in content["processes"] if p["cmd"]}
        content["antivirus"] = antivirus(root, running)
        health_job = pool.submit(health, root, content["batteries"]) if extras else None
        for key, job in jobs.items():
            content[key] = job.result()
        if health_job is not None:
            content["backdesk_health"] = health_job.result()
    return content
