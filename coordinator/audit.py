"""The audit log: append-only and hash-chained.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON of its
own fields, so changing or removing any row breaks every hash after it, and
``backdesk-coordinator audit verify`` names the first entry that no longer fits.

Appends run inside the caller's transaction (the entry commits with the change it
records, or not at all) and start by updating the one-row head table, which serialises
concurrent appenders on every database.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .clock import isoformat, utcnow
from .storage.schema import audit_head, audit_log

GENESIS = bytes(32)


def entry_hash(
    prev_hash: bytes,
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
) -> bytes:
    canonical = json.dumps(
        {
            "id": entry_id,
            "at": isoformat(at),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(prev_hash + canonical.encode()).digest()


async def append(
    conn: AsyncConnection,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Record a security-relevant event in the caller's transaction; returns its id."""
    details = details or {}
    # Taking the head row first is what serialises appenders (a write lock on SQLite,
    # a row lock on PostgreSQL).
    await conn.execute(
        update(audit_head).where(audit_head.c.id == 1).values(last_id=audit_head.c.last_id + 1)
    )
    head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).one()
    entry_id = int(head.last_id)
    prev = bytes(head.last_hash)
    # Microseconds are dropped: what is hashed must survive a round trip through any
    # database's timestamp type unchanged.
    at = utcnow().replace(microsecond=0)
    digest = entry_hash(prev, entry_id, at, actor, action, target[:200], details)
    await conn.execute(
        insert(audit_log).values(
            id=entry_id,
            at=at,
            actor=actor[:64],
            action=action,
            target=target[:200],
            details=details,
            prev_hash=prev,
            hash=digest,
        )
    )
    await conn.execute(update(audit_head).where(audit_head.c.id == 1).values(last_hash=digest))
    return entry_id


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str = ""


async def verify(engine: AsyncEngine) -> Verification:
    """Walk the chain from the start; report the first entry that does not fit."""
    prev = GENESIS
    expected_id = 1
    count = 0
    async with engine.connect() as conn:
        result = await conn.stream(select(audit_log).order_by(audit_log.c.id))
        async for row in result:
            if row.id != expected_id:
                return Verification(False, count, expected_id, f"entry {expected_id} is missing")
            if bytes(row.prev_hash) != prev:
                return Verification(False, count, row.id, "previous-hash link is broken")
            digest = entry_hash(
                prev, row.id, row.at, row.actor, row.action, row.target, row.details
            )
            if digest != bytes(row.hash):
                return Verification(False, count, row.id, "content does not match its hash")
            prev = digest
            expected_id += 1
            count += 1
        head = (await conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
    if head is not None and (head.last_id != count or bytes(head.last_hash) != prev):
        return Verification(
            False, count, count + 1, f"entries after {count} were removed (head is {head.last_id})"
        )
    return Verification(True, count)


async def recent(
    engine: AsyncEngine, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "id": r.id,
            "at": isoformat(r.at),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "details": r.details,
            "hash": bytes(r.hash).hex(),
        }
        for r in rows
    ]
