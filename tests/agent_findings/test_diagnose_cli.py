"""``backdesk-agent diagnose`` for real, and findings in a Get-help request."""

from __future__ import annotations

import json
import subprocess

from jsonschema import Draft202012Validator

from agent.findings import RULES, Finding
from agent.gethelp.request import HelpRequest
from coordinator.inbox import BODY_SCHEMAS
from tests.conftest import AGENT

RULE_IDS = {r["id"] for r in RULES}


def _diagnose(tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, "--config-dir", str(tmp_path / "agent"), "diagnose", *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_diagnose_json_without_enrollment(tmp_path):
    done = _diagnose(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"findings", "checked"}
    assert result["checked"] and set(result["checked"]) <= RULE_IDS
    for item in result["findings"]:
        assert set(item) == {"id", "severity", "summary", "evidence", "fix"}
        assert item["id"] in result["checked"]
    assert not (tmp_path / "agent").exists()  # diagnosing writes nothing


def test_diagnose_text(tmp_path):
    done = _diagnose(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines == ["No problems found."] or all(
        line.split()[0] in ("CRITICAL", "WARNING", "INFO") and ". Fix: " in line for line in lines
    )


def _body(request: HelpRequest) -> dict:
    body = request.body("REQ-0000ABCD")
    errors = list(Draft202012Validator(BODY_SCHEMAS["ticket.request"]).iter_errors(body))
    assert not errors, errors
    return body


def test_get_help_body_carries_findings_the_coordinator_accepts():
    request = HelpRequest.collect("x")
    body = _body(request)
    assert body["findings"] == [f.to_dict() for f in request.findings]
    assert request.summary().splitlines()[2].lstrip().startswith("Findings:")


def test_findings_from_left_out_sections_stay_on_the_machine():
    request = HelpRequest.collect("x", {"processes"})
    hog = Finding(
        "process.cpu", "warning", "secret-app (pid 9) is using 99% CPU", {}, "-", "processes"
    )
    disk = Finding(
        "filesystem.full", "critical", "Disk / is 98% full — 1.0 GiB free", {}, "-", "disks"
    )
    request.findings = [disk, hog]
    body = _body(request)
    assert [f["id"] for f in body["findings"]] == ["filesystem.full"]
    summary = request.summary()
    assert "Findings: 2 (1 critical, 1 warning)" in summary
    assert "secret-app (pid 9) is using 99% CPU  (left out)" in summary
    assert summary.index("Findings:") < summary.index("System:")


def test_a_hundred_findings_still_fit():
    request = HelpRequest.collect("x")
    request.findings = [
        Finding(
            "filesystem.full",
            "warning",
            f"Disk /m{i} is 91% full",
            {"mountpoint": f"/m{i}"},
            "-",
            "disks",
        )
        for i in range(100)
    ]
    assert len(_body(request)["findings"]) == 100


def test_an_enrolled_agent_checks_its_coordinators_name(tmp_path):
    (tmp_path / "agent").mkdir()
    enrollment = {
        "coordinator": "https://localhost:8443",
        "fingerprint": "sha256:" + "0" * 64,
        "device_id": "d" * 32,
        "hostname": "desk",
    }
    (tmp_path / "agent" / "agent.json").write_text(json.dumps(enrollment))
    done = _diagnose(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "network.dns_failing" in result["checked"]
    assert "network.dns_failing" not in {f["id"] for f in result["findings"]}
