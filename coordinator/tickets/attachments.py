"""Files attached to tickets: screenshots, logs, exports.

Stored in the database with their SHA-256, capped in size, and always served as a
download (never rendered by the browser), so a file cannot run script in the console.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import events
from ..accounts import Principal
from ..clock import isoformat, utcnow
from ..errors import Invalid, NotFound
from ..storage.schema import ticket_attachments, tickets
from . import service

MAX_SIZE = 10 * 1024 * 1024
MAX_PER_TICKET = 50
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]{0,50}/[\w.+-]{1,80}$")


def clean_name(name: str) -> str:
    """A file name without path parts or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    if not name:
        raise Invalid("the attachment needs a file name", "name")
    return name[:200]


def clean_type(content_type: str) -> str:
    return content_type if _CONTENT_TYPE.match(content_type) else "application/octet-stream"


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": isoformat(row.uploaded_at),
    }


async def listing(conn: AsyncConnection, ticket_id: int) -> list[dict[str, Any]]:
    columns = [c for c in ticket_attachments.c if c.name != "data"]
    rows = (
        await conn.execute(
            select(*columns)
            .where(ticket_attachments.c.ticket_id == ticket_id)
            .order_by(ticket_attachments.c.id)
        )
    ).all()
    return [_public(r) for r in rows]


async def add(
    engine: AsyncEngine, who: Principal, reference: str, name: str, content_type: str, data: bytes
) -> dict[str, Any]:
    name = clean_name(name)
    if not data:
        raise Invalid("the attachment is empty", "body")
    if len(data) > MAX_SIZE:
        raise Invalid(f"attachments are limited to {MAX_SIZE // 2**20} MiB", "body")
    async with engine.begin() as conn:
        row = await service.visible_row(conn, reference, who)
        if len(await listing(conn, row.id)) >= MAX_PER_TICKET:
            raise Invalid(f"a ticket holds at most {MAX_PER_TICKET} attachments", "body")
        now = utcnow()
        values = {
            "ticket_id": row.id,
            "name": name,
            "content_type": clean_type(content_type),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "uploaded_by": who.name,
            "uploaded_at": now,
        }
        attachment_id = int(
            (
                await conn.execute(
                    insert(ticket_attachments)
                    .values(data=data, **values)
                    .returning(ticket_attachments.c.id)
                )
            ).scalar_one()
        )
        await service.record(
            conn,
            row.reference,
            service.Actor.of(who),
            "attachment",
            {"id": attachment_id, "name": name, "size": len(data)},
        )
        await conn.execute(update(tickets).where(tickets.c.id == row.id).values(updated_at=now))
        await events.publish(
            conn,
            "ticket.updated",
            {"reference": row.reference, "subject": row.subject, "attachment": name},
        )
    return {"id": attachment_id, **{k: v for k, v in values.items() if k != "ticket_id"}} | {
        "uploaded_at": isoformat(now)
    }


async def fetch(
    engine: AsyncEngine, who: Principal, reference: str, attachment_id: int
) -> tuple[dict[str, Any], bytes]:
    async with engine.connect() as conn:
        row = await service.visible_row(conn, reference, who)
        found = (
            await conn.execute(
                select(ticket_attachments).where(
                    ticket_attachments.c.id == attachment_id,
                    ticket_attachments.c.ticket_id == row.id,
                )
            )
        ).first()
    if found is None:
        raise NotFound(f"no attachment {attachment_id} on {row.reference}")
    return _public(found), bytes(found.data)
