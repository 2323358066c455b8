"""The SLA watchdog: tickets nobody owned or answered in time move up, and the world hears.

``check`` is one pass; the coordinator runs it every ``sla_check_interval`` seconds. A
breach is recorded on the ticket (``own_breached_at``/``resolve_breached_at``), so each
is handled once even with several coordinator nodes running the watchdog.

- time to own passed with no owner and no answer: ``sla.breached`` (kind ``own``), and
  the ticket is escalated one level (up to 3) so the next queue sees it;
- time to resolve passed: ``sla.breached`` (kind ``resolve``), the group is notified
  through the event (webhooks) and the timeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import audit, events
from ..clock import isoformat, utcnow
from ..settings import ENGINE, SETTINGS
from ..storage.schema import ticket_events, tickets
from .lifecycle import OPEN_STATUSES, Status
from .priority import service_level

log = logging.getLogger(__name__)
_OPEN = [s.value for s in OPEN_STATUSES]


async def _breach(conn: AsyncConnection, row: Any, kind: str) -> bool:
    """Mark one breach if nobody else did; True when this call did."""
    now = utcnow()
    column = tickets.c.own_breached_at if kind == "own" else tickets.c.resolve_breached_at
    changes: dict[str, Any] = {column.name: now, "updated_at": now}
    escalate = kind == "own" and row.level < 3
    if escalate:
        level_sla = await service_level(conn, row.priority)
        changes.update(
            level=row.level + 1,
            group_name=f"l{row.level + 1}",
            status=Status.ESCALATED.value,
            own_due_at=now + level_sla.own,
            own_breached_at=None,
        )
    # Claimed only if nobody (another node's watchdog, a technician) changed it since we
    # read it: same level, still unowned for "own", still unbreached.
    guard = [tickets.c.id == row.id, column.is_(None), tickets.c.level == row.level]
    if kind == "own":
        guard.append(tickets.c.owned_at.is_(None))
    claimed = await conn.execute(update(tickets).where(*guard).values(**changes))
    if claimed.rowcount != 1:
        return False
    due = row.own_due_at if kind == "own" else row.resolve_due_at
    data = {"kind": kind, "due_at": isoformat(due), "level": row.level}
    await conn.execute(
        ticket_events.insert().values(
            ticket_id=row.id, at=now, actor="system", kind="sla_breached", data=data
        )
    )
    payload = {"reference": row.reference, "subject": row.subject, "priority": row.priority, **data}
    await events.publish(conn, "sla.breached", payload)
    if escalate:
        await conn.execute(
            ticket_events.insert().values(
                ticket_id=row.id,
                at=now,
                actor="system",
                kind="level",
                data={"from": row.level, "to": row.level + 1, "reason": "sla"},
            )
        )
        await events.publish(conn, "ticket.escalated", {**payload, "to": row.level + 1})
        await audit.append(
            conn,
            "system",
            "ticket.escalated",
            row.reference,
            {"from": row.level, "to": row.level + 1, "reason": "sla.own"},
        )
    return True


async def check(engine: AsyncEngine) -> int:
    """One pass over open tickets; returns how many breaches it recorded."""
    now = utcnow()
    found = 0
    async with engine.connect() as conn:
        unowned = (
            await conn.execute(
                select(tickets).where(
                    tickets.c.status.in_(_OPEN),
                    tickets.c.owned_at.is_(None),
                    tickets.c.answered_at.is_(None),
                    tickets.c.own_breached_at.is_(None),
                    tickets.c.own_due_at <= now,
                )
            )
        ).all()
        unresolved = (
            await conn.execute(
                select(tickets).where(
                    and_(
                        tickets.c.status.in_(_OPEN),
                        tickets.c.resolve_breached_at.is_(None),
                        tickets.c.resolve_due_at <= now,
                    )
                )
            )
        ).all()
    for kind, rows in (("own", unowned), ("resolve", unresolved)):
        for row in rows:
            async with engine.begin() as conn:
                if await _breach(conn, row, kind):
                    found += 1
                    log.info("SLA %s breached on %s", kind, row.reference)
    return found


async def watchdog(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: run ``check`` periodically while the app runs."""

    async def loop() -> None:
        interval = app[SETTINGS].sla_check_interval
        while True:
            try:
                await check(app[ENGINE])
            except Exception:
                log.exception("SLA check failed; trying again in %s s", interval)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="sla-watchdog")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
