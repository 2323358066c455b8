"""Full inventory: ``backdesk-agent inventory`` against ``fusioninventory-inventory``.

Prints one JSON line per figure (median wall time over ``--runs`` runs):
- ``agent``: ``backdesk-agent inventory -o /dev/null``, the full GLPI document with the
  ``backdesk_health`` extras (pending updates, SMART, failed services, temperatures);
- ``agent_glpi_sections``: the same collectors without the extras (``extras=False``),
  called from Python without the CLI;
- ``agent_cli_startup``: ``backdesk-agent --version``, the CLI's fixed import cost;
- ``fusioninventory``: ``fusioninventory-inventory`` (Debian ``fusioninventory-agent``),
  when installed, with its XML sent to /dev/null;
- ``ratio``: agent wall time / fusioninventory wall time (target: at most 0.5).

Peak RSS: ``peak_rss_mb`` is the agent process itself (psutil, polled every 2 ms; target
under 60 MB), ``tree_maxrss_mb`` the largest process of the run including the tools it
starts (``wait4`` rusage).

    .venv/bin/python -m bench.inventory [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
AGENT = [str(BIN / "backdesk-agent"), "inventory", "-o", os.devnull]
SECTIONS_ONLY = [
    sys.executable,
    "-c",
    "import json, os; from agent.inventory import collect; "
    "open(os.devnull, 'w').write(json.dumps(collect(extras=False)))",
]


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def measure(command: list[str]) -> tuple[float, float, float]:
    """Wall time (s), polled peak RSS of the process (MB), wait4 max RSS of the tree (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    handle = psutil.Process(proc.pid)
    while True:
        try:
            peak = max(peak, handle.memory_info().rss)
        except psutil.Error:
            pass
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.002)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{command[0]} exited {proc.returncode}")
    return wall, peak / 2**20, usage.ru_maxrss / 1024


def run(name: str, command: list[str], runs: int) -> float:
    results = [measure(command) for _ in range(runs)]
    wall = statistics.median(r[0] for r in results)
    emit(
        figure=name,
        wall_s=round(wall, 3),
        wall_min_s=round(min(r[0] for r in results), 3),
        peak_rss_mb=round(max(r[1] for r in results), 1),
        tree_maxrss_mb=round(max(r[2] for r in results), 1),
        runs=runs,
    )
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    agent = run("agent", AGENT, args.runs)
    sections = run("agent_glpi_sections", SECTIONS_ONLY, args.runs)
    run("agent_cli_startup", [str(BIN / "backdesk-agent"), "--version"], args.runs)
    if shutil.which("fusioninventory-inventory") is None:
        emit(figure="fusioninventory", skipped="fusioninventory-inventory is not installed")
        return
    fusion = run("fusioninventory", ["fusioninventory-inventory"], args.runs)
    emit(
        figure="ratio",
        agent_over_fusioninventory=round(agent / fusion, 2),
        glpi_sections_over_fusioninventory=round(sections / fusion, 2),
        target="<= 0.5",
    )


if __name__ == "__main__":
    main()
