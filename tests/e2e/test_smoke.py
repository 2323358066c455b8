"""The shortest path through the product: enroll an agent, see it online."""

import json

from tests.conftest import wait_for


def test_enrolled_agent_comes_online(coordinator_any_db, make_agent, api):
    agent = make_agent(coordinator_any_db)
    result = json.loads(agent.enroll().stdout)
    agent.start()
    client = api(coordinator_any_db)
    device = wait_for(
        lambda: next((d for d in client.get("/api/v1/devices")["devices"] if d["online"]), None),
        timeout=20,
        what="the agent to come online",
    )
    assert device["id"] == result["device_id"] == agent.device_id
    assert device["facts"]["hostname"] == result["hostname"]
    # The service measured the coordinator's clock (same machine: no skew) for `diagnose`.
    clock = wait_for(lambda: (agent.config_dir / "clock.json").exists(), 20, what="clock.json")
    assert clock
    offset = json.loads((agent.config_dir / "clock.json").read_text())["offset"]
    assert abs(offset) < 5
