"""The rules, as data: what counts as a problem, how bad it is, what to say and to do.

A rule is a plain record (see ``RULES``):

    id         stable name, e.g. "filesystem.full" (the coordinator filters on it)
    section    the diagnostics section its evidence comes from; a finding is left out of
               a Get-help request when the user leaves that section out
    title      what the rule checks, for lists of rules
    scope      dotted path into the snapshot: a dict (one subject) or a list (each item
               is a subject, e.g. each filesystem); no data there → the rule is not checked
    where      predicates a subject must meet to be considered at all (optional)
    levels     [{"severity", "when": predicate}], most severe first; the first that holds
               gives the finding's severity
    evidence   the subject's fields that go into the finding, with the level's threshold
    summary    one line for a person, ``str.format`` over the evidence; ``!b`` shows bytes,
               ``!l`` a short list
    fix        one line: what to do about it

A predicate is ``{"path": field, "op": one of OPS, "value": operand}``; an operand is a
literal, ``{"threshold": name}`` (from ``THRESHOLDS``, the one table of limits), or
``{"path": field, "default": operand}`` (another field of the subject, or the default when
the subject does not have it). Missing or mistyped data makes a predicate false: it never
raises and never yields a finding.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "warning", "info")
MAX_FINDINGS = 100  # what the coordinator accepts with a Get-help request

# Every limit the rules use, in one place.
THRESHOLDS: dict[str, float] = {
    "filesystem.warning_percent": 90,
    "filesystem.critical_percent": 97,
    "memory.warning_percent": 90,
    "swap.warning_bytes_per_second": 4 * 2**20,
    "swap.critical_bytes_per_second": 32 * 2**20,
    "process.cpu_percent": 80,
    "process.memory_percent": 30,
    "uptime.days": 30,
    "battery.wear_percent": 30,
    "temperature.high_celsius": 85,
    "temperature.critical_celsius": 100,
    "clock.skew_seconds": 120,
}

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


def _t(name: str) -> dict[str, str]:
    return {"threshold": name}


RULES: list[dict[str, Any]] = [
    {
        "id": "filesystem.full",
        "section": "disks",
        "title": "Filesystem nearly full",
        "scope": "filesystems",
        # read-only images (snaps, CD-ROMs) are always 100% full and never a problem
        "where": [{"path": "read_only", "op": "!=", "value": True}],
        "levels": [
            {
                "severity": "critical",
                "when": {"path": "percent", "op": ">=", "value": _t("filesystem.critical_percent")},
            },
            {
                "severity": "warning",
                "when": {"path": "percent", "op": ">=", "value": _t("filesystem.warning_percent")},
            },
        ],
        "evidence": ["mountpoint", "device", "percent", "free", "total"],
        "summary": "Disk {mountpoint} is {percent:.0f}% full — {free!b} free",
        "fix": "Empty the trash and remove or move large files; ask the help desk to clean up "
        "or enlarge the disk.",
    },
    {
        "id": "filesystem.root_read_only",
        "section": "disks",
        "title": "Root filesystem read-only",
        "scope": "root",
        "levels": [
            {"severity": "critical", "when": {"path": "read_only", "op": "==", "value": True}}
        ],
        "evidence": ["read_only"],
        "summary": "The system disk (/) is mounted read-only — nothing can be saved",
        "fix": "Save your work elsewhere and restart; if it persists the disk may be failing: "
        "call the help desk.",
    },
    {
        "id": "memory.pressure",
        "section": "memory",
        "title": "Memory pressure",
        "scope": "memory",
        "levels": [
            {
                "severity": "warning",
                "when": {"path": "percent", "op": ">=", "value": _t("memory.warning_percent")},
            }
        ],
        "evidence": ["percent", "available", "total"],
        "summary": "Memory is {percent:.0f}% used — only {available!b} of {total!b} free",
        "fix": "Close applications and browser tabs you do not need; if it keeps happening, "
        "this machine needs more memory.",
    },
    {
        "id": "memory.swap_storm",
        "section": "memory",
        "title": "Swap storm",
        "scope": "memory",
        "levels": [
            {
                "severity": "critical",
                "when": {
                    "path": "swap_io_rate",
                    "op": ">=",
                    "value": _t("swap.critical_bytes_per_second"),
                },
            },
            {
                "severity": "warning",
                "when": {
                    "path": "swap_io_rate",
                    "op": ">=",
                    "value": _t("swap.warning_bytes_per_second"),
                },
            },
        ],
        "evidence": ["swap_io_rate", "swap_in_rate", "swap_out_rate", "swap_used", "percent"],
        "summary": "The system is swapping heavily ({swap_io_rate!b}/s) — it will feel very slow",
        "fix": "Close the largest applications now; if it keeps happening, this machine needs "
        "more memory.",
    },
    {
        "id": "process.cpu",
        "section": "processes",
        "title": "Process hogging the processor",
        "scope": "processes",
        "levels": [
            {
                "severity": "warning",
                "when": {"path": "cpu_percent", "op": ">", "value": _t("process.cpu_percent")},
            }
        ],
        "evidence": ["name", "pid", "user", "cpu_percent"],
        "summary": "{name} (pid {pid}) is using {cpu_percent:.0f}% CPU",
        "fix": "If the program is not doing work you expect, save your work and close or "
        "restart it.",
    },
    {
        "id": "process.memory",
        "section": "processes",
        "title": "Process hogging memory",
        "scope": "processes",
        "levels": [
            {
                "severity": "warning",
                "when": {
                    "path": "memory_percent",
                    "op": ">",
                    "value": _t("process.memory_percent"),
                },
            }
        ],
        "evidence": ["name", "pid", "user", "memory_percent", "rss"],
        "summary": "{name} (pid {pid}) is using {rss!b} — {memory_percent:.0f}% of memory",
        "fix": "Save your work and restart the program; if it grows again, report it.",
    },
    {
        "id": "system.uptime",
        "section": "system",
        "title": "Long uptime",
        "scope": "system",
        "levels": [
            {
                "severity": "info",
                "when": {"path": "uptime_days", "op": ">", "value": _t("uptime.days")},
            }
        ],
        "evidence": ["uptime_days"],
        "summary": "Not restarted for {uptime_days:.0f} days",
        "fix": "Restart the computer to apply updates and free resources.",
    },
    {
        "id": "system.reboot_pending",
        "section": "system",
        "title": "Restart pending",
        "scope": "system",
        "levels": [
            {"severity": "warning", "when": {"path": "pending_reboot", "op": "==", "value": True}}
        ],
        "evidence": ["pending_reboot", "reboot_packages"],
        "summary": "Updates are waiting for a restart",
        "fix": "Save your work and restart the computer to finish installing updates.",
    },
    {
        "id": "battery.wear",
        "section": "system",
        "title": "Worn battery",
        "scope": "batteries",
        "levels": [
            {
                "severity": "warning",
                "when": {"path": "wear_percent", "op": ">", "value": _t("battery.wear_percent")},
            }
        ],
        "evidence": ["name", "wear_percent", "full", "design"],
        "summary": "Battery {name} has lost {wear_percent:.0f}% of its design capacity",
        "fix": "Ask the help desk for a battery replacement.",
    },
    {
        "id": "temperature.high",
        "section": "system",
        "title": "High temperature",
        "scope": "temperatures",
        "levels": [
            {
                "severity": "critical",
                "when": {
                    "path": "current",
                    "op": ">=",
                    "value": {"path": "critical", "default": _t("temperature.critical_celsius")},
                },
            },
            {
                "severity": "warning",
                "when": {
                    "path": "current",
                    "op": ">=",
                    "value": {"path": "high", "default": _t("temperature.high_celsius")},
                },
            },
        ],
        "evidence": ["sensor", "current", "high", "critical"],
        "summary": "Sensor {sensor} is at {current:.0f} °C (limit {threshold:.0f} °C)",
        "fix": "Check that the vents are clear and the fans turn; keep the computer off soft "
        "surfaces; call the help desk if it persists.",
    },
    {
        "id": "disk.smart_failing",
        "section": "disks",
        "title": "Disk failing (SMART)",
        "scope": "smart",
        "levels": [
            {"severity": "critical", "when": {"path": "passed", "op": "==", "value": False}}
        ],
        "evidence": ["device", "model", "passed"],
        "summary": "Disk {device} reports it is failing (SMART health check failed)",
        "fix": "Back up your files now and ask the help desk to replace the disk.",
    },
    {
        "id": "system.failed_services",
        "section": "system",
        "title": "Failed services",
        "scope": "services",
        "levels": [{"severity": "warning", "when": {"path": "failed", "op": ">=", "value": 1}}],
        "evidence": ["failed", "units"],
        "summary": "{failed} system service(s) failed: {units!l}",
        "fix": "Restart the computer; if they fail again, the help desk can read their logs "
        "(journalctl -u UNIT).",
    },
    {
        "id": "network.no_default_route",
        "section": "network",
        "title": "No default route",
        "scope": "network",
        "levels": [
            {"severity": "warning", "when": {"path": "default_route", "op": "==", "value": False}}
        ],
        "evidence": ["default_route"],
        "summary": "No default route — this computer cannot reach other networks",
        "fix": "Check the cable or Wi-Fi connection, then disconnect and reconnect the network.",
    },
    {
        "id": "network.dns_failing",
        "section": "network",
        "title": "DNS not resolving",
        "scope": "dns",
        "levels": [
            {"severity": "warning", "when": {"path": "resolves", "op": "==", "value": False}}
        ],
        "evidence": ["name", "error"],
        "summary": "Cannot resolve {name} — name lookups (DNS) are failing",
        "fix": "Reconnect to the network; if it persists, the DNS server settings need checking.",
    },
    {
        "id": "clock.skew",
        "section": "system",
        "title": "Clock skew",
        "scope": "clock",
        "levels": [
            {
                "severity": "warning",
                "when": {"path": "skew_seconds", "op": ">", "value": _t("clock.skew_seconds")},
            }
        ],
        "evidence": ["offset_seconds", "skew_seconds"],
        "summary": "The clock is {skew_seconds:.0f} s off the help desk server's time",
        "fix": "Turn on automatic time (NTP) in the date and time settings.",
    },
]


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    summary: str
    evidence: dict[str, Any]
    fix: str
    section: str = field(default="system", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": self.evidence,
            "fix": self.fix,
        }


# --- evaluation ---------------------------------------------------------------------------

_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path, or ``_MISSING``."""
    for part in path.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _operand(spec: Any, subject: Mapping[str, Any], thresholds: Mapping[str, float]) -> Any:
    if isinstance(spec, Mapping):
        if "threshold" in spec:
            return thresholds.get(spec["threshold"], _MISSING)
        if "path" in spec:
            value = lookup(subject, spec["path"])
            if value is _MISSING or value is None:
                return _operand(spec.get("default", _MISSING), subject, thresholds)
            return value
    return spec


