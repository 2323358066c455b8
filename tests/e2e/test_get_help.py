"""Get help from the endpoint: the real agent CLI opens a ticket exactly once, through
the durable outbox, whether the coordinator is up, down, or restarted in between."""

import asyncio
import json
import re

from agent.config import AgentDir
from agent.gethelp.request import KIND, HelpRequest, request_id_for
from agent.link import Service
from agent.outbox import Outbox
from tests.conftest import wait_for


def get_help(agent, *args, check=True):
    return agent.cli("get-help", "--no-gui", "--json", *args, check=check)


def tickets_for(client, request_id):
    found = client.get(f"/api/v1/tickets?q={request_id}")["tickets"]
    return [t for t in found if t["external_refs"].get("agent_request") == request_id]


def test_get_help_opens_a_ticket_with_diagnostics(coordinator, make_agent, api):
    agent = make_agent(coordinator)
    agent.enroll()
    result = get_help(agent, "--message", "Outlook crashes at start\nsince the update")
    answer = json.loads(result.stdout)
    assert answer["status"] == "created" and re.fullmatch(r"BD-\d{6}", answer["reference"])
    assert re.fullmatch(r"REQ-[0-9A-F]{8}", answer["request_id"])
    assert "This will be sent to the help desk" in result.stderr  # the preview
    ticket = api(coordinator).get(f"/api/v1/tickets/{answer['reference']}")
    assert ticket["subject"] == "Outlook crashes at start"
    assert ticket["description"].endswith("since the update")
    assert ticket["channel"] == "agent" and ticket["device_id"] == agent.device_id
    assert set(ticket["diagnostics"]["data"]) == {
        "system",
        "cpu",
        "memory",
        "disks",
        "network",
        "processes",
    }
    assert ticket["diagnostics"]["data"]["system"]["hostname"] == ticket["device_hostname"]
    status = json.loads(agent.cli("status", "--json").stdout)
    assert {"request_id": answer["request_id"], "reference": answer["reference"]} in status[
        "recent_requests"
    ]


def test_left_out_sections_are_not_sent(coordinator, make_agent, api):
    agent = make_agent(coordinator)
    agent.enroll()
    answer = json.loads(
        get_help(agent, "--message", "Slow", "--exclude", "processes,network").stdout
    )
    ticket = api(coordinator).get(f"/api/v1/tickets/{answer['reference']}")
    assert ticket["diagnostics"]["excluded"] == ["network", "processes"]
    assert (
        "processes" not in ticket["diagnostics"]["data"]
        and "network" not in ticket["diagnostics"]["data"]
    )
    bad = get_help(agent, "--message", "x", "--exclude", "passwords", check=False)
    assert bad.returncode == 1 and "unknown section 'passwords'" in bad.stderr


def test_empty_message_and_unenrolled_agent_are_refused_clearly(coordinator, make_agent):
    agent = make_agent(coordinator)
    result = get_help(agent, "--message", "x", check=False)
    assert result.returncode == 1 and "enroll" in result.stderr and "Traceback" not in result.stderr
    agent.enroll()
    result = get_help(agent, "--message", "   ", check=False)
    assert result.returncode == 1 and "empty" in result.stderr
    assert json.loads(agent.cli("status", "--json").stdout)["outbox_pending"] == 0


def test_request_made_while_the_desk_is_down_arrives_once(coordinator, make_agent, api):
    agent = make_agent(coordinator)
    agent.enroll()
    client = api(coordinator)
    coordinator.kill()
    answer = json.loads(get_help(agent, "--message", "Cannot print").stdout)
    assert answer["status"] == "queued" and answer["reference"] == answer["request_id"]
    # The service starts, is killed before it could do much, and starts again.
    agent.start()
    agent.process.kill()
    agent.process.wait()
    coordinator.start()
    agent.start()
    found = wait_for(
        lambda: tickets_for(client, answer["request_id"]), 30, what="the queued ticket"
    )
    assert len(found) == 1 and found[0]["subject"] == "Cannot print"
    wait_for(
        lambda: json.loads(agent.cli("status", "--json").stdout)["outbox_pending"] == 0,
        20,
        what="outbox drained",
    )
    status = json.loads(agent.cli("status", "--json").stdout)
    assert {"request_id": answer["request_id"], "reference": found[0]["reference"]} in status[
        "recent_requests"
    ]
    assert len(tickets_for(client, answer["request_id"])) == 1


def test_redelivery_after_a_lost_acknowledgement_opens_no_second_ticket(
    coordinator, make_agent, api
):
    """The coordinator committed the ticket but its acknowledgement never arrived (it was
    killed, the network dropped): the agent sends the same message again, and gets the
    same reference back instead of a second ticket."""
    agent = make_agent(coordinator)
    agent.enroll()
    agent_dir = AgentDir(agent.config_dir)
    key = "f" * 32
    body = HelpRequest.collect("Screen flickers", {"processes"}).body(request_id_for(key))

    async def deliver_once() -> dict:
        outbox = Outbox(agent_dir.outbox_path)
        try:
            outbox.put(KIND, body, key=key)  # as if never acknowledged
            results = await Service(agent_dir, outbox).deliver_now({key})
        finally:
            outbox.close()
        return results[key]

    first = asyncio.run(deliver_once())
    second = asyncio.run(deliver_once())
    assert first == second and re.fullmatch(r"BD-\d{6}", first["reference"])
    client = api(coordinator)
    assert [t["reference"] for t in tickets_for(client, request_id_for(key))] == [
        first["reference"]
    ]
    rows = coordinator.sql("select count(*) from agent_messages where idempotency_key = ?", key)
    assert rows == [(1,)]
