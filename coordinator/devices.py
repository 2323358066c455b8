"""Devices: what the desk knows about each enrolled endpoint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .clock import isoformat, utcnow
from .presence import Presence
from .storage.schema import devices


async def public_key(engine: AsyncEngine, device_id: str) -> bytes | None:
    async with engine.connect() as conn:
        key = (
            await conn.execute(select(devices.c.public_key).where(devices.c.id == device_id))
        ).scalar_one_or_none()
    return bytes(key) if key is not None else None


async def mark_seen(engine: AsyncEngine, device_id: str, agent_version: str | None = None) -> None:
    values: dict[str, Any] = {"last_seen_at": utcnow()}
    if agent_version is not None:
        values["agent_version"] = agent_version
    async with engine.begin() as conn:
        await conn.execute(update(devices).where(devices.c.id == device_id).values(**values))


def _public(row: Any, presence: Presence) -> dict[str, Any]:
    return {
        "id": row.id,
        "hostname": row.hostname,
        "online": presence.is_online(row.id),
        "last_seen": isoformat(row.last_seen_at),
        "enrolled_at": isoformat(row.enrolled_at),
        "agent_version": row.agent_version,
        "facts": row.facts or {},
    }


async def list_devices(engine: AsyncEngine, presence: Presence) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(devices).order_by(devices.c.hostname))).all()
    return [_public(row, presence) for row in rows]


async def get_device(
    engine: AsyncEngine, presence: Presence, device_id: str
) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(devices).where(devices.c.id == device_id))).first()
    return None if row is None else _public(row, presence)