def _holds(
    predicate: Mapping[str, Any], subject: Mapping[str, Any], thresholds: Mapping[str, float]
) -> tuple[bool, Any]:
    """Whether the predicate holds for the subject, and the operand it was compared to."""
    left = lookup(subject, predicate["path"])
    right = _operand(predicate.get("value"), subject, thresholds)
    if left is _MISSING or left is None or right is _MISSING or right is None:
        return False, None
    if isinstance(right, bool) != isinstance(left, bool):
        return False, None  # True is not 1 here: a flag compares only with a flag
    try:
        return bool(OPS[predicate["op"]](left, right)), right
    except TypeError:
        return False, None


class _Formatter(string.Formatter):
    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "b":
            return human_bytes(value)
        if conversion == "l":
            items = [str(v) for v in value]
            shown = ", ".join(items[:5])
            return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")
        return super().convert_field(value, conversion)


_FORMATTER = _Formatter()


def human_bytes(value: float) -> str:
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Rule:
    """One record of ``RULES``, ready to check snapshots."""

    spec: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    def subjects(self, snapshot: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
        """What the rule looks at; None when the snapshot has no data for it."""
        scope = lookup(snapshot, self.spec["scope"])
        if isinstance(scope, Mapping):
            return [scope]
        if isinstance(scope, list):
            return [item for item in scope if isinstance(item, Mapping)]
        return None

    def check(
        self, snapshot: Mapping[str, Any], thresholds: Mapping[str, float] = THRESHOLDS
    ) -> list[Finding]:
        findings = []
        for subject in self.subjects(snapshot) or ():
            if not all(_holds(p, subject, thresholds)[0] for p in self.spec.get("where", ())):
                continue
            for level in self.spec["levels"]:
                holds, threshold = _holds(level["when"], subject, thresholds)
                if holds:
                    # a limit from the table or the subject is evidence; a literal is not
                    limit = threshold if isinstance(level["when"].get("value"), Mapping) else None
                    findings.append(self._finding(level["severity"], subject, limit))
                    break
        return findings

    def _finding(self, severity: str, subject: Mapping[str, Any], threshold: Any) -> Finding:
        evidence = {
            name: subject[name]
            for name in self.spec["evidence"]
            if name in subject and subject[name] is not None
        }
        if threshold is not None:
            evidence["threshold"] = threshold
        try:
            summary = _FORMATTER.format(self.spec["summary"], **evidence)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            summary = self.spec["title"]  # evidence too thin for the sentence: say what it is
        return Finding(
            id=self.id,
            severity=severity,
            summary=summary[:300],
            evidence=evidence,
            fix=self.spec["fix"],
            section=self.spec["section"],
        )


def compile_rules(records: list[dict[str, Any]] = RULES) -> list[Rule]:
    """Check the records once (a typo here is a bug, not a runtime surprise)."""
    rules = []
    for record in records:
        missing = {"id", "section", "title", "scope", "levels", "evidence", "summary", "fix"}
        missing -= set(record)
        if missing:
            raise ValueError(f"rule {record.get('id')!r} lacks {sorted(missing)}")
        for level in record["levels"]:
            if level["severity"] not in SEVERITIES:
                raise ValueError(f"rule {record['id']!r}: unknown severity {level['severity']!r}")
        for predicate in [lv["when"] for lv in record["levels"]] + list(record.get("where", ())):
            if predicate["op"] not in OPS:
                raise ValueError(f"rule {record['id']!r}: unknown operator {predicate['op']!r}")
        rules.append(Rule(record))
    return rules


DEFAULT_RULES = compile_rules()


def evaluate(
    snapshot: Mapping[str, Any],
    rules: list[Rule] | None = None,
    thresholds: Mapping[str, float] = THRESHOLDS,
) -> tuple[list[Finding], list[str]]:
    """Findings, most severe first (at most ``MAX_FINDINGS``), and the rules checked."""
    findings: list[Finding] = []
    checked: list[str] = []
    for rule in DEFAULT_RULES if rules is None else rules:
        if rule.subjects(snapshot) is None:
            continue
        checked.append(rule.id)
        findings.extend(rule.check(snapshot, thresholds))
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))  # stable: table order within
    return findings[:MAX_FINDINGS], checked
