"""``backdesk-agent`` on the command line: every failure exits 1 with one sentence on stderr,
and a refused enrollment leaves nothing behind, on either side."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from agent.outbox import Outbox
from tests.conftest import AGENT, Agent, ApiClient, Coordinator, run_cli
from tests.e2e.conftest import Desk, stored, wait_online

OTHER_FINGERPRINT = "sha256:" + "ab" * 32


def assert_refused(result: object, *phrases: str) -> str:
    """Exit 1, one line on stderr starting with the program's name, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("backdesk-agent: error: "), stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    assert result.stdout == "", result.stdout  # type: ignore[attr-defined]
    return lines[0]


def assert_nothing_left(agent: Agent) -> None:
    """A refused enrollment keeps no identity and no enrollment record."""
    assert not (agent.config_dir / "identity.key").exists()
    assert not (agent.config_dir / "agent.json").exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- enrollment refused -----------------------------------------------------------------


def test_reused_token(desk: Desk) -> None:
    token = desk.coordinator.token()
    desk.agent("first").enroll(token)
    before = stored(desk.coordinator)
    second = desk.agent("second")
    assert_refused(second.enroll(token, check=False), "already used")
    assert_nothing_left(second)
    assert stored(desk.coordinator) == before


def test_two_agents_racing_for_one_token(desk: Desk) -> None:
    """Both enroll at the same moment with the same token: exactly one device results."""
    token = desk.coordinator.token()
    agents = [desk.agent("racer"), desk.agent("racer")]
    before = stored(desk.coordinator)
    processes = [
        subprocess.Popen(
            [
                AGENT,
                "--config-dir",
                str(agent.config_dir),
                "enroll",
                "--coordinator",
                desk.coordinator.url,
                "--token",
                token,
                "--fingerprint",
                desk.coordinator.fingerprint,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for agent in agents
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=60)
        results.append(
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        )
    assert sorted(r.returncode for r in results) == [0, 1], results
    winner, loser = (0, 1) if results[0].returncode == 0 else (1, 0)
    assert_refused(results[loser], "already used")
    assert_nothing_left(agents[loser])
    after = stored(desk.coordinator)
    new_devices = set(after["devices"]) - set(before["devices"])
    assert [row[0] for row in new_devices] == [agents[winner].device_id]


def test_expired_token(desk: Desk) -> None:
    created = json.loads(
        desk.coordinator.cli("token", "create", "--expires", "1s", "--json").stdout
    )
    expires_at = datetime.fromisoformat(created["expires_at"])
    time.sleep(max(0.0, expires_at.timestamp() - time.time()) + 0.5)
    before = stored(desk.coordinator)
    agent = desk.agent("late")
    assert_refused(agent.enroll(created["token"], check=False), "expired")
    assert_nothing_left(agent)
    assert stored(desk.coordinator) == before


def test_unknown_token(desk: Desk) -> None:
    before = stored(desk.coordinator)
    agent = desk.agent("guess")
    assert_refused(agent.enroll("bdt_" + "x" * 32, check=False), "unknown enrollment token")
    assert_nothing_left(agent)
    assert stored(desk.coordinator) == before


def test_wrong_fingerprint_enrolls_nothing(coordinator: Coordinator, make_agent, api) -> None:
    token = coordinator.token()
    agent = make_agent(coordinator)
    line = assert_refused(agent.enroll(token, fingerprint=OTHER_FINGERPRINT, check=False))
    assert coordinator.fingerprint in line and OTHER_FINGERPRINT in line
    assert_nothing_left(agent)
    assert api(coordinator).get("/api/v1/devices")["devices"] == []
    assert coordinator.sql("select used_at from enrollment_tokens") == [(None,)]
    # The token was not spent: with the right fingerprint it still works.
    agent.enroll(token)


@pytest.mark.parametrize(
    "fingerprint", ["sha256:1234", "md5:" + "ab" * 32, "sha256:" + "zz" * 32, ""]
)
def test_malformed_fingerprint(desk: Desk, fingerprint: str) -> None:
    agent = desk.agent("typo")
    result = agent.cli(
        "enroll",
        "--coordinator",
        desk.coordinator.url,
        "--token",
        "bdt_unused",
        "--fingerprint",
        fingerprint,
        "--json",
        check=False,
    )
    assert_refused(result, "bad fingerprint", "64 hex digits")
    assert not agent.config_dir.exists()


def test_coordinator_unreachable(tmp_path: Path) -> None:
    agent_dir = tmp_path / "agent"
    result = run_cli(
        AGENT,
        "--config-dir",
        str(agent_dir),
        "enroll",
        "--coordinator",
        f"https://127.0.0.1:{closed_port()}",
        "--token",
        "bdt_whatever",
        "--fingerprint",
        OTHER_FINGERPRINT,
        "--json",
        check=False,
    )
    assert_refused(result, "cannot reach the coordinator")
    assert not agent_dir.exists()


def test_enroll_twice_needs_force(desk: Desk) -> None:
    agent = desk.agent("twice")
    first = json.loads(agent.enroll().stdout)
    key = (agent.config_dir / "identity.key").read_bytes()
    before = stored(desk.coordinator)

    assert_refused(agent.enroll(check=False), "already enrolled", "--force")
    assert agent.device_id == first["device_id"]
    assert (agent.config_dir / "identity.key").read_bytes() == key
    assert stored(desk.coordinator)["devices"] == before["devices"]

    result = agent.cli(
        "enroll",
        "--coordinator",
        desk.coordinator.url,
        "--token",
        desk.coordinator.token(),
        "--fingerprint",
        desk.coordinator.fingerprint,
        "--force",
        "--json",
    )
    assert json.loads(result.stdout)["device_id"] == agent.device_id != first["device_id"]
    assert (agent.config_dir / "identity.key").read_bytes() != key


# --- the enrolled agent's files ---------------------------------------------------------


def test_status_and_identity_key_mode(desk: Desk) -> None:
    agent = desk.agent("status")
    enrolled = json.loads(agent.enroll().stdout)
    key_path = agent.config_dir / "identity.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    status = json.loads(agent.cli("status", "--json").stdout)
    assert status["device_id"] == enrolled["device_id"] == agent.device_id
    assert status["outbox_pending"] == 0
    assert status["fingerprint"] == desk.coordinator.fingerprint

    outbox = Outbox(agent.config_dir / "outbox.db")
    try:
        outbox.put("event", {"n": 1})
        outbox.put("event", {"n": 2})
    finally:
        outbox.close()
    assert json.loads(agent.cli("status", "--json").stdout)["outbox_pending"] == 2


def test_run_refuses_a_readable_identity_key(desk: Desk) -> None:
    agent = desk.agent("leaky")
    agent.enroll()
    key_path = agent.config_dir / "identity.key"
    key_path.chmod(0o644)
    result = run_cli(AGENT, "--config-dir", str(agent.config_dir), "run", check=False, timeout=20)
    assert_refused(result, str(key_path), "chmod 600")
    [(last_seen,)] = desk.coordinator.sql(
        "select last_seen_at from devices where id = ?", agent.device_id
    )
    assert last_seen is None  # it never connected


def test_run_and_status_before_enrollment(tmp_path: Path) -> None:
    for command in ("run", "status"):
        result = run_cli(AGENT, "--config-dir", str(tmp_path / "empty"), command, check=False)
        assert_refused(result, "not enrolled", "backdesk-agent enroll")


def test_api_refuses_anonymous_device_listing(desk: Desk) -> None:
    status, body = ApiClient(desk.coordinator, None).request("GET", "/api/v1/devices")
    assert status == 401
    assert set(body["error"]) == {"code", "message"}


def test_run_stops_when_the_coordinator_no_longer_knows_the_device(
    coordinator: Coordinator, make_agent
) -> None:
    """The coordinator's database was reset (same certificate): retrying cannot help, so
    ``run`` exits 1 and says to enroll again instead of retrying forever."""
    agent = make_agent(coordinator)
    agent.enroll()
    coordinator.stop()
    for path in coordinator.data_dir.glob("backdesk.db*"):
        path.unlink()
    coordinator.start()
    result = run_cli(AGENT, "--config-dir", str(agent.config_dir), "run", check=False, timeout=30)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("backdesk-agent: error: "), result.stderr
    assert "enroll" in last, last


def test_refused_re_enrollment_keeps_the_working_identity(desk: Desk) -> None:
    """``enroll --force`` with a bad token fails and changes nothing: the agent keeps its
    key and enrollment and still comes online (invariant 5)."""
    agent = desk.agent("keeper")
    agent.enroll()
    device_id = agent.device_id
    key = (agent.config_dir / "identity.key").read_bytes()

    result = agent.cli(
        "enroll",
        "--coordinator",
        desk.coordinator.url,
        "--token",
        "bdt_" + "n" * 32,
        "--fingerprint",
        desk.coordinator.fingerprint,
        "--force",
        "--json",
        check=False,
    )
    assert_refused(result, "unknown enrollment token")
    assert agent.device_id == device_id
    key_path = agent.config_dir / "identity.key"
    assert key_path.exists(), "the refused re-enrollment deleted the working identity key"
    assert key_path.read_bytes() == key, "the refused re-enrollment replaced the identity key"
    agent.start()
    wait_online(desk.client, device_id)
