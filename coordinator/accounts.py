"""Technician accounts and API keys.

Passwords are hashed with Argon2id (argon2-cffi's defaults). API keys are 256-bit random
strings: a fast SHA-256 is enough to store them, and lets a request be authenticated
with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import audit
from .clock import utcnow
from .errors import ConfigError, Conflict, NotFound
from .storage.schema import ROLES, api_keys, users

API_KEY_PREFIX = "bdk_"
MIN_PASSWORD_LENGTH = 10
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    user_id: int
    name: str
    role: str


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigError(
            "user names are 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


ISSUER = "Backdesk"


@dataclass(frozen=True)
class NewUser:
    id: int
    name: str
    role: str
    totp_uri: str  # otpauth://... for the authenticator app; shown once


async def add_user(
    engine: AsyncEngine,
    name: str,
    role: str,
    password: str,
    actor: str = "cli",
    full_name: str | None = None,
) -> NewUser:
    """Create an account with a fresh TOTP secret (second factor for the console)."""
    validate_name(name)
    validate_password(password)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    password_hash = _hasher.hash(password)
    secret = pyotp.random_base32()
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                insert(users).values(
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    disabled=False,
                    created_at=utcnow(),
                    totp_secret=secret,
                    full_name=full_name,
                )
            )
            user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            await audit.append(conn, actor, "user.created", name, {"role": role})
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
    return NewUser(user_id, name, role, uri)


def totp_ok(secret: str | None, code: str) -> bool:
    """A current code (one step of clock drift either way is accepted)."""
    code = code.strip().replace(" ", "")
    if not secret or not code.isdigit() or len(code) != 6:
        return False
    return bool(pyotp.TOTP(secret).verify(code, valid_window=1))


async def totp_secret(engine: AsyncEngine, user_id: int) -> str | None:
    async with engine.connect() as conn:
        secret = (
            await conn.execute(select(users.c.totp_secret).where(users.c.id == user_id))
        ).scalar_one_or_none()
    return None if secret is None else str(secret)


async def update_user(
    engine: AsyncEngine,
    actor: str,
    name: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    full_name: str | None = None,
) -> dict[str, object]:
    async with engine.begin() as conn:
        row = (await conn.execute(select(users).where(users.c.name == name))).first()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        changes: dict[str, object] = {}
        if role is not None and role != row.role:
            if role not in ROLES:
                raise ConfigError(f"unknown role {role!r}")
            changes["role"] = role
            await audit.append(
                conn, actor, "user.role_changed", name, {"from": row.role, "to": role}
            )
        if disabled is not None and disabled != row.disabled:
            changes["disabled"] = disabled
            await audit.append(conn, actor, "user.disabled" if disabled else "user.enabled", name)
        if full_name is not None:
            changes["full_name"] = full_name
        if changes:
            await conn.execute(update(users).where(users.c.id == row.id).values(**changes))
    return {
        "id": row.id,
        "name": row.name,
        "role": changes.get("role", row.role),
        "disabled": changes.get("disabled", row.disabled),
        "full_name": changes.get("full_name", row.full_name),
    }


async def check_password(engine: AsyncEngine, name: str, password: str) -> Principal | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(users).where(users.c.name == name, ~users.c.disabled))
        ).first()
    if row is None:
        # Spend the same time as a real check so names cannot be probed by timing.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return Principal(row.id, row.name, row.role)


def _hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_api_key(engine: AsyncEngine, user_name: str, actor: str = "cli") -> str:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        user_id = (
            await conn.execute(select(users.c.id).where(users.c.name == user_name))
        ).scalar_one_or_none()
        if user_id is None:
            raise NotFound(f"no user named {user_name!r}: create it with `user add` first")
        await conn.execute(
            insert(api_keys).values(
                user_id=user_id,
                prefix=key[: len(API_KEY_PREFIX) + 6],
                key_hash=_hash_key(key),
                created_at=utcnow(),
            )
        )
        await audit.append(conn, actor, "apikey.created", user_name, {"prefix": key[:10]})
    return key


async def principal_for_api_key(engine: AsyncEngine, key: str) -> Principal | None:
    if not key.startswith(API_KEY_PREFIX) or len(key) > 128:
        return None
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(api_keys.c.id, users.c.id.label("user_id"), users.c.name, users.c.role)
                .join(users, users.c.id == api_keys.c.user_id)
                .where(
                    api_keys.c.key_hash == _hash_key(key),
                    api_keys.c.revoked_at.is_(None),
                    ~users.c.disabled,
                )
            )
        ).first()
        if row is None:
            return None
        await conn.execute(
            update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=utcnow())
        )
    return Principal(row.user_id, row.name, row.role)


async def list_users(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(users).order_by(users.c.name))).all()
    return [{"id": r.id, "name": r.name, "role": r.role, "disabled": r.disabled} for r in rows]
