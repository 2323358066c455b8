"""The webhook API: admin only, validated at the edge, described in OpenAPI, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from coordinator.api.openapi import SPEC
from coordinator.events import EVENT_TYPES
from tests.conftest import ApiClient, Coordinator

from .conftest import POLL, make_keys


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Coordinator, dict[str, str]]]:
    c = Coordinator(tmp_path_factory.mktemp("webhook-api") / "data", extra=POLL)
    c.start()
    try:
        yield c, make_keys(c, "admin", "l1", "l3", "onsite")
    finally:
        c.stop()


@pytest.fixture
def client(served: tuple[Coordinator, dict[str, str]]) -> ApiClient:
    return ApiClient(served[0], served[1]["admin"])


def error_of(status: int, body: Any, expected: int) -> dict[str, str]:
    assert status == expected, (status, body)
    return dict(body["error"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "events": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["*"]}, "url"),
        ({"url": "http://", "events": ["*"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2000, "events": ["*"]}, "url"),
        ({"url": 42, "events": ["*"]}, "url"),
        ({"events": ["*"]}, "url"),
        ({"url": "https://example.com/hook", "events": ["ticket.deleted"]}, "events.0"),
        ({"url": "https://example.com/hook", "events": []}, "events"),
        ({"url": "https://example.com/hook", "events": "ticket.created"}, "events"),
        ({"url": "https://example.com/hook"}, "events"),
        ({"url": "https://example.com/hook", "events": ["*"], "secret": "short"}, "secret"),
        ({"url": "https://example.com/hook", "events": ["*"], "active": False}, "active"),
        ({"url": "https://example.com/hook", "events": ["*"], "headers": {}}, "headers"),
    ],
    ids=[
        "ftp",
        "javascript",
        "no-host",
        "too-long",
        "not-a-string",
        "no-url",
        "unknown-event",
        "no-events",
        "events-not-a-list",
        "events-missing",
        "short-secret",
        "unknown-field-active",
        "unknown-field-headers",
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    client: ApiClient, body: dict[str, Any], field: str
) -> None:
    before = client.get("/api/v1/webhooks")["webhooks"]
    error = error_of(*client.request("POST", "/api/v1/webhooks", body), 400)
    assert error["code"] == "invalid_field"
    assert error["field"] == field
    assert repr(field) in error["message"] or field in error["message"]
    assert client.get("/api/v1/webhooks")["webhooks"] == before  # nothing changed


def test_bad_json_is_refused(client: ApiClient) -> None:
    status, body = client.request(
        "POST", "/api/v1/webhooks", headers={"Content-Type": "application/json"}, body=None
    )
    assert status in (400, 415)
    status, body = client.request("POST", "/api/v1/webhooks", ["not", "an", "object"])
    assert error_of(status, body, 400)["code"] == "invalid_field"


def test_create_list_and_delete(
    client: ApiClient, served: tuple[Coordinator, dict[str, str]]
) -> None:
    coordinator = served[0]
    status, created = client.request(
        "POST",
        "/api/v1/webhooks",
        {"url": "https://hooks.example.com/backdesk", "events": ["ticket.created", "sla.breached"]},
    )
    assert status == 201, created
    assert created["url"] == "https://hooks.example.com/backdesk"
    assert created["events"] == ["ticket.created", "sla.breached"]
    assert created["active"] is True
    assert isinstance(created["secret"], str) and len(created["secret"]) >= 32

    mine = "s" * 40
    status, chosen = client.request(
        "POST",
        "/api/v1/webhooks",
        {"url": "http://10.0.0.5:8080/in", "events": ["*", "ticket.updated"], "secret": mine},
    )
    assert status == 201 and chosen["secret"] == mine
    assert chosen["events"] == ["*"]

    listed = {w["id"]: w for w in client.get("/api/v1/webhooks")["webhooks"]}
    assert {created["id"], chosen["id"]} <= set(listed)
    for hook in listed.values():
        assert "secret" not in hook
        assert hook["pending"] == 0 and hook["last_error"] is None
    assert listed[created["id"]]["events"] == ["ticket.created", "sla.breached"]

    deliveries = client.get(f"/api/v1/webhooks/{created['id']}/deliveries")
    assert deliveries == {"deliveries": []}

    status, _ = client.request("DELETE", f"/api/v1/webhooks/{created['id']}")
    assert status == 204
    listed_after = {w["id"] for w in client.get("/api/v1/webhooks")["webhooks"]}
    assert created["id"] not in listed_after and chosen["id"] in listed_after
    for path in (f"/api/v1/webhooks/{created['id']}", "/api/v1/webhooks/999999"):
        assert error_of(*client.request("DELETE", path), 404)["code"] == "not_found"
    status, body = client.request("GET", f"/api/v1/webhooks/{created['id']}/deliveries")
    assert error_of(status, body, 404)["code"] == "not_found"

    audit = coordinator.sql(
        "SELECT action, target, details FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id"
    )
    actions = [(a, t) for a, t, _ in audit]
    assert ("webhook.created", f"webhook:{created['id']}") in actions
    assert ("webhook.created", f"webhook:{chosen['id']}") in actions
    assert ("webhook.deleted", f"webhook:{created['id']}") in actions
    assert all(mine not in str(d) and created["secret"] not in str(d) for _, _, d in audit)


@pytest.mark.parametrize("path", ["/api/v1/webhooks/abc", "/api/v1/webhooks/-1"])
def test_malformed_ids_are_not_found(client: ApiClient, path: str) -> None:
    assert error_of(*client.request("DELETE", path), 404)["code"] == "not_found"


@pytest.mark.parametrize("limit", ["0", "201", "x", "-3"])
def test_bad_delivery_limits_are_refused(client: ApiClient, limit: str) -> None:
    status, hook = client.request(
        "POST", "/api/v1/webhooks", {"url": "https://example.com/x", "events": ["*"]}
    )
    assert status == 201
    status, body = client.request("GET", f"/api/v1/webhooks/{hook['id']}/deliveries?limit={limit}")
    assert error_of(status, body, 400)["field"] == "limit"


@pytest.mark.parametrize("role", ["l1", "l3", "onsite"])
def test_only_admins_manage_webhooks(
    served: tuple[Coordinator, dict[str, str]], client: ApiClient, role: str
) -> None:
    coordinator, keys = served
    status, hook = client.request(
        "POST", "/api/v1/webhooks", {"url": "https://example.com/x", "events": ["*"]}
    )
    assert status == 201
    other = ApiClient(coordinator, keys[role])
    attempts = [
        ("POST", "/api/v1/webhooks", {"url": "https://evil.example/x", "events": ["*"]}),
        ("GET", "/api/v1/webhooks", None),
        ("DELETE", f"/api/v1/webhooks/{hook['id']}", None),
        ("GET", f"/api/v1/webhooks/{hook['id']}/deliveries", None),
    ]
    for method, path, body in attempts:
        assert error_of(*other.request(method, path, body), 403)["code"] == "forbidden"
    assert hook["id"] in {w["id"] for w in client.get("/api/v1/webhooks")["webhooks"]}
    assert "https://evil.example/x" not in {
        w["url"] for w in client.get("/api/v1/webhooks")["webhooks"]
    }
    denied = coordinator.sql(
        "SELECT count(*) FROM audit_log WHERE action = 'permission.denied' AND details LIKE ?",
        '%"role": "' + role + '"%',
    )
    assert denied[0][0] >= len(attempts)
    anonymous = ApiClient(coordinator, None)
    assert anonymous.request("GET", "/api/v1/webhooks")[0] == 401


def test_every_webhook_path_and_schema_is_described() -> None:
    paths = SPEC["paths"]
    assert set(paths["/api/v1/webhooks"]) == {"get", "post"}
    assert set(paths["/api/v1/webhooks/{webhook_id}"]) == {"delete"}
    assert set(paths["/api/v1/webhooks/{webhook_id}/deliveries"]) == {"get"}
    schemas = SPEC["components"]["schemas"]
    create = schemas["WebhookCreate"]
    assert create["additionalProperties"] is False
    assert set(create["properties"]["events"]["items"]["enum"]) == {*EVENT_TYPES, "*"}
    for name in (
        "Webhook",
        "WebhookCreated",
        "WebhookList",
        "WebhookDelivery",
        "WebhookDeliveryList",
    ):
        assert name in schemas
    assert "secret" not in schemas["Webhook"]["properties"]
    assert "X-Backdesk-Signature" in paths["/api/v1/webhooks"]["post"]["description"]
