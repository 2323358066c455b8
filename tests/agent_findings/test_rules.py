"""Each rule on synthetic snapshots: what triggers it, what does not, the boundaries."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.findings import RULES, THRESHOLDS, Finding, count_line, evaluate, render
from agent.findings.rules import SEVERITIES, compile_rules

GiB = 2**30

# A healthy machine with every key the collectors can produce.
HEALTHY: dict[str, Any] = {
    "filesystems": [
        {
            "mountpoint": "/",
            "device": "/dev/sda1",
            "fstype": "ext4",
            "total": 100 * GiB,
            "free": 60 * GiB,
            "percent": 40.0,
            "read_only": False,
        },
        {
            "mountpoint": "/snap/core/1",
            "device": "/dev/loop0",
            "fstype": "squashfs",
            "total": GiB,
            "free": 0,
            "percent": 100.0,
            "read_only": True,
        },
    ],
    "root": {"read_only": False},
    "memory": {
        "total": 16 * GiB,
        "available": 8 * GiB,
        "percent": 50.0,
        "swap_total": 2 * GiB,
        "swap_used": 0,
        "swap_percent": 0.0,
        "swap_in_rate": 0,
        "swap_out_rate": 0,
        "swap_io_rate": 0,
    },
    "processes": [
        {
            "pid": 100,
            "name": "firefox",
            "user": "ann",
            "cpu_percent": 12.0,
            "rss": GiB,
            "memory_percent": 6.3,
        }
    ],
    "system": {"boot_time": 0.0, "uptime_days": 3.0, "pending_reboot": False},
    "batteries": [
        {
            "name": "BAT0",
            "percent": 80.0,
            "full": 45000000,
            "design": 50000000,
            "wear_percent": 10.0,
        }
    ],
    "temperatures": [
        {"sensor": "coretemp/Package id 0", "current": 55.0, "high": 80.0, "critical": 100.0},
        {"sensor": "acpitz/0", "current": 40.0, "high": None, "critical": None},
    ],
    "smart": [{"device": "/dev/sda", "model": "ACME SSD", "passed": True}],
    "services": {"failed": 0, "units": []},
    "network": {"default_route": True},
    "dns": {"name": "desk.example", "resolves": True, "addresses": ["192.0.2.1"]},
    "clock": {"offset_seconds": 2.0, "skew_seconds": 2.0},
}

ALL_IDS = [r["id"] for r in RULES]


def snap(**changes: Any) -> dict[str, Any]:
    """HEALTHY with some dotted paths changed, e.g. snap(**{"memory.percent": 95})."""
    data = copy.deepcopy(HEALTHY)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return data


def only(snapshot: dict[str, Any], rule_id: str) -> list[Finding]:
    findings, _ = evaluate(snapshot)
    return [f for f in findings if f.id == rule_id]


def test_healthy_machine_has_no_findings_and_every_rule_is_checked():
    findings, checked = evaluate(HEALTHY)
    assert findings == []
    assert checked == ALL_IDS


def test_rule_ids_unique_and_table_well_formed():
    assert len(ALL_IDS) == len(set(ALL_IDS))
    assert len(compile_rules()) == len(RULES)
    for rule in RULES:
        for level in rule["levels"]:
            value = level["when"]["value"]
            if isinstance(value, dict) and "threshold" in value:
                assert value["threshold"] in THRESHOLDS


def test_malformed_rule_is_refused():
    bad = dict(
        RULES[0], levels=[{"severity": "dire", "when": {"path": "x", "op": ">", "value": 1}}]
    )
    with pytest.raises(ValueError, match="severity"):
        compile_rules([bad])
    bad = dict(
        RULES[0], levels=[{"severity": "info", "when": {"path": "x", "op": "~", "value": 1}}]
    )
    with pytest.raises(ValueError, match="operator"):
        compile_rules([bad])


# --- filesystem.full -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "severity"),
    [(89.9, None), (90.0, "warning"), (96.9, "warning"), (97.0, "critical"), (100.0, "critical")],
)
def test_filesystem_full_boundaries(percent, severity):
    found = only(snap(**{"filesystems.0.percent": percent}), "filesystem.full")
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_filesystem_full_evidence_and_summary():
    data = snap()
    data["filesystems"][0].update(percent=98.0, free=int(1.2 * GiB))
    (finding,) = only(data, "filesystem.full")
    assert finding.severity == "critical"
    assert finding.evidence["mountpoint"] == "/"
    assert finding.evidence["free"] == int(1.2 * GiB)
    assert finding.evidence["percent"] == 98.0
    assert finding.evidence["threshold"] == THRESHOLDS["filesystem.critical_percent"]
    assert finding.summary == "Disk / is 98% full — 1.2 GiB free"
    assert render(finding).startswith("CRITICAL  Disk / is 98% full — 1.2 GiB free. Fix: ")


def test_filesystem_full_every_mount_point_and_read_only_images_ignored():
    data = snap()
    data["filesystems"].append(dict(data["filesystems"][0], mountpoint="/home", percent=91.0))
    found = only(data, "filesystem.full")
    assert [f.evidence["mountpoint"] for f in found] == ["/home"]  # not the 100% squashfs


# --- root read-only ----------------------------------------------------------------------


def test_root_read_only():
    (finding,) = only(snap(**{"root.read_only": True}), "filesystem.root_read_only")
    assert finding.severity == "critical"
    assert finding.evidence == {"read_only": True}
    assert "read-only" in finding.summary
    assert only(HEALTHY, "filesystem.root_read_only") == []


# --- memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "hit"), [(89.9, False), (90.0, True), (99.0, True)])
def test_memory_pressure_boundaries(percent, hit):
    found = only(snap(**{"memory.percent": percent, "memory.available": GiB}), "memory.pressure")
    assert bool(found) is hit
    if hit:
        assert found[0].severity == "warning"
        assert found[0].evidence["percent"] == percent
        assert found[0].summary == f"Memory is {percent:.0f}% used — only 1.0 GiB of 16.0 GiB free"


@pytest.mark.parametrize(
    ("rate", "severity"),
    [
        (4 * 2**20 - 1, None),
        (4 * 2**20, "warning"),
        (32 * 2**20 - 1, "warning"),
        (32 * 2**20, "critical"),
    ],
)
def test_swap_storm_boundaries(rate, severity):
    found = only(snap(**{"memory.swap_io_rate": rate}), "memory.swap_storm")
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_swap_storm_evidence():
    data = snap(**{"memory.swap_in_rate": 30 * 2**20, "memory.swap_out_rate": 10 * 2**20})
    data["memory"]["swap_io_rate"] = 40 * 2**20
    (finding,) = only(data, "memory.swap_storm")
    assert finding.severity == "critical"
    assert finding.evidence["swap_in_rate"] == 30 * 2**20
    assert finding.evidence["swap_out_rate"] == 10 * 2**20
    assert finding.summary == "The system is swapping heavily (40.0 MiB/s) — it will feel very slow"


# --- processes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpu", "hit"), [(80.0, False), (80.1, True), (350.0, True)])
def test_process_cpu_boundaries(cpu, hit):
    found = only(snap(**{"processes.0.cpu_percent": cpu}), "process.cpu")
    assert bool(found) is hit
    if hit:
        assert found[0].severity == "warning"
        assert found[0].evidence == {
            "name": "firefox",
            "pid": 100,
            "user": "ann",
            "cpu_percent": cpu,
            "threshold": 80,
        }
        assert found[0].summary == f"firefox (pid 100) is using {cpu:.0f}% CPU"


@pytest.mark.parametrize(("percent", "hit"), [(30.0, False), (30.1, True)])
def test_process_memory_boundaries(percent, hit):
    found = only(
        snap(**{"processes.0.memory_percent": percent, "processes.0.rss": 5 * GiB}),
        "process.memory",
    )
    assert bool(found) is hit
    if hit:
        assert found[0].evidence["rss"] == 5 * GiB
        assert found[0].summary == f"firefox (pid 100) is using 5.0 GiB — {percent:.0f}% of memory"


# --- uptime, reboot ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "hit"), [(30.0, False), (30.01, True), (120.0, True)])
def test_long_uptime_boundaries(days, hit):
    found = only(snap(**{"system.uptime_days": days}), "system.uptime")
    assert bool(found) is hit
    if hit:
        assert found[0].severity == "info"
        assert found[0].evidence == {"uptime_days": days, "threshold": 30}
        assert found[0].summary == f"Not restarted for {days:.0f} days"


def test_pending_reboot():
    data = snap(**{"system.pending_reboot": True})
    data["system"]["reboot_packages"] = ["linux-image-6.1"]
    (finding,) = only(data, "system.reboot_pending")
    assert finding.severity == "warning"
    assert finding.evidence == {"pending_reboot": True, "reboot_packages": ["linux-image-6.1"]}
    assert finding.summary == "Updates are waiting for a restart"
    assert only(HEALTHY, "system.reboot_pending") == []


# --- battery, temperature ---------------------------------------------------------------------


@pytest.mark.parametrize(("wear", "hit"), [(30.0, False), (30.1, True), (65.0, True)])
def test_battery_wear_boundaries(wear, hit):
    found = only(snap(**{"batteries.0.wear_percent": wear}), "battery.wear")
    assert bool(found) is hit
    if hit:
        assert found[0].severity == "warning"
        assert found[0].evidence["name"] == "BAT0"
        assert found[0].evidence["wear_percent"] == wear
        assert found[0].summary == f"Battery BAT0 has lost {wear:.0f}% of its design capacity"


@pytest.mark.parametrize(
    ("current", "severity"),
    [(79.9, None), (80.0, "warning"), (99.9, "warning"), (100.0, "critical")],
)
def test_temperature_uses_the_sensor_limits(current, severity):
    found = only(snap(**{"temperatures.0.current": current}), "temperature.high")
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity == "warning":
        assert found[0].evidence["threshold"] == 80.0
        assert found[0].evidence["sensor"] == "coretemp/Package id 0"
        assert found[0].summary == (
            f"Sensor coretemp/Package id 0 is at {current:.0f} °C (limit 80 °C)"
        )


@pytest.mark.parametrize(
    ("current", "severity"), [(84.9, None), (85.0, "warning"), (100.0, "critical")]
)
def test_temperature_without_sensor_limits_uses_the_table(current, severity):
    found = only(snap(**{"temperatures.1.current": current}), "temperature.high")
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity:
        assert found[0].evidence["sensor"] == "acpitz/0"
        assert "high" not in found[0].evidence  # None is not evidence
        limit = THRESHOLDS[f"temperature.{'high' if severity == 'warning' else 'critical'}_celsius"]
        assert found[0].evidence["threshold"] == limit


# --- SMART, services ----------------------------------------------------------------------------


def test_smart_failing():
    (finding,) = only(snap(**{"smart.0.passed": False}), "disk.smart_failing")
    assert finding.severity == "critical"
    assert finding.evidence == {"device": "/dev/sda", "model": "ACME SSD", "passed": False}
    assert finding.summary == "Disk /dev/sda reports it is failing (SMART health check failed)"
    assert only(HEALTHY, "disk.smart_failing") == []


def test_failed_services():
    units = [f"unit{i}.service" for i in range(7)]
    (finding,) = only(snap(**{"services": {"failed": 7, "units": units}}), "system.failed_services")
    assert finding.severity == "warning"
    assert finding.evidence == {"failed": 7, "units": units}
    assert finding.summary == (
        "7 system service(s) failed: unit0.service, unit1.service, unit2.service, "
        "unit3.service, unit4.service and 2 more"
    )
    assert only(snap(**{"services.failed": 0}), "system.failed_services") == []


# --- network, DNS, clock ----------------------------------------------------------------------------


def test_no_default_route():
    (finding,) = only(snap(**{"network.default_route": False}), "network.no_default_route")
    assert finding.severity == "warning"
    assert finding.evidence == {"default_route": False}
    assert finding.summary.startswith("No default route")
    assert only(HEALTHY, "network.no_default_route") == []


def test_dns_failing():
    dns = {"name": "desk.example", "resolves": False, "error": "Name or service not known"}
    (finding,) = only(snap(dns=dns), "network.dns_failing")
    assert finding.severity == "warning"
    assert finding.evidence == {"name": "desk.example", "error": "Name or service not known"}
    assert finding.summary == "Cannot resolve desk.example — name lookups (DNS) are failing"


@pytest.mark.parametrize(
    ("offset", "hit"), [(120.0, False), (-120.0, False), (120.5, True), (-300.0, True)]
)
def test_clock_skew_boundaries(offset, hit):
    clock = {"offset_seconds": offset, "skew_seconds": abs(offset)}
    found = only(snap(clock=clock), "clock.skew")
    assert bool(found) is hit
    if hit:
        assert found[0].severity == "warning"
        assert found[0].evidence == {
            "offset_seconds": offset,
            "skew_seconds": abs(offset),
            "threshold": 120,
        }
        assert (
            found[0].summary == f"The clock is {abs(offset):.0f} s off the help desk server's time"
        )


# --- missing and hostile data ----------------------------------------------------------------


def test_empty_snapshot_yields_nothing_and_checks_nothing():
    assert evaluate({}) == ([], [])


@pytest.mark.parametrize("key", sorted(HEALTHY))
def test_each_missing_section_is_simply_not_checked(key):
    data = snap(**{"memory.percent": 99.0, "system.pending_reboot": True})
    del data[key]
    findings, checked = evaluate(data)
    scoped = {r["id"] for r in RULES if r["scope"] == key}
    assert scoped and not (scoped & set(checked))
    assert not ({f.id for f in findings} & scoped)


@pytest.mark.parametrize(
    "garbage",
    [None, "full", 42, [], {}, [None, "x", 3], [{}], [{"percent": "98"}], [{"percent": None}]],
)
def test_mistyped_data_never_crashes_or_finds(garbage):
    data = {key: garbage for key in HEALTHY}
    findings, _ = evaluate(data)
    assert findings == []


def test_booleans_are_not_numbers():
    assert only(snap(**{"filesystems.0.percent": True}), "filesystem.full") == []
    assert only(snap(**{"services.failed": True}), "system.failed_services") == []
    assert only(snap(**{"root.read_only": 1}), "filesystem.root_read_only") == []


def test_thin_evidence_falls_back_to_the_title():
    data = {"filesystems": [{"percent": 99.0, "read_only": False}]}
    (finding,) = only(data, "filesystem.full")
    assert finding.summary == "Filesystem nearly full"
    assert finding.evidence == {"percent": 99.0, "threshold": 97}


def test_thresholds_can_be_overridden():
    findings, _ = evaluate(
        snap(**{"memory.percent": 60.0}), thresholds={**THRESHOLDS, "memory.warning_percent": 50}
    )
    assert [f.id for f in findings] == ["memory.pressure"]


def test_sorted_by_severity_and_capped():
    data = snap(**{"system.uptime_days": 90.0, "root.read_only": True, "memory.percent": 95.0})
    data["filesystems"] = [
        dict(HEALTHY["filesystems"][0], mountpoint=f"/m{i}", percent=91.0) for i in range(150)
    ]
    findings, _ = evaluate(data)
    assert len(findings) == 100
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    assert ranks == sorted(ranks)
    assert findings[0].id == "filesystem.root_read_only"


def test_count_line():
    data = snap(**{"root.read_only": True, "memory.percent": 95.0, "system.uptime_days": 40.0})
    findings, _ = evaluate(data)
    assert count_line(findings) == "Findings: 3 (1 critical, 1 warning, 1 info)"
    data["memory"]["swap_io_rate"] = 5 * 2**20
    assert count_line(evaluate(data)[0]) == "Findings: 4 (1 critical, 2 warnings, 1 info)"
    assert count_line([]) == "Findings: 0"
