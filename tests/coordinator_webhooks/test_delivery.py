"""Delivery against a real coordinator and a real receiver on loopback.

The receiver goes down (port closed), answers 500, comes back; the coordinator is
SIGKILLed mid-outage; two coordinators share one database. Every event must arrive, once
per delivery id, in publish order per webhook, signed with that webhook's secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.webhooks import verify_signature
from tests.conftest import Coordinator

from .conftest import POLL, Received, Receiver, admin, publish, subscribe, wait_until

KINDS = ("ticket.created", "ticket.updated", "ticket.escalated", "sla.breached")


def events_for(start: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        (KINDS[i % len(KINDS)], {"n": i, "reference": f"BD-{i:06d}"})
        for i in range(start, start + count)
    ]


def assert_in_order_once(got: list[Received], event_ids: list[int], secret: str) -> None:
    assert [r.event["id"] for r in got] == event_ids
    deliveries = [r.delivery for r in got]
    assert len(set(deliveries)) == len(deliveries), "a delivery arrived twice"
    for r in got:
        headers = r.headers
        assert headers["content-type"].startswith("application/json")
        assert headers["x-backdesk-event"] == r.event["type"]
        assert verify_signature(
            secret, headers["x-backdesk-timestamp"], r.body, headers["x-backdesk-signature"]
        )
        assert not verify_signature(
            "whsec_" + "0" * 43,
            headers["x-backdesk-timestamp"],
            r.body,
            headers["x-backdesk-signature"],
        )
        assert set(r.event) == {"id", "type", "at", "data"}


def head_attempts(coordinator: Coordinator, webhook_id: int) -> int:
    rows = coordinator.sql(
        "SELECT attempts FROM webhook_deliveries WHERE webhook_id = ? AND delivered_at IS NULL "
        "ORDER BY event_id LIMIT 1",
        webhook_id,
    )
    return int(rows[0][0]) if rows else 0


def pending_count(coordinator: Coordinator, webhook_id: int) -> int:
    rows = coordinator.sql(
        "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ? AND delivered_at IS NULL",
        webhook_id,
    )
    return int(rows[0][0])


def test_an_outage_across_a_coordinator_kill_loses_nothing_and_keeps_order(
    node_any_db: Coordinator,
) -> None:
    coordinator = node_any_db
    receiver = Receiver()  # its port stays closed for now: the receiver is down
    try:
        client = admin(coordinator)
        hook = subscribe(client, receiver.url())
        first = publish(coordinator, *events_for(0, 10))
        wait_until(lambda: head_attempts(coordinator, hook["id"]) >= 1, 15, "a failed attempt")

        coordinator.kill()  # SIGKILL in the middle of the outage
        second = publish(coordinator, *events_for(10, 10))
        before = head_attempts(coordinator, hook["id"])
        coordinator.start()
        # The new process resumes from the stored queue: it keeps trying the same head.
        wait_until(
            lambda: head_attempts(coordinator, hook["id"]) > before, 15, "a retry after restart"
        )
        assert pending_count(coordinator, hook["id"]) == 20
        assert receiver.requests == []

        receiver.start()
        got = wait_until(
            lambda: len(receiver.accepted()) >= 20 and receiver.accepted(), 20, "20 deliveries"
        )
        assert_in_order_once(got, first + second, hook["secret"])
        assert len(receiver.requests) == 20

        # The receiver has them all; the coordinator records the last answer just after.
        wait_until(lambda: pending_count(coordinator, hook["id"]) == 0, 10, "all recorded")
        rows = coordinator.sql(
            "SELECT event_id, attempts, last_error FROM webhook_deliveries "
            "WHERE webhook_id = ? ORDER BY event_id",
            hook["id"],
        )
        assert [r[0] for r in rows] == first + second
        assert rows[0][1] > 2 and rows[0][2]  # the head was retried, and why it failed is kept
        listed = {w["id"]: w for w in client.get("/api/v1/webhooks")["webhooks"]}
        assert listed[hook["id"]]["pending"] == 0 and listed[hook["id"]]["last_error"] is None
        deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=200")
        assert [d["status"] for d in deliveries["deliveries"]] == ["delivered"] * 20
        assert [int(r.delivery) for r in got] == sorted(int(r.delivery) for r in got)
    finally:
        receiver.stop()


def test_a_receiver_answering_500_or_hanging_up_is_retried_until_it_answers_200(
    node: Coordinator, receiver: Receiver
) -> None:
    client = admin(node)
    hook = subscribe(client, receiver.url())
    receiver.faults = ["500", "hangup"]
    ids = publish(node, *events_for(0, 3))

    got = wait_until(
        lambda: len(receiver.accepted()) >= 3 and receiver.accepted(), 15, "3 deliveries"
    )
    assert_in_order_once(got, ids, hook["secret"])
    # The first event failed twice, with the same delivery id each time, and nothing
    # after it was sent before it succeeded.
    attempts = [(r.delivery, r.status) for r in receiver.requests]
    first = got[0].delivery
    assert attempts[:3] == [(first, 500), (first, 0), (first, 200)]
    assert len(attempts) == 5

    deliveries = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries")["deliveries"]
    assert [d["event_id"] for d in deliveries] == ids[::-1]  # newest first
    oldest = deliveries[-1]
    assert oldest["status"] == "delivered" and oldest["attempts"] == 3
    assert oldest["last_error"]  # the hang-up, the last failure
    assert oldest["delivered_at"] and oldest["next_attempt_at"] is None
    assert [d["attempts"] for d in deliveries[:2]] == [1, 1]
    assert all(
        d["event_type"] == t for d, (t, _) in zip(deliveries[::-1], events_for(0, 3), strict=True)
    )
    listed = {w["id"]: w for w in client.get("/api/v1/webhooks")["webhooks"]}
    assert listed[hook["id"]]["pending"] == 0 and listed[hook["id"]]["last_delivered_at"]


def test_a_webhook_gets_only_the_event_types_it_subscribed_to(
    node: Coordinator, receiver: Receiver
) -> None:
    client = admin(node)
    created_only = subscribe(client, receiver.url("/created"), ["ticket.created"])
    everything = subscribe(client, receiver.url("/all"), ["*"])
    ids = publish(
        node,
        ("ticket.created", {"reference": "BD-000001"}),
        ("sla.breached", {"reference": "BD-000001"}),
        ("session.started", {"session": "s1"}),
        ("ticket.created", {"reference": "BD-000002"}),
    )
    got_all = wait_until(
        lambda: len(receiver.accepted("/all")) >= 4 and receiver.accepted("/all"), 15, "all 4"
    )
    assert_in_order_once(got_all, ids, everything["secret"])
    got_created = wait_until(
        lambda: len(receiver.accepted("/created")) >= 2 and receiver.accepted("/created"), 15, "2"
    )
    assert_in_order_once(got_created, [ids[0], ids[3]], created_only["secret"])
    assert {r.event["type"] for r in got_created} == {"ticket.created"}
    queued = node.sql(
        "SELECT event_id FROM webhook_deliveries WHERE webhook_id = ? ORDER BY event_id",
        created_only["id"],
    )
    assert [r[0] for r in queued] == [ids[0], ids[3]]


def test_a_webhook_that_is_down_does_not_hold_back_another(
    node: Coordinator, receiver: Receiver
) -> None:
    client = admin(node)
    down = Receiver()  # never started until the end: connection refused
    try:
        stuck = subscribe(client, down.url())
        healthy = subscribe(client, receiver.url())
        ids = publish(node, *events_for(0, 5))

        got = wait_until(
            lambda: len(receiver.accepted()) >= 5 and receiver.accepted(), 15, "5 deliveries"
        )
        assert_in_order_once(got, ids, healthy["secret"])
        wait_until(lambda: head_attempts(node, stuck["id"]) >= 1, 15, "a failed attempt")
        listed = {w["id"]: w for w in client.get("/api/v1/webhooks")["webhooks"]}
        assert listed[healthy["id"]]["pending"] == 0
        assert listed[stuck["id"]]["pending"] == 5
        assert listed[stuck["id"]]["last_error"]
        assert listed[stuck["id"]]["next_attempt_at"]
        statuses = [
            d["status"]
            for d in client.get(f"/api/v1/webhooks/{stuck['id']}/deliveries")["deliveries"]
        ]
        assert statuses == ["pending"] * 4 + ["retrying"]  # only the oldest was tried

        down.start()
        got_late = wait_until(
            lambda: len(down.accepted()) >= 5 and down.accepted(), 15, "late deliveries"
        )
        assert_in_order_once(got_late, ids, stuck["secret"])
    finally:
        down.stop()


def test_two_coordinators_sharing_the_database_send_each_event_once(
    tmp_path: Path, database: str | None, receiver: Receiver
) -> None:
    nodes = [Coordinator(tmp_path / "shared", db=database, extra=POLL) for _ in range(2)]
    try:
        for c in nodes:
            c.start()
        hook = subscribe(admin(nodes[0]), receiver.url())
        ids = publish(nodes[0], *events_for(0, 20))
        got = wait_until(
            lambda: len(receiver.accepted()) >= 20 and receiver.accepted(), 20, "20 deliveries"
        )
        assert_in_order_once(got, ids, hook["secret"])
        wait_until(lambda: pending_count(nodes[1], hook["id"]) == 0, 10, "all recorded")
        assert len(receiver.requests) == 20
    finally:
        for c in nodes:
            c.stop()
