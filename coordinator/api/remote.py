"""Remote sessions for scripts (the console's buttons call the same broker).

    POST /api/v1/tickets/{reference}/sessions   ask the ticket's device for a session
    GET  /api/v1/tickets/{reference}/sessions   the ticket's sessions, newest first
    GET  /api/v1/sessions/{session_id}          one session: pending, live, ended + reason

Asking grants nothing: the device's user answers on the device (docs/remote-sessions.md).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..permissions import Permission
from ..remote import broker, relay
from ..settings import ENGINE
from ..tickets import service as tickets_service
from . import spec
from .middleware import require
from .validation import read_json

routes = web.RouteTableDef()


@routes.post("/api/v1/tickets/{reference}/sessions")
async def request_session(request: web.Request) -> web.Response:
    reference = request.match_info["reference"][:16].upper()
    who = await require(request, Permission.SESSION_REQUEST, reference)
    body = await read_json(request, "SessionCreate")
    offer = await broker.request(
        request.app[ENGINE], who, reference, body["scope"], relay.online(request.app)
    )
    await relay.offer(request.app, offer)
    session = await broker.get(request.app[ENGINE], offer.session_id, None)
    return web.json_response(session, status=201)


@routes.get("/api/v1/tickets/{reference}/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    reference = request.match_info["reference"][:16].upper()
    who = await require(request, Permission.SESSION_REQUEST, reference)
    async with request.app[ENGINE].connect() as conn:
        await tickets_service.visible_row(conn, reference, who)
    return web.json_response({"sessions": await broker.for_ticket(request.app[ENGINE], reference)})


@routes.get("/api/v1/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"][:32]
    who = await require(request, Permission.SESSION_REQUEST, f"session:{session_id}")
    return web.json_response(await broker.get(request.app[ENGINE], session_id, who))


# --- OpenAPI -------------------------------------------------------------------------

_REFERENCE = {
    "name": "reference",
    "in": "path",
    "required": True,
    "description": "The ticket's reference, e.g. BD-000123",
    "schema": {"type": "string", "maxLength": 16},
}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_RECEIPT = {
    "type": ["object", "null"],
    "description": "The agent's receipt as it signed it, and the Ed25519 signature "
    "(base64) over its canonical JSON (sorted keys, no spaces)",
    "properties": {"receipt": {"type": "object"}, "signature": {"type": "string"}},
}

PATHS: dict[str, Any] = {
    "/api/v1/tickets/{reference}/sessions": {
        "post": {
            "summary": "Ask the ticket's device for a remote session",
            "description": "Only the technician the ticket is assigned to may ask (403, "
            "audited, otherwise); the device must be online (409). The session is "
            "`pending` until the device's user answers on the device: open `viewer_url` "
            "in the console to take part.",
            "parameters": [_REFERENCE],
            "requestBody": spec.body("SessionCreate"),
            "responses": {
                "201": spec.ok("Session", "Created"),
                **spec.AUTH_ERRORS,
                **spec.BODY_ERRORS,
                "404": spec.error("No such ticket"),
                "409": spec.error("No device, device offline, or a session already open"),
            },
        },
        "get": {
            "summary": "The ticket's remote sessions, newest first",
            "parameters": [_REFERENCE],
            "responses": {
                "200": spec.ok("SessionList"),
                **spec.AUTH_ERRORS,
                "404": spec.error("No such ticket"),
            },
        },
    },
    "/api/v1/sessions/{session_id}": {
        "get": {
            "summary": "One remote session: pending, awaiting_consent, live or ended",
            "parameters": [
                {
                    "name": "session_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 32},
                }
            ],
            "responses": {
                "200": spec.ok("Session"),
                **spec.AUTH_ERRORS,
                "404": spec.error("No such session"),
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "SessionCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["scope"],
        "properties": {"scope": {"enum": ["view", "control"]}},
    },
    "Session": {
        "type": "object",
        "required": ["id", "ticket", "state", "scope_requested", "viewer_url"],
        "properties": {
            "id": {"type": "string"},
            "ticket": {"type": "string"},
            "device_id": {"type": "string"},
            "technician": {"type": "string"},
            "scope_requested": {"enum": ["view", "control"]},
            "scope": {"enum": ["view", "control", None], "description": "What was granted"},
            "state": {"enum": ["pending", "awaiting_consent", "live", "ended"]},
            "reason": {
                "type": ["string", "null"],
                "description": "Why it ended: " + ", ".join(broker.REASONS),
            },
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "ended_at": _NULLABLE_TIME,
            "duration_s": {"type": ["number", "null"]},
            "consent": _RECEIPT,
            "end_receipt": _RECEIPT,
            "viewer_url": {"type": "string", "description": "The console page of the session"},
        },
    },
    "SessionList": {
        "type": "object",
        "required": ["sessions"],
        "properties": {"sessions": {"type": "array", "items": spec.ref("Session")}},
    },
}
