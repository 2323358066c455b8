"""Windows and macOS parsers on recorded (hand-made) outputs: see recorded/README.md."""

from __future__ import annotations

import json

from agent.inventory import document, macos, windows

from .conftest import RECORDED, assert_no_placeholders, assert_valid


def test_windows_cim_output(validator):
    data = json.loads((RECORDED / "windows-cim.json").read_text())
    doc = document(windows.content_from(data), "DESK-017-2024-12-04-10-00-00", 0.0)
    assert_valid(validator, doc)
    assert_no_placeholders(doc)
    c = doc["content"]
    assert c["hardware"]["name"] == "DESK-017" and c["hardware"]["memory"] == 16235
    assert (
        c["hardware"]["workgroup"] == "corp.example.com"
        and c["hardware"]["lastloggeduser"] == "jdoe"
    )
    assert c["hardware"]["chassis_type"] == "Notebook" and c["hardware"]["vmsystem"] == "Physical"
    assert c["bios"]["bdate"] == "2023-08-03" and c["bios"]["msn"] == "L1HF1AB012C"
    assert "assettag" not in c["bios"]  # "No Asset Information" is a placeholder
    os_ = c["operatingsystem"]
    assert os_["full_name"] == "Microsoft Windows 11 Pro" and os_["timezone"]["offset"] == "+0100"
    assert os_["fqdn"] == "desk-017.corp.example.com" and os_["install_date"].startswith(
        "2023-01-0"
    )
    (cpu,) = c["cpus"]
    assert (
        cpu["core"] == 4 and cpu["thread"] == 8 and cpu["arch"] == "x86_64" and "serial" not in cpu
    )
    assert [m["capacity"] for m in c["memories"]] == [8192, 8192]
    assert all("serialnumber" not in m for m in c["memories"])  # 00000000 is a placeholder
    assert c["storages"][0]["disksize"] == 512105
    assert c["batteries"] == [{"name": "5B10W13930", "voltage": 15440}]
    assert [n.get("ipaddress") or n.get("ipaddress6") for n in c["networks"]] == [
        "192.168.1.23",
        "fe80::1c2a:3b4c:5d6e:7f80",
        "172.20.16.1",
    ]
    assert c["networks"][0]["ipgateway"] == "192.168.1.1" and c["networks"][2]["virtualdev"]
    assert {u["vendorid"] for u in c["usbdevices"]} == {"046d", "04f2"}
    assert c["usbdevices"][1]["serial"] == "0001" and "serial" not in c["usbdevices"][0]
    assert c["local_groups"][0]["members"] == ["Administrator", "jdoe"]
    firefox, zip7 = c["softwares"]
    assert "install_date" not in firefox and zip7["install_date"] == "2024-01-15"
    assert zip7["no_remove"] is True and zip7["filesize"] == 5421 * 1024
    assert c["antivirus"] == [
        {
            "name": "Windows Defender",
            "guid": "{D68DDC3A-831F-4fae-9E44-DA132C1ACF46}",
            "enabled": True,
            "uptodate": True,
        }
    ]
    assert [f["status"] for f in c["firewalls"]] == ["on", "on", "off"]


def test_windows_dates_in_every_shape():
    assert windows._dt("/Date(1733295600000)/")
    assert windows._dt("20240115093000.000000+060") == "2024-01-15 09:30:00"
    assert windows._dt("2024-01-15T09:30:00.1234567+01:00") == "2024-01-15 09:30:00"
    assert windows._dt("/Date(0)/") is None and windows._dt(None) is None


def test_windows_empty_output_is_still_valid(validator):
    doc = document(windows.content_from({}), "x", 0.0)
    assert_valid(validator, doc)
    assert doc["content"]["operatingsystem"] == {"name": "Windows", "kernel_name": "MSWin32"}


def test_macos_system_profiler_output(validator):
    data = json.loads((RECORDED / "macos-system-profiler.json").read_text())
    content = macos.content_from(data)
    assert content.pop("_battery_health") == [{"cycles": 142, "condition": "Good"}]
    users, groups = macos.local_accounts(
        "root:*:0:0::0:0:System Administrator:/var/root:/bin/sh\n",
        "admin:*:80:root,jane\n",
    )
    content.update(local_users=users, local_groups=groups)
    doc = document(content, "Janes-MacBook-Air", 0.0)
    assert_valid(validator, doc)
    assert_no_placeholders(doc)
    c = doc["content"]
    assert c["hardware"] == {
        "name": "Janes-MacBook-Air",
        "uuid": "7A1E3F52-1C2B-5D9E-8F40-0A1B2C3D4E5F",
        "memory": 16384,
        "vmsystem": "Physical",
    }
    assert c["bios"]["ssn"] == "C02XK1ABCDEF" and c["bios"]["smodel"] == "Mac14,2"
    assert c["operatingsystem"]["version"] == "14.4.1"
    assert c["operatingsystem"]["kernel_version"] == "23.4.0"
    assert c["cpus"] == [{"name": "Apple M2", "manufacturer": "Apple", "core": 8}]
    assert c["memories"] == [
        {
            "capacity": 16384,
            "type": "LPDDR5",
            "manufacturer": "Hynix",
            "description": "Unified memory",
        }
    ]
    assert c["storages"][0]["disksize"] == 500277 and c["storages"][0]["interface"] == "NVMe"
    assert c["batteries"][0]["serial"] == "F8Y2262XXXXXXXXX"
    assert c["videos"] == [{"name": "Apple M2", "chipset": "Apple M2", "resolution": "2940x1912"}]
    assert [m["name"] for m in c["monitors"]] == ["Color LCD", "DELL U2419H"]
    assert c["usbdevices"] == [
        {
            "vendorid": "046d",
            "productid": "c52b",
            "name": "USB Receiver",
            "manufacturer": "Logitech",
        },
        {"vendorid": "1234", "productid": "0001", "name": "Hub child", "serial": "ABC123"},
    ]
    assert [s["name"] for s in c["softwares"]] == ["Safari", "Firefox", "Legacy Tool"]
    assert c["softwares"][1]["publisher"].startswith("Developer ID Application: Mozilla")
    assert c["firewalls"] == [{"description": "Application Firewall", "status": "on"}]
    assert c["local_users"][0]["login"] == "root" and c["local_groups"][0]["members"] == [
        "root",
        "jane",
    ]
