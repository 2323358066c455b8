"""Messages agents deliver from their durable outbox, committed exactly once.

The agent deletes a message only after our acknowledgement, which we send only after
the commit; a message redelivered after a lost acknowledgement hits the unique
(device, key) constraint and is acknowledged again, with the same result, without a
second row (or a second ticket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol.errors import ErrorCode, ProtocolError

from . import inventory
from .clock import utcnow
from .storage.schema import agent_messages, devices
from .tickets import service as tickets
from .tickets.service import Actor

MAX_FACTS_KEYS = 64

# What each kind's body must look like; anything else is refused, not silently stored.
BODY_SCHEMAS: dict[str, dict[str, Any]] = {
    "device.facts": {"type": "object", "maxProperties": MAX_FACTS_KEYS},
    "event": {"type": "object"},
    # A GLPI inventory, gzip+base64, full or a section-level diff (inventory.py).
    "inventory": inventory.BODY_SCHEMA,
    "ticket.request": {
        "type": "object",
        "additionalProperties": False,
        "required": ["message", "requester", "request_id"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": 20000},
            "requester": {"type": "string", "minLength": 1, "maxLength": 200},
            "request_id": {"type": "string", "pattern": "^REQ-[0-9A-F]{8}$"},
            "diagnostics": {"type": "object"},
            "findings": {"type": "array", "maxItems": 100, "items": {"type": "object"}},
            "excluded": {
                "type": "array",
                "maxItems": 20,
                "items": {"type": "string", "maxLength": 40},
            },
        },
    },
}
KINDS = frozenset(BODY_SCHEMAS)
_VALIDATORS = {kind: Draft202012Validator(schema) for kind, schema in BODY_SCHEMAS.items()}


def _invalid(kind: str, body: dict[str, Any]) -> ProtocolError | None:
    error = best_match(_VALIDATORS[kind].iter_errors(body))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "body"
    return ProtocolError(ErrorCode.INVALID_MESSAGE, f"{kind}: {where}: {error.message[:150]}")


async def commit(
    engine: AsyncEngine, device_id: str, key: str, kind: str, body: dict[str, Any]
) -> dict[str, Any] | ProtocolError:
    """Store one delivery (or recognise a redelivery); returns the acknowledgement's result."""
    if kind not in KINDS:
        return ProtocolError(ErrorCode.INVALID_MESSAGE, f"unknown delivery kind {kind[:40]!a}")
    refused = _invalid(kind, body)
    if refused is not None:
        return refused
    upload: inventory.Upload | None = None
    if kind == "inventory":
        try:  # decompress and validate (up to 20 MiB) off the event loop
            upload = await asyncio.to_thread(inventory.decode, body, device_id)
        except inventory.Refused as exc:
            return exc.error
    for _attempt in range(2):
        try:
            async with engine.begin() as conn:
                return await _commit_once(conn, device_id, key, kind, body, upload)
        except IntegrityError:
            continue
        except inventory.Refused as exc:  # rolled back: nothing stored
            return exc.error  # the same key committed concurrently on another connection: read it
    return ProtocolError(ErrorCode.SERVER_ERROR, "could not store the delivery; retry later")


async def _commit_once(
    conn: AsyncConnection,
    device_id: str,
    key: str,
    kind: str,
    body: dict[str, Any],
    upload: inventory.Upload | None = None,
) -> dict[str, Any]:
    seen = (
        await conn.execute(
            select(agent_messages.c.result).where(
                agent_messages.c.device_id == device_id,
                agent_messages.c.idempotency_key == key,
            )
        )
    ).first()
    if seen is not None:
        return dict(seen.result or {})
    result: dict[str, Any] = {}
    if kind == "device.facts":
        await conn.execute(update(devices).where(devices.c.id == device_id).values(facts=body))
    elif kind == "ticket.request":
        result["reference"] = await _open_ticket(conn, device_id, body)
    elif kind == "inventory":
        assert upload is not None
        result = await inventory.store(conn, device_id, upload)
        body = {k: v for k, v in body.items() if k != "data"}  # the document is kept once
    await conn.execute(
        insert(agent_messages).values(
            device_id=device_id,
            idempotency_key=key,
            kind=kind,
            body=body,
            received_at=utcnow(),
            result=result,
        )
    )
    return result


async def _open_ticket(conn: AsyncConnection, device_id: str, body: dict[str, Any]) -> str:
    message = body["message"].strip()
    first_line = message.splitlines()[0] if message else "Help requested"
    subject = first_line if len(first_line) <= 120 else first_line[:117] + "..."
    diagnostics = {
        "data": body.get("diagnostics", {}),
        "findings": body.get("findings", []),
        "excluded": body.get("excluded", []),
    }
    return await tickets.create_in(
        conn,
        Actor(f"agent:{device_id[:8]}"),
        subject=subject,
        description=message,
        channel="agent",
        requester=body["requester"],
        device_id=device_id,
        external_refs={"agent_request": body["request_id"]},
        diagnostics=diagnostics,
    )
