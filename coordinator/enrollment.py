"""One-time, expiring enrollment tokens, and the devices they enroll.

Tokens are stored hashed. Consuming a token and creating the device happen in one
transaction, with a conditional update, so two agents racing with the same token
cannot both win.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol.errors import ErrorCode, ProtocolError

from . import audit
from .clock import utcnow
from .errors import ConfigError
from .storage.schema import devices, enrollment_tokens

TOKEN_PREFIX = "bdt_"
DEFAULT_LIFETIME = timedelta(hours=24)
MAX_LIFETIME = timedelta(days=30)
_DURATION_RE = re.compile(r"^(\d{1,7})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,253}$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ConfigError(f"bad duration {text!r}: use a number and s, m, h or d, like 24h")
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not timedelta(0) < value <= MAX_LIFETIME:
        raise ConfigError(f"token lifetime must be between 1s and {MAX_LIFETIME.days}d")
    return value


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    engine: AsyncEngine, lifetime: timedelta = DEFAULT_LIFETIME, actor: str = "cli"
) -> tuple[str, datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(enrollment_tokens).values(
                token_hash=_hash(token), created_at=now, expires_at=now + lifetime
            )
        )
        await audit.append(
            conn, actor, "token.created", "", {"expires_at": (now + lifetime).isoformat()}
        )
    return token, now + lifetime


async def enroll(
    engine: AsyncEngine, token: str, public_key: bytes, hostname: str, agent_version: str | None
) -> str | ProtocolError:
    """Spend ``token`` on a new device. Returns its id, or why the token was refused."""
    if not _HOSTNAME_RE.match(hostname):
        return ProtocolError(ErrorCode.INVALID_MESSAGE, "hostname has characters not allowed")
    now = utcnow()
    token_hash = _hash(token)
    device_id = str(uuid.uuid4())
    try:
        async with engine.begin() as conn:
            spent = await conn.execute(
                update(enrollment_tokens)
                .where(
                    enrollment_tokens.c.token_hash == token_hash,
                    enrollment_tokens.c.used_at.is_(None),
                    enrollment_tokens.c.expires_at > now,
                )
                .values(used_at=now, device_id=device_id)
            )
            if spent.rowcount != 1:
                return await _why_refused(conn, token_hash)
            await conn.execute(
                insert(devices).values(
                    id=device_id,
                    hostname=hostname,
                    public_key=public_key,
                    agent_version=agent_version,
                    enrolled_at=now,
                )
            )
            await audit.append(
                conn, f"agent:{device_id[:8]}", "device.enrolled", device_id, {"hostname": hostname}
            )
    except IntegrityError:
        # The token's update is rolled back with the insert: it stays usable.
        return ProtocolError(
            ErrorCode.BAD_TOKEN, "this identity key is already enrolled; keep using it"
        )
    return device_id


async def _why_refused(conn: AsyncConnection, token_hash: bytes) -> ProtocolError:
    row = (
        await conn.execute(
            select(enrollment_tokens).where(enrollment_tokens.c.token_hash == token_hash)
        )
    ).first()
    if row is None:
        return ProtocolError(
            ErrorCode.BAD_TOKEN, "unknown enrollment token: check it or ask for a new one"
        )
    if row.used_at is not None:
        return ProtocolError(
            ErrorCode.TOKEN_USED,
            "token already used: ask your administrator for a new enrollment token",
        )
    return ProtocolError(
        ErrorCode.TOKEN_EXPIRED, "token expired: ask your administrator for a new enrollment token"
    )
