"""Findings: what is wrong with this machine, in words a person can act on.

``collect`` takes one snapshot of the machine (``snapshot.py``), ``evaluate`` runs the
rules over it (``rules.py``, a table of records), and each finding has a severity, a
one-line summary, the evidence that triggered it and a suggested fix.
"""

from __future__ import annotations

from typing import Any

from .rules import DEFAULT_RULES, RULES, SEVERITIES, THRESHOLDS, Finding, Rule, evaluate
from .snapshot import collect

__all__ = [
    "DEFAULT_RULES",
    "RULES",
    "SEVERITIES",
    "THRESHOLDS",
    "Finding",
    "Rule",
    "collect",
    "count_line",
    "diagnose",
    "evaluate",
    "render",
]


def diagnose(**collect_args: Any) -> tuple[list[Finding], list[str]]:
    """Collect a snapshot of this machine and evaluate every rule over it."""
    return evaluate(collect(**collect_args))


def render(finding: Finding) -> str:
    """One line: ``CRITICAL  Disk / is 98% full — 1.2 GiB free. Fix: ...``"""
    return f"{finding.severity.upper():<9} {finding.summary}. Fix: {finding.fix}"


def count_line(findings: list[Finding]) -> str:
    """``Findings: 3 (1 critical, 2 warnings)``"""
    parts = []
    for severity in SEVERITIES:
        n = sum(1 for f in findings if f.severity == severity)
        if n:
            plural = "s" if n > 1 and severity == "warning" else ""
            parts.append(f"{n} {severity}{plural}")
    return f"Findings: {len(findings)}" + (f" ({', '.join(parts)})" if parts else "")
