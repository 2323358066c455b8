"""Outbound webhooks: subscriptions (admin) and their delivery status.

How deliveries are signed, ordered and retried is described in ``coordinator/webhooks.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from .. import audit
from .. import webhooks as delivery
from ..errors import ApiError
from ..events import EVENT_TYPES
from ..permissions import Permission
from ..settings import ENGINE
from . import spec
from .middleware import require
from .validation import read_json

routes = web.RouteTableDef()

MAX_DELIVERIES = 200


def _webhook_id(request: web.Request) -> int:
    raw = request.match_info["webhook_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", f"no webhook with id {raw[:20]!r}")
    return int(raw)


def _check_url(url: str) -> str:
    try:
        parsed = URL(url)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiError(
            400, "invalid_field", "field 'url': give an absolute http:// or https:// URL", "url"
        )
    return url


@routes.post("/api/v1/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    who = await require(request, Permission.WEBHOOK_MANAGE, "webhooks")
    body = await read_json(request, "WebhookCreate")
    url = _check_url(body["url"])
    async with request.app[ENGINE].begin() as conn:
        created = await delivery.create(conn, url, body["events"], body.get("secret"))
        await audit.append(
            conn,
            who.name,
            "webhook.created",
            f"webhook:{created['id']}",
            {"url": delivery.public_url(url), "events": created["events"]},
        )
    return web.json_response(created, status=201)


@routes.get("/api/v1/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    await require(request, Permission.WEBHOOK_MANAGE, "webhooks")
    return web.json_response({"webhooks": await delivery.list_webhooks(request.app[ENGINE])})


@routes.delete("/api/v1/webhooks/{webhook_id}")
async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = _webhook_id(request)
    who = await require(request, Permission.WEBHOOK_MANAGE, f"webhook:{webhook_id}")
    async with request.app[ENGINE].begin() as conn:
        removed = await delivery.remove(conn, webhook_id)
        if removed is None:
            raise ApiError(404, "not_found", f"no webhook with id {webhook_id}")
        await audit.append(
            conn,
            who.name,
            "webhook.deleted",
            f"webhook:{webhook_id}",
            {"url": removed["url"], "events": removed["events"]},
        )
    return web.Response(status=204)


@routes.get("/api/v1/webhooks/{webhook_id}/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    webhook_id = _webhook_id(request)
    await require(request, Permission.WEBHOOK_MANAGE, f"webhook:{webhook_id}")
    raw_limit = request.query.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_DELIVERIES:
        raise ApiError(
            400, "invalid_field", f"'limit' must be an integer from 1 to {MAX_DELIVERIES}", "limit"
        )
    found = await delivery.list_deliveries(request.app[ENGINE], webhook_id, int(raw_limit))
    if found is None:
        raise ApiError(404, "not_found", f"no webhook with id {webhook_id}")
    return web.json_response({"deliveries": found})


# --- OpenAPI ----------------------------------------------------------------------------


_ID = {
    "name": "webhook_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
_SIGNING = (
    "Each event is POSTed as JSON `{id, type, at, data}` with headers `X-Backdesk-Event`, "
    "`X-Backdesk-Delivery` (stable across retries: deduplicate on it), `X-Backdesk-Timestamp` "
    "(unix seconds) and `X-Backdesk-Signature: sha256=<hex HMAC-SHA256(secret, "
    '"{timestamp}." + body)>`. A 2xx answer within 10 s acknowledges it; anything else is '
    "retried with exponential backoff (up to 5 min apart) until it succeeds. Each webhook "
    "receives its events in order: an event that keeps failing holds back the later ones."
)

PATHS: dict[str, Any] = {
    "/api/v1/webhooks": {
        "post": {
            "summary": "Subscribe a URL to events (admin only)",
            "description": _SIGNING + " The secret is shown only in this response.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": spec.ref("WebhookCreate")}},
            },
            "responses": {
                "201": spec.ok("WebhookCreated", "Created; keep the secret"),
                "400": spec.error("Invalid body; the field is named"),
                **spec.AUTH_ERRORS,
            },
        },
        "get": {
            "summary": "List webhooks with their queue (admin only)",
            "responses": {"200": spec.ok("WebhookList", "OK"), **spec.AUTH_ERRORS},
        },
    },
    "/api/v1/webhooks/{webhook_id}": {
        "delete": {
            "summary": "Remove a webhook and its undelivered events (admin only)",
            "parameters": [_ID],
            "responses": {
                "204": {"description": "Deleted"},
                "404": spec.error("No such webhook"),
                **spec.AUTH_ERRORS,
            },
        }
    },
    "/api/v1/webhooks/{webhook_id}/deliveries": {
        "get": {
            "summary": "A webhook's recent deliveries, newest first (admin only)",
            "parameters": [
                _ID,
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES},
                },
            ],
            "responses": {
                "200": spec.ok("WebhookDeliveryList", "OK"),
                "400": spec.error("Bad limit"),
                "404": spec.error("No such webhook"),
                **spec.AUTH_ERRORS,
            },
        }
    },
}

_EVENTS = {
    "type": "array",
    "minItems": 1,
    "maxItems": len(EVENT_TYPES) + 1,
    "uniqueItems": True,
    "items": {"enum": [*EVENT_TYPES, "*"]},
}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "WebhookCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["url", "events"],
        "properties": {
            "url": {
                "type": "string",
                "maxLength": 2000,
                "pattern": "^https?://\\S+$",
                "description": "Where events are POSTed (http or https)",
            },
            "events": {
                **_EVENTS,
                "description": 'Event types to receive, or ["*"] for all',
            },
            "secret": {
                "type": "string",
                "minLength": 32,
                "maxLength": 128,
                "pattern": "^[\\x21-\\x7e]+$",
                "description": "HMAC key (printable ASCII); generated when absent",
            },
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "active", "pending", "last_error"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "pending": {"type": "integer", "description": "Events not delivered yet"},
            "last_error": {
                "type": ["string", "null"],
                "description": "Why the oldest undelivered event failed, if it did",
            },
            "next_attempt_at": _TIME_OR_NULL,
            "last_delivered_at": _TIME_OR_NULL,
        },
    },
    "WebhookCreated": {
        "type": "object",
        "required": ["id", "url", "events", "active", "secret"],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "secret": {"type": "string", "description": "Shown once: signs every delivery"},
        },
    },
    "WebhookList": {
        "type": "object",
        "required": ["webhooks"],
        "properties": {"webhooks": {"type": "array", "items": spec.ref("Webhook")}},
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "event_id", "event_type", "status", "attempts"],
        "properties": {
            "id": {"type": "integer", "description": "The X-Backdesk-Delivery header"},
            "event_id": {"type": "integer"},
            "event_type": {"enum": list(EVENT_TYPES)},
            "status": {"enum": ["pending", "retrying", "delivered"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": _TIME_OR_NULL,
            "delivered_at": _TIME_OR_NULL,
            "last_error": {"type": ["string", "null"]},
        },
    },
    "WebhookDeliveryList": {
        "type": "object",
        "required": ["deliveries"],
        "properties": {"deliveries": {"type": "array", "items": spec.ref("WebhookDelivery")}},
    },
}
