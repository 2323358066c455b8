"""The snapshot collectors: recorded and faked system sources, and this machine for real."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from agent.findings import SEVERITIES, Finding, evaluate
from agent.findings import snapshot as snap


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- batteries -------------------------------------------------------------------------------


def test_battery_wear_from_energy(tmp_path):
    _write(tmp_path / "BAT0/type", "Battery\n")
    _write(tmp_path / "BAT0/capacity", "76\n")
    _write(tmp_path / "BAT0/energy_full", "33000000\n")
    _write(tmp_path / "BAT0/energy_full_design", "50000000\n")
    _write(tmp_path / "AC/type", "Mains\n")
    assert snap.batteries(tmp_path) == [
        {"name": "BAT0", "percent": 76.0, "full": 33e6, "design": 50e6, "wear_percent": 34.0}
    ]


def test_battery_wear_from_charge_and_never_negative(tmp_path):
    _write(tmp_path / "BAT1/type", "Battery\n")
    _write(tmp_path / "BAT1/charge_full", "5200000\n")
    _write(tmp_path / "BAT1/charge_full_design", "5000000\n")  # new batteries exceed design
    (battery,) = snap.batteries(tmp_path)
    assert battery["wear_percent"] == 0.0


def test_battery_without_capacity_data_has_no_wear(tmp_path):
    _write(tmp_path / "BAT0/type", "Battery\n")
    _write(tmp_path / "BAT0/energy_full_design", "0\n")
    (battery,) = snap.batteries(tmp_path)
    assert "wear_percent" not in battery


def test_no_batteries_is_omitted(tmp_path):
    _write(tmp_path / "AC/type", "Mains\n")
    assert snap.batteries(tmp_path) is None
    assert snap.batteries(tmp_path / "absent") is None


# --- SMART, systemd -----------------------------------------------------------------------------


def test_parse_smart_recorded_outputs():
    ok = {"model_name": "Samsung SSD 870", "smart_status": {"passed": True}}
    bad = {"model_family": "WD Blue", "smart_status": {"passed": False}}
    assert snap.parse_smart("/dev/sda", json.dumps(ok)) == {
        "device": "/dev/sda",
        "passed": True,
        "model": "Samsung SSD 870",
    }
    assert snap.parse_smart("/dev/sdb", json.dumps(bad))["passed"] is False
    # permission denied: smartctl answers without smart_status
    denied = {"smartctl": {"exit_status": 2, "messages": [{"string": "Permission denied"}]}}
    assert snap.parse_smart("/dev/sda", json.dumps(denied)) is None
    assert snap.parse_smart("/dev/sda", "not json") is None
    assert snap.parse_smart("/dev/sda", "[]") is None


def test_parse_failed_units_recorded_output():
    out = json.dumps(
        [
            {"unit": "cups.service", "load": "loaded", "active": "failed", "sub": "failed"},
            {"unit": "backup.timer", "load": "loaded", "active": "failed", "sub": "failed"},
        ]
    )
    assert snap.parse_failed_units(out) == {
        "failed": 2,
        "units": ["cups.service", "backup.timer"],
    }
    assert snap.parse_failed_units("[]") == {"failed": 0, "units": []}
    assert snap.parse_failed_units("{}") is None
    assert snap.parse_failed_units("garbage") is None


# --- routes, reboot, DNS, clock --------------------------------------------------------------------

ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)


def test_default_route_ipv4(tmp_path):
    _write(
        tmp_path / "route",
        ROUTE_HEADER + "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
    )
    assert snap.has_default_route(tmp_path / "route", tmp_path / "none") is True


def test_no_default_route(tmp_path):
    _write(
        tmp_path / "route",
        ROUTE_HEADER + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    )
    # the kernel's "unreachable" ::/0 on lo is not a default route
    _write(
        tmp_path / "ipv6_route",
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n",
    )
    assert snap.has_default_route(tmp_path / "route", tmp_path / "ipv6_route") is False


def test_default_route_ipv6_only(tmp_path):
    _write(tmp_path / "route", ROUTE_HEADER)
    _write(
        tmp_path / "ipv6_route",
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fe800000000000000000000000000001 00000400 00000001 00000000 00450003 wlan0\n",
    )
    assert snap.has_default_route(tmp_path / "route", tmp_path / "ipv6_route") is True


def test_default_route_unknown_without_proc(tmp_path):
    assert snap.has_default_route(tmp_path / "a", tmp_path / "b") is None


def test_pending_reboot_file(tmp_path):
    _write(tmp_path / "reboot-required", "*** System restart required ***\n")
    _write(tmp_path / "reboot-required.pkgs", "linux-base\nlibc6\nlibc6\n")
    data = snap.system([tmp_path / "reboot-required"])
    if "pending_reboot" not in data:
        pytest.skip("pending reboot is read on Linux only")
    assert data["pending_reboot"] is True
    assert data["reboot_packages"] == ["libc6", "linux-base"]
    assert snap.system([tmp_path / "absent"])["pending_reboot"] is False


def test_resolve_localhost_stays_on_the_machine():
    result = snap.resolve("localhost")
    assert result["resolves"] is True
    assert result["name"] == "localhost"
    assert result["addresses"]


def test_resolve_failure_is_reported_not_raised(monkeypatch):
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)  # no query leaves the machine
    result = snap.resolve("desk.example")
    assert result == {
        "name": "desk.example",
        "resolves": False,
        "error": "[Errno -2] Name or service not known",
    }


def test_resolve_gives_up_on_a_resolver_that_hangs(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *_a, **_k: release.wait(5) and [])
    try:
        result = snap.resolve("desk.example", timeout=0.2)
    finally:
        release.set()
    assert result["resolves"] is False
    assert result["error"] == "no answer within 0.2 s"


def test_clock_offset():
    assert snap.clock(None) is None
    assert snap.clock(-150.26) == {"offset_seconds": -150.3, "skew_seconds": 150.3}


def test_swap_rates():
    memory = snap.memory((1000, 2000), (1000 + 4 * 2**20, 2000), 0.5)
    assert memory["swap_in_rate"] == 8 * 2**20
    assert memory["swap_out_rate"] == 0
    assert memory["swap_io_rate"] == 8 * 2**20
    assert "swap_io_rate" not in snap.memory((5, 5), (4, 5), 0.5)  # counter went back
    assert "swap_io_rate" not in snap.memory(None, (4, 5), 0.5)


# --- this machine, for real ----------------------------------------------------------------------

NUMBER = (int, float)
LIST_ITEM_TYPES: dict[str, dict[str, Any]] = {
    "filesystems": {
        "mountpoint": str,
        "total": int,
        "free": int,
        "percent": NUMBER,
        "read_only": bool,
    },
    "processes": {
        "pid": int,
        "name": str,
        "cpu_percent": NUMBER,
        "rss": int,
        "memory_percent": NUMBER,
    },
    "batteries": {"name": str},
    "temperatures": {"sensor": str, "current": NUMBER},
    "smart": {"device": str, "passed": bool},
}


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    return snap.collect(dns_name="localhost", clock_offset=0.0)


def test_real_snapshot_is_plain_json_with_the_expected_types(real):
    assert json.loads(json.dumps(real)) == real
    for key, fields in LIST_ITEM_TYPES.items():
        for item in real.get(key, []):
            for name, kind in fields.items():
                assert isinstance(item[name], kind), (key, name, item)
    if "memory" in real:
        assert 0 <= real["memory"]["percent"] <= 100
        if "swap_io_rate" in real["memory"]:
            assert real["memory"]["swap_io_rate"] >= 0
    if "system" in real:
        assert real["system"]["uptime_days"] >= 0
    assert real["dns"]["resolves"] is True
    assert real["clock"] == {"offset_seconds": 0.0, "skew_seconds": 0.0}


def test_real_snapshot_findings_validate(real):
    findings, checked = evaluate(real)
    assert "filesystem.full" in checked or "filesystems" not in real
    assert "network.dns_failing" in checked and "clock.skew" in checked
    for finding in findings:
        assert isinstance(finding, Finding)
        item = finding.to_dict()
        assert set(item) == {"id", "severity", "summary", "evidence", "fix"}
        assert item["severity"] in SEVERITIES
        assert isinstance(item["summary"], str) and "\n" not in item["summary"]
        assert isinstance(item["fix"], str) and item["fix"]
        assert isinstance(item["evidence"], dict)
        json.dumps(item)


def test_collect_tolerates_every_collector_failing(monkeypatch):
    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("not in this container")

    for name in (
        "filesystems",
        "root_filesystem",
        "memory",
        "system",
        "batteries",
        "temperatures",
        "smart",
        "services",
        "network",
    ):
        monkeypatch.setattr(snap, name, boom)
    monkeypatch.setattr(snap, "_prime_processes", boom)
    monkeypatch.setattr(snap, "_swap_counters", boom)
    data = snap.collect(sample_seconds=0)
    assert data == {}
    assert evaluate(data) == ([], [])
