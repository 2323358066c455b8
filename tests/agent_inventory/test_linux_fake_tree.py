"""Collectors fed fake /proc, /sys and /etc trees: valid output, missing values omitted."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent.inventory import document
from agent.inventory import linux as L
from agent.inventory.common import clean

from .conftest import assert_no_placeholders, assert_valid, write_tree

CPUINFO = "\n\n".join(
    f"""processor\t: {n}
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz
stepping\t: 10
cpu MHz\t\t: 799.987
physical id\t: 0
siblings\t: 8
core id\t\t: {n % 4}
cpu cores\t: 4"""
    for n in range(8)
)


def edid() -> bytes:
    data = bytearray(128)
    data[0:8] = b"\x00\xff\xff\xff\xff\xff\xff\x00"
    code = "DEL"
    word = ((ord(code[0]) - 64) << 10) | ((ord(code[1]) - 64) << 5) | (ord(code[2]) - 64)
    data[8:10] = struct.pack(">H", word)
    data[12:16] = struct.pack("<I", 12345)
    data[16], data[17] = 20, 2019 - 1990
    data[54:72] = b"\x00\x00\x00\xfc\x00" + b"DELL U2419H\n".ljust(13, b" ")
    data[72:90] = b"\x00\x00\x00\xff\x00" + b"7MT0191234\n".ljust(13, b" ")
    return bytes(data)


def smbios_dimm() -> bytes:
    formatted = bytearray(0x28)
    formatted[0], formatted[1] = 17, 0x28
    struct.pack_into("<H", formatted, 0x0C, 8192)
    formatted[0x0E] = 0x0D  # SODIMM
    formatted[0x10] = 1  # locator: string 1
    formatted[0x12] = 0x1A  # DDR4
    struct.pack_into("<H", formatted, 0x15, 2667)
    formatted[0x17], formatted[0x18], formatted[0x1A] = 2, 3, 4
    return bytes(formatted) + b"ChannelA-DIMM0\x00Samsung\x0012345678\x00M471A1K43CB1-CTD\x00\x00"


def empty_slot() -> bytes:
    formatted = bytearray(0x28)
    formatted[0], formatted[1] = 17, 0x28
    return bytes(formatted) + b"\x00\x00"


FULL_TREE = {
    "proc/cpuinfo": CPUINFO,
    "proc/stat": "cpu  1 2 3\nbtime 1733300000\n",
    "proc/meminfo": "MemTotal:       16314908 kB\nSwapTotal:       2097148 kB\n",
    "proc/sys/kernel/hostname": "desk-042",
    "proc/sys/kernel/osrelease": "6.1.0-18-amd64",
    "proc/net/route": (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlp2s0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "wlp2s0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
    ),
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "etc/debian_version": "12.5\n",
    "etc/hostid": struct.pack("<I", 0x007F0101),
    "etc/resolv.conf": "# generated\nsearch corp.example\nnameserver 192.168.1.1\nnameserver 9.9.9.9\n",
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice Martin,,,:/home/alice:/bin/bash\n",
    "etc/group": "root:x:0:\nsudo:x:27:alice\nusers:x:100:alice,bob\n",
    "etc/ufw/ufw.conf": "# ufw\nENABLED=yes\nLOGLEVEL=low\n",
    "etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample root@desk-042\n",
    "sys/class/dmi/id/product_uuid": "4c4c4544-0034-3010-8048-b6c04f503732\n",
    "sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
    "sys/class/dmi/id/product_name": "Latitude 7490\n",
    "sys/class/dmi/id/product_serial": "9E11323\n",
    "sys/class/dmi/id/bios_vendor": "Dell Inc.\n",
    "sys/class/dmi/id/bios_version": "1.25.0\n",
    "sys/class/dmi/id/bios_date": "03/15/2023\n",
    "sys/class/dmi/id/board_vendor": "Dell Inc.\n",
    "sys/class/dmi/id/board_name": "0KP0FT\n",
    "sys/class/dmi/id/chassis_type": "10\n",
    "sys/class/dmi/id/chassis_asset_tag": "Not Specified\n",
    "sys/class/dmi/id/product_sku": "To Be Filled By O.E.M.\n",
    "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3400000\n",
    "sys/firmware/dmi/entries/17-0/raw": smbios_dimm(),
    "sys/firmware/dmi/entries/17-1/raw": empty_slot(),
    "sys/block/nvme0n1/size": "1000215216\n",
    "sys/block/nvme0n1/device/model": "SAMSUNG MZVLB512HAJQ-000L7\n",
    "sys/block/nvme0n1/device/serial": "S3TNNX0K123456\n",
    "sys/block/loop0/size": "1024\n",
    "sys/class/power_supply/AC/type": "Mains\n",
    "sys/class/power_supply/BAT0/type": "Battery\n",
    "sys/class/power_supply/BAT0/model_name": "DELL GJKNX8B\n",
    "sys/class/power_supply/BAT0/manufacturer": "SMP\n",
    "sys/class/power_supply/BAT0/serial_number": "1234\n",
    "sys/class/power_supply/BAT0/technology": "Li-poly\n",
    "sys/class/power_supply/BAT0/energy_full_design": "60000000\n",
    "sys/class/power_supply/BAT0/energy_full": "45000000\n",
    "sys/class/power_supply/BAT0/voltage_min_design": "7600000\n",
    "sys/class/drm/card0/device/uevent": "DRIVER=i915\nPCI_SLOT_NAME=0000:00:02.0\n",
    "sys/class/drm/card0/device/vendor": "0x8086\n",
    "sys/class/drm/card0/device/device": "0x5917\n",
    "sys/class/drm/card0-eDP-1/status": "connected\n",
    "sys/class/drm/card0-eDP-1/modes": "1920x1080\n1680x1050\n",
    "sys/class/drm/card0-eDP-1/edid": edid(),
    "sys/class/drm/card0-HDMI-A-1/status": "disconnected\n",
    "sys/class/drm/card0-HDMI-A-1/edid": b"",
    "sys/bus/pci/devices/0000:00:02.0/vendor": "0x8086\n",
    "sys/bus/pci/devices/0000:00:02.0/device": "0x5917\n",
    "sys/bus/pci/devices/0000:00:02.0/class": "0x030000\n",
    "sys/bus/pci/devices/0000:00:02.0/revision": "0x07\n",
    "sys/bus/pci/devices/0000:00:02.0/subsystem_vendor": "0x1028\n",
    "sys/bus/pci/devices/0000:00:02.0/subsystem_device": "0x081c\n",
    "sys/bus/pci/devices/0000:3a:00.0/vendor": "0x144d\n",
    "sys/bus/pci/devices/0000:3a:00.0/device": "0xa808\n",
    "sys/bus/pci/devices/0000:3a:00.0/class": "0x010802\n",
    "usr/share/misc/pci.ids": (
        "# pci.ids excerpt\n"
        "8086  Intel Corporation\n"
        "\t5917  UHD Graphics 620\n"
        "\t\t1028 081c  Latitude 7490\n"
        "144d  Samsung Electronics Co Ltd\n"
        "C 03  Display controller\n"
        "\t00  VGA compatible controller\n"
        "C 01  Mass storage controller\n"
        "\t08  Non-Volatile memory controller\n"
    ),
    "sys/bus/usb/devices/usb1/idVendor": "1d6b\n",
    "sys/bus/usb/devices/1-1/idVendor": "046d\n",
    "sys/bus/usb/devices/1-1/idProduct": "c52b\n",
    "sys/bus/usb/devices/1-1/product": "USB Receiver\n",
    "sys/bus/usb/devices/1-1/manufacturer": "Logitech\n",
    "sys/bus/usb/devices/1-1/bDeviceClass": "00\n",
    "sys/bus/usb/devices/1-1:1.0/bInterfaceClass": "03\n",
    "sys/bus/usb/devices/1-2/idVendor": "0bda\n",
    "sys/bus/usb/devices/1-2/idProduct": "58f4\n",
    "sys/bus/usb/devices/1-2/bDeviceClass": "ef\n",
}


@pytest.fixture
def full_tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path, FULL_TREE)


def test_full_fake_tree_gives_every_section(full_tree, validator):
    content = L.collect_content(full_tree)
    doc = document(content, "desk-042-2024-12-04-10-00-00", 0.0)
    assert_valid(validator, doc)
    assert_no_placeholders(doc)
    c = doc["content"]
    assert c["hardware"] == {
        "name": "desk-042",
        "memory": 15932,
        "swap": 2047,
        "uuid": "4c4c4544-0034-3010-8048-b6c04f503732",
        "chassis_type": "Notebook",
        "vmsystem": "Physical",
        "defaultgateway": "192.168.1.1",
        "dns": "192.168.1.1/9.9.9.9",
    }
    assert c["bios"] == {
        "bmanufacturer": "Dell Inc.",
        "bversion": "1.25.0",
        "bdate": "2023-03-15",
        "smanufacturer": "Dell Inc.",
        "smodel": "Latitude 7490",
        "ssn": "9E11323",
        "mmanufacturer": "Dell Inc.",
        "mmodel": "0KP0FT",
    }  # placeholders (asset tag "Not Specified", SKU "To Be Filled By O.E.M.") dropped
    os_ = c["operatingsystem"]
    assert os_["name"] == "Debian GNU/Linux" and os_["version"] == "12.5"
    assert os_["full_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert os_["kernel_version"] == "6.1.0-18-amd64" and os_["hostid"] == "007f0101"
    assert os_["dns_domain"] == "corp.example" and os_["ssh_key"].startswith("ssh-ed25519 ")
    assert set(os_["timezone"]) == {"name", "offset"} and os_["boot_time"].startswith("2024-12-0")
    assert c["cpus"] == [
        {
            "name": "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz",
            "manufacturer": "Intel",
            "core": 4,
            "thread": 8,
            "speed": 3400,
            "familynumber": "6",
            "model": "142",
            "stepping": 10,
        }
    ]
    assert c["memories"] == [
        {
            "capacity": 8192,
            "caption": "ChannelA-DIMM0",
            "description": "SODIMM",
            "type": "DDR4",
            "speed": "2667 MT/s",
            "manufacturer": "Samsung",
            "serialnumber": "12345678",
            "model": "M471A1K43CB1-CTD",
            "numslots": 1,
        }
    ]
    assert c["storages"] == [
        {
            "name": "nvme0n1",
            "model": "SAMSUNG MZVLB512HAJQ-000L7",
            "serial": "S3TNNX0K123456",
            "disksize": 512110,
            "type": "disk",
        }
    ]
    assert c["batteries"] == [
        {
            "name": "DELL GJKNX8B",
            "manufacturer": "SMP",
            "serial": "1234",
            "chemistry": "Li-poly",
            "capacity": 60000,
            "real_capacity": 45000,
            "voltage": 7600,
        }
    ]
    (monitor,) = c["monitors"]
    assert monitor["manufacturer"] == "DEL" and monitor["name"] == "DELL U2419H"
    assert monitor["serial"] == "7MT0191234" and monitor["port"] == "eDP-1"
    assert monitor["description"] == "20/2019" and monitor["base64"]
    assert c["videos"] == [
        {
            "name": "Intel Corporation UHD Graphics 620",
            "chipset": "i915",
            "pcislot": "0000:00:02.0",
            "resolution": "1920x1080",
        }
    ]
    assert c["controllers"] == [
        {
            "name": "UHD Graphics 620",
            "caption": "UHD Graphics 620",
            "manufacturer": "Intel Corporation",
            "type": "VGA compatible controller",
            "vendorid": "8086",
            "productid": "5917",
            "pciclass": "0300",
            "pcislot": "00:02.0",
            "pcisubsystemid": "1028:081c",
            "rev": "07",
        },
        {
            "name": "Non-Volatile memory controller",
            "manufacturer": "Samsung Electronics Co Ltd",
            "type": "Non-Volatile memory controller",
            "vendorid": "144d",
            "productid": "a808",
            "pciclass": "0108",
            "pcislot": "3a:00.0",
        },
    ]
    assert c["usbdevices"] == [
        {
            "vendorid": "046d",
            "productid": "c52b",
            "name": "USB Receiver",
            "manufacturer": "Logitech",
            "class": "0",
        },
        {"vendorid": "0bda", "productid": "58f4", "class": "239"},
    ]
    assert c["local_users"][1] == {
        "login": "alice",
        "id": "1000",
        "name": "Alice Martin",
        "home": "/home/alice",
        "shell": "/bin/bash",
    }
    assert c["local_groups"] == [
        {"name": "root", "id": "0"},
        {"name": "sudo", "id": "27", "members": ["alice"]},
        {"name": "users", "id": "100", "members": ["alice", "bob"]},
    ]
    assert c["firewalls"] == [{"description": "ufw", "status": "on"}]
    # live-only sections are not taken from the test machine when a root is given
    for key in ("networks", "drives", "processes", "softwares", "backdesk_health"):
        assert key not in c


def test_empty_tree_omits_everything_it_cannot_know(tmp_path, validator):
    doc = document(L.collect_content(tmp_path), "empty", 0.0)
    assert_valid(validator, doc)
    assert_no_placeholders(doc)
    c = doc["content"]
    assert "bios" not in c and "cpus" not in c and "memories" not in c
    assert set(c["hardware"]) <= {"name"}  # the hostname falls back to the live one
    assert c["operatingsystem"] == {
        "kernel_name": "linux",
        "timezone": c["operatingsystem"]["timezone"],
        "fqdn": c["operatingsystem"]["fqdn"],
    }


def test_container_tree_without_dmi(tmp_path, validator):
    write_tree(
        tmp_path,
        {
            ".dockerenv": "",
            "proc/cpuinfo": "processor\t: 0\nmodel name\t: AMD EPYC\nvendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2445.406\n",
            "proc/stat": "btime 0\n",  # a missing clock: never reported as 1970
            "sys/class/dmi/id/bios_date": "00/00/0000\n",
        },
    )
    c = document(L.collect_content(tmp_path), "c", 0.0)["content"]
    assert c["hardware"]["vmsystem"] == "Docker"
    assert "boot_time" not in c["operatingsystem"] and "bios" not in c
    assert c["cpus"] == [{"name": "AMD EPYC", "manufacturer": "AMD", "thread": 1, "speed": 2445}]


def test_parsers_of_tool_outputs(validator):
    lsblk = {
        "blockdevices": [
            {"name": "zram0", "size": 0, "type": "disk"},
            {"name": "loop3", "size": 4096, "type": "loop"},
            {"name": "vda", "size": 274877906944, "type": "disk", "vendor": "0x1af4", "model": None},
            {"name": "sda", "size": 500107862016, "type": "disk", "tran": "sata", "model": "CT500MX500SSD1",
             "serial": "1904E1E5C3A1", "vendor": "ATA     ", "rev": "M3CR023"},
            {"name": "sr0", "size": 1073741312, "type": "rom", "tran": "usb"},
        ]
    }  # fmt: skip
    assert L.storages_from_lsblk(lsblk) == [
        {"name": "vda", "model": None, "serial": None, "disksize": 274877, "interface": None,
         "manufacturer": None, "firmware": None, "wwn": None, "type": "disk"},
        {"name": "sda", "model": "CT500MX500SSD1", "serial": "1904E1E5C3A1", "disksize": 500107,
         "interface": "SATA", "manufacturer": "ATA", "firmware": "M3CR023", "wwn": None, "type": "disk"},
        {"name": "sr0", "model": None, "serial": None, "disksize": 1073, "interface": "USB",
         "manufacturer": None, "firmware": None, "wwn": None, "type": "cdrom"},
    ]  # fmt: skip
    dpkg = (
        "ii \tbash\t5.2.15-2+b7\tamd64\t7164\tMatthias Klose <doko@debian.org>\tshells\tGNU Bourne Again SHell\n"
        "rc \told\t1.0\tall\t1\tX <x@example.org>\tmisc\tremoved, config left\n"
        "ii \ttzdata\t2024a-0+deb12u1\tall\t\tGNU Libc Maintainers <x@example.org>\tlocaltime\ttime zone data\n"
    )
    deb = L.parse_dpkg(dpkg)
    assert [s["name"] for s in deb] == ["bash", "tzdata"]
    assert deb[0]["filesize"] == 7164 * 1024 and deb[0]["publisher"].startswith("Matthias")
    rpm = (
        "bash\t(none):5.2.26-3.fc40\tx86_64\t8192431\tFedora Project\tUnspecified\tThe GNU Bourne Again shell\t1713964800\n"
        "gpg-pubkey\t(none):a15b79cc-63d04c2c\t(none)\t0\t(none)\tPublic Keys\tgpg(Fedora)\t1713964801\n"
    )
    rpms = L.parse_rpm(rpm)
    assert rpms[0]["version"] == "5.2.26-3.fc40" and rpms[0]["install_date"].startswith("2024-04-2")
    assert "arch" not in clean(rpms[1]) and "filesize" not in clean(rpms[1])
    doc = document({"softwares": deb + rpms, "storages": L.storages_from_lsblk(lsblk)}, "x", 0.0)
    assert_valid(validator, doc)
    assert_no_placeholders(doc)


def test_edid_and_smbios_reject_garbage():
    assert L.parse_edid(b"") is None and L.parse_edid(b"\x00" * 128) is None
    assert L.smbios_memory_device(empty_slot()) is None
    assert L.smbios_memory_device(b"\x11") is None


def test_envs_leave_secret_looking_variables_out():
    rows = L.envs(
        {"PATH": "/usr/bin", "API_TOKEN": "x", "DB_PASSWORD": "y", "EMPTY": "", "LANG": "C"}
    )
    assert rows == [{"key": "LANG", "val": "C"}, {"key": "PATH", "val": "/usr/bin"}]


def test_fqdn_never_reports_localhost(monkeypatch):
    monkeypatch.setattr(L, "_canonical_name", lambda host: "localhost")
    assert L.fqdn("desk-042") == "desk-042"
    monkeypatch.setattr(L, "_canonical_name", lambda host: "desk-042.corp.example")
    assert L.fqdn("desk-042") == "desk-042.corp.example"
