"""Domain events: what happened on the desk, for webhooks and anyone else listening.

:func:`publish` runs in the transaction of the change it describes, and fans out one
pending delivery per subscribed webhook there too: an event is never lost between the
commit and the webhook queue, nor sent for a change that rolled back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .clock import isoformat, utcnow
from .storage.schema import events, webhook_deliveries, webhooks

EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "ticket.escalated",
    "sla.breached",
    "session.started",
    "session.ended",
)


async def publish(conn: AsyncConnection, event_type: str, payload: dict[str, Any]) -> int:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = utcnow()
    result = await conn.execute(
        insert(events).values(type=event_type, at=now, payload=payload).returning(events.c.id)
    )
    event_id = int(result.scalar_one())
    subscribed = (
        await conn.execute(select(webhooks.c.id, webhooks.c.events).where(webhooks.c.active))
    ).all()
    for hook in subscribed:
        if "*" in hook.events or event_type in hook.events:
            await conn.execute(
                insert(webhook_deliveries).values(
                    webhook_id=hook.id, event_id=event_id, attempts=0, next_attempt_at=now
                )
            )
    return event_id


def envelope(event_id: int, event_type: str, at: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON a webhook receiver gets."""
    return {"id": event_id, "type": event_type, "at": isoformat(at), "data": payload}
