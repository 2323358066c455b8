"""SLA watchdog and ticket events, through a real coordinator with a real webhook receiver."""

import pytest

from coordinator.webhooks import verify_signature
from tests.conftest import ApiClient, Coordinator, _create_pg_database, _drop_pg_database, wait_for
from tests.coordinator_webhooks.conftest import Receiver

FAST = (
    "--heartbeat-interval",
    "1",
    "--handshake-timeout",
    "2",
    "--sla-check-interval",
    "0.3",
    "--webhook-poll-interval",
    "0.2",
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sla_desk(request, tmp_path_factory):
    db = _create_pg_database() if request.param == "postgresql" else None
    c = Coordinator(tmp_path_factory.mktemp("sla") / "coordinator", db=db, extra=FAST)
    c.start()
    receiver = Receiver()
    receiver.start()
    try:
        admin = ApiClient(c, c.api_key("admin"))
        # P5: own within 1 s (breaches at once); P4: own and resolve within 2 s.
        status, body = admin.request(
            "PUT",
            "/api/v1/sla-policies",
            {
                "policies": [
                    {"priority": 5, "own_seconds": 1, "resolve_seconds": 3600},
                    {"priority": 4, "own_seconds": 2, "resolve_seconds": 2},
                ]
            },
        )
        assert status == 200, body
        status, hook = admin.request(
            "POST", "/api/v1/webhooks", {"url": receiver.url(), "events": ["*"]}
        )
        assert status == 201, hook
        yield c, admin, receiver, hook["secret"]
    finally:
        receiver.stop()
        c.stop()
        if db:
            _drop_pg_database(db)


def ticket(client, reference):
    return client.get(f"/api/v1/tickets/{reference}")


def events_for(receiver, reference):
    return [r.event for r in receiver.accepted() if r.event["data"].get("reference") == reference]


def test_unowned_ticket_climbs_the_levels_and_the_world_hears(sla_desk):
    coordinator, admin, receiver, _ = sla_desk
    status, created = admin.request(
        "POST",
        "/api/v1/tickets",
        {"subject": "Nobody owns me", "description": "x", "impact": 3, "urgency": 3},
    )
    assert status == 201 and created["priority"] == 5
    ref = created["reference"]
    final = wait_for(
        lambda: (t := ticket(admin, ref))["level"] == 3 and t["sla"]["own_breached"] and t,
        30,
        what="escalation to L3",
    )
    assert final["status"] == "escalated"
    breaches = [e for e in final["timeline"] if e["kind"] == "sla_breached"]
    assert [b["data"]["level"] for b in breaches] == [1, 2, 3]
    levels = [
        (e["data"]["from"], e["data"]["to"]) for e in final["timeline"] if e["kind"] == "level"
    ]
    assert levels == [(1, 2), (2, 3)]
    audited = coordinator.sql(
        "select target, details from audit_log where action = 'ticket.escalated' and actor = 'system'"
    )
    assert [t for t, _ in audited].count(ref) == 2
    seen = wait_for(
        lambda: len(events_for(receiver, ref)) >= 6 and events_for(receiver, ref),
        20,
        what="webhooks",
    )
    assert [e["type"] for e in seen][:3] == ["ticket.created", "sla.breached", "ticket.escalated"]
    assert [e["type"] for e in seen].count("sla.breached") == 3


def test_a_ticket_taken_in_time_does_not_breach(sla_desk):
    _, admin, _, _ = sla_desk
    status, created = admin.request(
        "POST",
        "/api/v1/tickets",
        {"subject": "Taken at once", "description": "x", "impact": 3, "urgency": 3},
    )
    ref = created["reference"]
    status, _taken = admin.request("POST", f"/api/v1/tickets/{ref}/actions", {"action": "take"})
    assert status == 200
    # Several watchdog passes (0.3 s apart) after the 1 s own deadline:
    wait_for(lambda: ticket(admin, ref)["sla"]["own_due_at"] is not None, 5, what="ticket")
    import time

    time.sleep(2.5)
    after = ticket(admin, ref)
    assert after["level"] == 1 and not after["sla"]["own_breached"]
    assert not [e for e in after["timeline"] if e["kind"] == "sla_breached"]


def test_resolve_deadline_breach_is_flagged_once_without_escalating(sla_desk):
    _, admin, receiver, _ = sla_desk
    _status, created = admin.request(
        "POST",
        "/api/v1/tickets",
        {"subject": "Slow fix", "description": "x", "impact": 2, "urgency": 3},
    )
    assert created["priority"] == 4
    ref = created["reference"]
    admin.request("POST", f"/api/v1/tickets/{ref}/actions", {"action": "take"})
    flagged = wait_for(
        lambda: (t := ticket(admin, ref))["sla"]["resolve_breached"] and t,
        20,
        what="resolve breach",
    )
    assert flagged["level"] == 1
    breached = wait_for(
        lambda: [e for e in events_for(receiver, ref) if e["type"] == "sla.breached"],
        20,
        what="webhook",
    )
    assert len(breached) == 1 and breached[0]["data"]["kind"] == "resolve"
    breaching = [t["reference"] for t in admin.get("/api/v1/tickets?queue=breaching")["tickets"]]
    assert ref in breaching


def test_ticket_webhooks_are_signed_and_in_order(sla_desk):
    _, admin, receiver, secret = sla_desk
    _status, created = admin.request(
        "POST",
        "/api/v1/tickets",
        {"subject": "Webhook story", "description": "x", "impact": 1, "urgency": 1},
    )
    ref = created["reference"]
    for action in ("take", "escalate"):
        assert admin.request("POST", f"/api/v1/tickets/{ref}/actions", {"action": action})[0] == 200
    wait_for(lambda: len(events_for(receiver, ref)) >= 3, 20, what="three events")
    requests = [r for r in receiver.accepted() if r.event["data"].get("reference") == ref]
    assert [r.event["type"] for r in requests] == [
        "ticket.created",
        "ticket.updated",
        "ticket.escalated",
    ]
    for r in requests:
        assert verify_signature(
            secret, r.headers["x-backdesk-timestamp"], r.body, r.headers["x-backdesk-signature"]
        )
        assert not verify_signature(
            "another secret",
            r.headers["x-backdesk-timestamp"],
            r.body,
            r.headers["x-backdesk-signature"],
        )
    ids = [r.event["id"] for r in requests]
    assert ids == sorted(ids)
