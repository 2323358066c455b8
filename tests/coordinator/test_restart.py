"""A coordinator killed with SIGKILL comes back with everything it had committed."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Coordinator


def test_sigkill_and_restart_keep_users_tokens_and_devices(
    coordinator_any_db: Coordinator, make_agent: Any, api: Any
) -> None:
    coordinator = coordinator_any_db
    client = api(coordinator, role="admin")
    spare_token = coordinator.token("1h")
    used_token = coordinator.token("1h")
    first = make_agent(coordinator, "first")
    enrolled = json.loads(first.enroll(token=used_token).stdout)
    users_before = client.get("/api/v1/users")["users"]
    devices_before = client.get("/api/v1/devices")["devices"]
    assert [d["id"] for d in devices_before] == [enrolled["device_id"]]
    fingerprint, port = coordinator.fingerprint, coordinator.port

    coordinator.kill()
    assert not coordinator.alive()
    coordinator.start()
    assert (coordinator.port, coordinator.fingerprint) == (port, fingerprint)

    # The API key and the accounts are still there.
    assert client.get("/api/v1/users")["users"] == users_before
    devices_after = client.get("/api/v1/devices")["devices"]
    assert [(d["id"], d["hostname"], d["enrolled_at"]) for d in devices_after] == [
        (d["id"], d["hostname"], d["enrolled_at"]) for d in devices_before
    ]
    # The spent token stays spent; the spare one still enrolls exactly one more device.
    second = json.loads(make_agent(coordinator, "second").enroll(token=spare_token).stdout)
    ids = {d["id"] for d in client.get("/api/v1/devices")["devices"]}
    assert ids == {enrolled["device_id"], second["device_id"]}
    tokens = coordinator.sql("SELECT device_id FROM enrollment_tokens WHERE used_at IS NOT NULL")
    assert {row[0] for row in tokens} == ids
