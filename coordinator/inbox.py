"""Messages agents deliver from their durable outbox, committed exactly once.

The agent deletes a message only after our acknowledgement, which we send only after
the commit; a message redelivered after a lost acknowledgement hits the unique
(device, key) constraint and is acknowledged again without a second row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.errors import ErrorCode, ProtocolError

from .clock import utcnow
from .storage.schema import agent_messages, devices

# Kinds this coordinator understands; anything else is refused, not silently stored.
KINDS = frozenset({"device.facts", "event"})
MAX_FACTS_KEYS = 64


async def commit(
    engine: AsyncEngine, device_id: str, key: str, kind: str, body: dict[str, Any]
) -> ProtocolError | None:
    """Store one delivery (or recognise a redelivery). None means acknowledged."""
    if kind not in KINDS:
        return ProtocolError(ErrorCode.INVALID_MESSAGE, f"unknown delivery kind {kind[:40]!r}")
    if kind == "device.facts" and len(body) > MAX_FACTS_KEYS:
        return ProtocolError(ErrorCode.INVALID_MESSAGE, "device.facts has too many fields")
    try:
        await _insert_once(engine, device_id, key, kind, body)
    except IntegrityError:
        pass  # the same key committed concurrently on another connection: already stored
    return None


async def _insert_once(
    engine: AsyncEngine, device_id: str, key: str, kind: str, body: dict[str, Any]
) -> None:
    async with engine.begin() as conn:
        seen = (
            await conn.execute(
                select(agent_messages.c.id).where(
                    agent_messages.c.device_id == device_id,
                    agent_messages.c.idempotency_key == key,
                )
            )
        ).first()
        if seen is not None:
            return
        await conn.execute(
            insert(agent_messages).values(
                device_id=device_id,
                idempotency_key=key,
                kind=kind,
                body=body,
                received_at=utcnow(),
            )
        )
        if kind == "device.facts":
            await conn.execute(update(devices).where(devices.c.id == device_id).values(facts=body))
