"""Tickets: the help desk's queue, lifecycle, comments and SLAs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select, update

from ..errors import ApiError, Invalid
from ..permissions import Permission
from ..settings import ENGINE
from ..storage.schema import sla_policies
from ..tickets import attachments, service
from ..tickets.lifecycle import Action, Status
from . import spec
from .middleware import require
from .validation import read_json

routes = web.RouteTableDef()

_STATUS_FILTERS = {s.value for s in Status} | {"open"}
_QUEUES = ("unanswered", "breaching")


@routes.get("/api/v1/tickets")
async def list_tickets(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_COMMENT)  # every role; visibility below
    query = request.query
    status = query.get("status")
    if status is not None and status not in _STATUS_FILTERS:
        raise Invalid(f"status must be one of {', '.join(sorted(_STATUS_FILTERS))}", "status")
    queue = query.get("queue")
    if queue is not None and queue not in _QUEUES:
        raise Invalid(f"queue must be one of {', '.join(_QUEUES)}", "queue")
    found, total = await service.search(
        request.app[ENGINE],
        who,
        q=query.get("q", "")[:200] or None,
        status=status,
        level=spec.query_int(request, "level", 0, 1, 3) or None,
        assignee=query.get("assignee", "")[:64] or None,
        queue=queue,
        limit=spec.query_int(request, "limit", 50, 1, 200),
        offset=spec.query_int(request, "offset", 0, 0, 10**6),
    )
    return web.json_response({"tickets": found, "total": total})


@routes.post("/api/v1/tickets")
async def create_ticket(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_CREATE)
    body = await read_json(request, "TicketCreate")
    body.setdefault("channel", "api")
    body.setdefault("requester", who.name)
    ticket = await service.create(request.app[ENGINE], who, **body)
    return web.json_response(ticket, status=201)


@routes.get("/api/v1/tickets/{reference}")
async def get_ticket(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_COMMENT)
    return web.json_response(
        await service.get(request.app[ENGINE], request.match_info["reference"], who)
    )


@routes.patch("/api/v1/tickets/{reference}")
async def update_ticket(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_WORK)
    body = await read_json(request, "TicketUpdate")
    ticket = await service.update_fields(
        request.app[ENGINE], who, request.match_info["reference"], body
    )
    return web.json_response(ticket)


@routes.post("/api/v1/tickets/{reference}/comments")
async def add_comment(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_COMMENT)
    body = await read_json(request, "CommentCreate")
    ticket = await service.comment(
        request.app[ENGINE], who, request.match_info["reference"], body["body"]
    )
    return web.json_response(ticket, status=201)


@routes.post("/api/v1/tickets/{reference}/actions")
async def ticket_action(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_WORK)
    body = await read_json(request, "TicketAction")
    ticket = await service.act(
        request.app[ENGINE],
        who,
        request.match_info["reference"],
        Action(body["action"]),
        assignee=body.get("assignee"),
        resolution=body.get("resolution"),
        comment=body.get("comment"),
    )
    return web.json_response(ticket)


@routes.post("/api/v1/tickets/{reference}/attachments")
async def upload_attachment(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_COMMENT)
    name = request.query.get("name", "")
    if request.content_length is not None and request.content_length > attachments.MAX_SIZE:
        raise ApiError(413, "payload_too_large", "attachments are limited to 10 MiB")
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", "attachments are limited to 10 MiB") from None
    meta = await attachments.add(
        request.app[ENGINE], who, request.match_info["reference"], name, request.content_type, data
    )
    return web.json_response(meta, status=201)


@routes.get("/api/v1/tickets/{reference}/attachments/{attachment_id}")
async def download_attachment(request: web.Request) -> web.Response:
    who = await require(request, Permission.TICKET_COMMENT)
    raw = request.match_info["attachment_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ApiError(404, "not_found", "no such attachment")
    meta, data = await attachments.fetch(
        request.app[ENGINE], who, request.match_info["reference"], int(raw)
    )
    return web.Response(
        body=data,
        content_type=meta["content_type"],
        headers={
            # Always a download, never rendered: an uploaded page cannot run script here.
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(meta['name'])}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@routes.get("/api/v1/sla-policies")
async def get_sla(request: web.Request) -> web.Response:
    await require(request, Permission.TICKET_COMMENT)
    async with request.app[ENGINE].connect() as conn:
        rows = (await conn.execute(select(sla_policies).order_by(sla_policies.c.priority))).all()
    return web.json_response(
        {
            "policies": [
                {
                    "priority": r.priority,
                    "own_seconds": r.own_seconds,
                    "resolve_seconds": r.resolve_seconds,
                }
                for r in rows
            ]
        }
    )


@routes.put("/api/v1/sla-policies")
async def put_sla(request: web.Request) -> web.Response:
    await require(request, Permission.SLA_MANAGE)
    body = await read_json(request, "SlaPolicies")
    async with request.app[ENGINE].begin() as conn:
        for policy in body["policies"]:
            if policy["own_seconds"] > policy["resolve_seconds"]:
                raise Invalid("own_seconds cannot exceed resolve_seconds", "policies")
            await conn.execute(
                update(sla_policies)
                .where(sla_policies.c.priority == policy["priority"])
                .values(
                    own_seconds=policy["own_seconds"], resolve_seconds=policy["resolve_seconds"]
                )
            )
    return await get_sla(request)


# --- OpenAPI ----------------------------------------------------------------------------


_ERR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    code: {"description": text, "content": {"application/json": {"schema": _ERR}}}
    for code, text in (
        ("400", "Invalid body or parameter (the field is named)"),
        ("401", "Missing or invalid credentials"),
        ("403", "Role not allowed (recorded in the audit log)"),
        ("404", "No such ticket (or not visible to this role)"),
        ("409", "Not allowed in the ticket's current status"),
    )
}
_REF = {
    "name": "reference",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "example": "BD-000123"},
}

PATHS: dict[str, Any] = {
    "/api/v1/tickets": {
        "get": {
            "summary": "Search and list tickets (most urgent first)",
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "words that must all appear",
                },
                {"name": "status", "in": "query", "schema": {"enum": sorted(_STATUS_FILTERS)}},
                {
                    "name": "level",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 3},
                },
                {
                    "name": "assignee",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "a user name, or 'none'",
                },
                {"name": "queue", "in": "query", "schema": {"enum": list(_QUEUES)}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                },
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {"200": spec.ok("TicketList"), **_ERRORS},
        },
        "post": {
            "summary": "Open a ticket (phone call, e-mail, integration)",
            "requestBody": spec.body("TicketCreate"),
            "responses": {"201": spec.ok("TicketDetail", "Created"), **_ERRORS},
        },
    },
    "/api/v1/tickets/{reference}": {
        "get": {
            "summary": "One ticket with its diagnostics, timeline and linked articles",
            "parameters": [_REF],
            "responses": {"200": spec.ok("TicketDetail"), **_ERRORS},
        },
        "patch": {
            "summary": "Change category, subject, impact/urgency or external references",
            "parameters": [_REF],
            "requestBody": spec.body("TicketUpdate"),
            "responses": {"200": spec.ok("TicketDetail"), **_ERRORS},
        },
    },
    "/api/v1/tickets/{reference}/comments": {
        "post": {
            "summary": "Comment on a ticket (the desk's first answer stops the SLA clock)",
            "parameters": [_REF],
            "requestBody": spec.body("CommentCreate"),
            "responses": {"201": spec.ok("TicketDetail", "Created"), **_ERRORS},
        }
    },
    "/api/v1/tickets/{reference}/actions": {
        "post": {
            "summary": "Move a ticket through its lifecycle: take, assign, start, wait_for_user, resume, escalate, dispatch, resolve, close, reopen",
            "parameters": [_REF],
            "requestBody": spec.body("TicketAction"),
            "responses": {"200": spec.ok("TicketDetail"), **_ERRORS},
        }
    },
    "/api/v1/tickets/{reference}/attachments": {
        "post": {
            "summary": "Attach a file (raw body; ?name=FILE; at most 10 MiB)",
            "parameters": [
                _REF,
                {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "201": spec.ok("Attachment", "Created"),
                "413": spec.error("Too large"),
                **_ERRORS,
            },
        }
    },
    "/api/v1/tickets/{reference}/attachments/{attachment_id}": {
        "get": {
            "summary": "Download an attachment (always as a file, never rendered)",
            "parameters": [
                _REF,
                {
                    "name": "attachment_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "responses": {"200": {"description": "The file"}, **_ERRORS},
        }
    },
    "/api/v1/sla-policies": {
        "get": {
            "summary": "Service levels per priority",
            "responses": {"200": spec.ok("SlaPolicies"), **_ERRORS},
        },
        "put": {
            "summary": "Change service levels (admin)",
            "requestBody": spec.body("SlaPolicies"),
            "responses": {"200": spec.ok("SlaPolicies"), **_ERRORS},
        },
    },
}

_TEXT = {"type": "string", "minLength": 1}
_REFS = {
    "type": "object",
    "maxProperties": 10,
    "additionalProperties": {"type": "string", "maxLength": 100},
    "propertyNames": {"maxLength": 40},
}
_LEVEL = {"type": "integer", "minimum": 1, "maximum": 3}

_TICKET = {
    "type": "object",
    "properties": {
        "reference": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "channel": {"enum": list(service.CHANNELS)},
        "requester": {"type": "string"},
        "device_id": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"]},
        "subject": {"type": "string"},
        "description": {"type": "string"},
        "impact": _LEVEL,
        "urgency": _LEVEL,
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "priority_name": {"type": "string"},
        "level": _LEVEL,
        "status": {"enum": [s.value for s in Status]},
        "assignee": {"type": ["string", "null"]},
        "group": {"type": "string"},
        "resolution": {"type": ["string", "null"]},
        "external_refs": {"type": "object"},
        "sla": {"type": "object"},
        "allowed_actions": {"type": "array", "items": {"enum": [a.value for a in Action]}},
    },
}

SCHEMAS: dict[str, Any] = {
    "Attachment": {
        "type": "object",
        "required": ["id", "name", "content_type", "size", "sha256"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer"},
            "sha256": {"type": "string"},
            "uploaded_by": {"type": "string"},
            "uploaded_at": {"type": "string", "format": "date-time"},
        },
    },
    "Ticket": _TICKET,
    "TicketDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Ticket"},
            {
                "type": "object",
                "properties": {
                    "diagnostics": {"type": ["object", "null"]},
                    "device_hostname": {"type": ["string", "null"]},
                    "timeline": {"type": "array", "items": {"type": "object"}},
                    "kb_articles": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
    "TicketList": {
        "type": "object",
        "required": ["tickets", "total"],
        "properties": {
            "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}},
            "total": {"type": "integer"},
        },
    },
    "TicketCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["subject", "description"],
        "properties": {
            "subject": {**_TEXT, "maxLength": 200},
            "description": {**_TEXT, "maxLength": 20000},
            "channel": {"enum": list(service.CHANNELS)},
            "requester": {**_TEXT, "maxLength": 200},
            "device_id": {"type": "string", "maxLength": 64},
            "category": {**_TEXT, "maxLength": 64},
            "impact": _LEVEL,
            "urgency": _LEVEL,
            "level": _LEVEL,
            "external_refs": _REFS,
        },
    },
    "TicketUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "subject": {**_TEXT, "maxLength": 200},
            "category": {**_TEXT, "maxLength": 64},
            "impact": _LEVEL,
            "urgency": _LEVEL,
            "external_refs": _REFS,
        },
    },
    "CommentCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["body"],
        "properties": {"body": {**_TEXT, "maxLength": 20000}},
    },
    "TicketAction": {
        "type": "object",
        "additionalProperties": False,
        "required": ["action"],
        "properties": {
            "action": {"enum": [a.value for a in Action]},
            "assignee": {**_TEXT, "maxLength": 64},
            "resolution": {**_TEXT, "maxLength": 20000},
            "comment": {**_TEXT, "maxLength": 20000},
        },
    },
    "SlaPolicies": {
        "type": "object",
        "additionalProperties": False,
        "required": ["policies"],
        "properties": {
            "policies": {
                "type": "array",
                "minItems": 1,
                "maxItems": 5,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["priority", "own_seconds", "resolve_seconds"],
                    "properties": {
                        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                        "own_seconds": {"type": "integer", "minimum": 1, "maximum": 31536000},
                        "resolve_seconds": {"type": "integer", "minimum": 1, "maximum": 31536000},
                    },
                },
            }
        },
    },
}
