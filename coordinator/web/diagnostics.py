"""What an agent attached to a ticket, shaped for the ticket page.

Agent tickets carry ``{"data": {section: ...}, "findings": [...], "excluded": [...]}``.
Every value here came from an endpoint, maybe a hostile one: this module only reshapes
it into strings, tables and lists (bounded in size); the template escapes each string.
A section that is a mapping becomes a two-column table, a list of mappings a table
with one column per key, anything else a list or a single value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_ROWS = 60
MAX_COLUMNS = 8
MAX_TEXT = 400
MAX_SECTIONS = 30
MAX_FINDINGS = 100

SECTION_TITLES = {
    "system": "System",
    "cpu": "Processor",
    "memory": "Memory",
    "disks": "Disks",
    "network": "Network",
    "processes": "Processes",
    "battery": "Battery",
    "services": "Services",
    "software": "Software",
}
# Keys whose numbers are byte counts, and keys that are percentages or Unix times.
_BYTES = {
    "total",
    "available",
    "free",
    "used",
    "swap_total",
    "swap_used",
    "rss",
    "vms",
    "memory",
    "size",
}
_PERCENT = {"percent", "cpu_percent", "memory_percent"}
_EPOCH = {"boot_time", "created", "create_time"}
SEVERITIES = ("critical", "error", "warning", "info")
LABELS = {
    "os": "OS",
    "os_release": "OS release",
    "os_version": "OS version",
    "percent": "Used",
    "pid": "PID",
    "rss": "Memory (RSS)",
    "fstype": "File system",
    "read_only": "Read-only",
    "uptime_hours": "Uptime (hours)",
    "load_average": "Load average",
    "swap_total": "Swap total",
    "swap_used": "Swap used",
    "up": "Up",
}


@dataclass
class Section:
    name: str
    title: str
    kind: str  # "pairs", "table", "list", "value" or "empty"
    rows: list[list[str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    more: int = 0  # rows left out


@dataclass
class Finding:
    severity: str  # one of SEVERITIES, for the badge
    title: str
    evidence: list[tuple[str, str]]
    fix: str


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)  # pragma: no cover


def show(key: str, value: Any) -> str:
    """One value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if key in _BYTES:
            return _bytes(float(value))
        if key in _PERCENT:
            return f"{value:g} %"
        if key in _EPOCH and 0 < value < 2**33:
            return datetime.fromtimestamp(value, UTC).strftime("%-d %b %Y, %H:%M UTC")
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return _clip(", ".join(show(key, v) for v in value)) or "—"
    return _clip(json.dumps(value, ensure_ascii=False, default=str))


def humanize(key: str) -> str:
    key = str(key)
    return LABELS.get(key) or key.replace("_", " ").strip().capitalize() or "—"


def section(name: str, data: Any) -> Section:
    title = SECTION_TITLES.get(name, humanize(name))
    if isinstance(data, dict):
        items = list(data.items())
        return Section(
            name,
            title,
            "pairs",
            rows=[[humanize(k), show(str(k), v)] for k, v in items[:MAX_ROWS]],
            more=max(0, len(items) - MAX_ROWS),
        )
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns: list[str] = []
        for row in data:
            for key in row:
                if key not in columns and len(columns) < MAX_COLUMNS:
                    columns.append(str(key))
        return Section(
            name,
            title,
            "table",
            columns=[humanize(c) for c in columns],
            rows=[[show(c, row.get(c)) for c in columns] for row in data[:MAX_ROWS]],
            more=max(0, len(data) - MAX_ROWS),
        )
    if isinstance(data, list):
        if not data:
            return Section(name, title, "empty")
        return Section(
            name,
            title,
            "list",
            rows=[[show(name, v)] for v in data[:MAX_ROWS]],
            more=max(0, len(data) - MAX_ROWS),
        )
    return Section(name, title, "value", rows=[[show(name, data)]])


def _first(finding: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if finding.get(key) not in (None, ""):
            return finding[key]
    return None


def finding(raw: Any) -> Finding:
    if not isinstance(raw, dict):
        return Finding("info", show("finding", raw), [], "")
    severity = str(_first(raw, "severity", "level") or "info").lower()
    if severity not in SEVERITIES:
        severity = {"high": "error", "medium": "warning", "low": "info"}.get(severity, "info")
    title = _first(raw, "summary", "title", "message", "rule", "id") or "Finding"
    evidence = _first(raw, "evidence", "details", "data")
    if isinstance(evidence, dict):
        pairs = [(humanize(k), show(str(k), v)) for k, v in list(evidence.items())[:MAX_ROWS]]
    elif evidence is None:
        pairs = []
    else:
        pairs = [("", show("evidence", evidence))]
    fix = _first(raw, "fix", "suggested_fix", "suggestion", "remedy", "action")
    return Finding(severity, show("title", title), pairs, show("fix", fix) if fix else "")


@dataclass
class Attached:
    findings: list[Finding]
    sections: list[Section]
    excluded: list[str]
    raw: bool  # not in the agent's shape: shown as one generic section

    @property
    def empty(self) -> bool:
        return not (self.findings or self.sections or self.excluded)


def attached(diagnostics: Any) -> Attached:
    """The ticket's diagnostics in the shape the template shows."""
    if not diagnostics:
        return Attached([], [], [], raw=False)
    if not isinstance(diagnostics, dict) or not isinstance(diagnostics.get("data", {}), dict):
        return Attached([], [section("diagnostics", diagnostics)], [], raw=True)
    data = diagnostics.get("data") or {}
    findings = diagnostics.get("findings") or []
    excluded = diagnostics.get("excluded") or []
    found = [finding(f) for f in findings[:MAX_FINDINGS]] if isinstance(findings, list) else []
    found.sort(key=lambda f: SEVERITIES.index(f.severity))
    return Attached(
        findings=found,
        sections=[section(str(k), v) for k, v in list(data.items())[:MAX_SECTIONS]],
        excluded=[show("excluded", e) for e in excluded[:20]] if isinstance(excluded, list) else [],
        raw=False,
    )
