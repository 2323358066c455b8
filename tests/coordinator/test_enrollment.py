"""One-time, expiring enrollment tokens, at the storage level, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator.enrollment import create_token, enroll
from coordinator.storage.schema import devices, enrollment_tokens
from protocol.errors import ErrorCode, ProtocolError


def new_public_key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes_raw()


async def rows(engine: AsyncEngine, table: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(table))).all())


async def device_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(devices))).scalar_one())


def assert_refused(result: str | ProtocolError, code: ErrorCode) -> None:
    assert isinstance(result, ProtocolError), result
    assert result.code == code, result


async def test_a_token_enrolls_exactly_once(engine: AsyncEngine) -> None:
    token, _ = await create_token(engine)
    key = new_public_key()
    device_id = await enroll(engine, token, key, "desk-01", "0.1.0")
    assert isinstance(device_id, str)

    (device,) = await rows(engine, devices)
    assert (device.id, device.hostname, bytes(device.public_key), device.agent_version) == (
        device_id,
        "desk-01",
        key,
        "0.1.0",
    )
    (stored,) = await rows(engine, enrollment_tokens)
    assert stored.used_at is not None and stored.device_id == device_id

    again = await enroll(engine, token, new_public_key(), "desk-02", "0.1.0")
    assert_refused(again, ErrorCode.TOKEN_USED)
    assert await device_count(engine) == 1
    (after,) = await rows(engine, enrollment_tokens)
    assert after.device_id == device_id and after.used_at == stored.used_at


async def test_an_expired_token_is_refused(engine: AsyncEngine) -> None:
    token, expires_at = await create_token(engine, timedelta(seconds=1))
    await asyncio.sleep(1.2)
    result = await enroll(engine, token, new_public_key(), "desk-01", None)
    assert_refused(result, ErrorCode.TOKEN_EXPIRED)
    assert await device_count(engine) == 0
    (stored,) = await rows(engine, enrollment_tokens)
    assert stored.used_at is None and stored.expires_at == expires_at


async def test_an_unknown_token_is_refused(engine: AsyncEngine) -> None:
    await create_token(engine)
    result = await enroll(engine, "bdt_not-a-real-token", new_public_key(), "desk-01", None)
    assert_refused(result, ErrorCode.BAD_TOKEN)
    assert await device_count(engine) == 0
    (stored,) = await rows(engine, enrollment_tokens)
    assert stored.used_at is None


async def test_racing_enrollments_with_one_token_make_one_device(engine: AsyncEngine) -> None:
    token, _ = await create_token(engine)
    results = await asyncio.gather(
        *(enroll(engine, token, new_public_key(), f"racer-{i}", None) for i in range(5))
    )
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, ProtocolError)]
    assert len(winners) == 1, results
    assert len(losers) == 4 and {r.code for r in losers} == {ErrorCode.TOKEN_USED}, results
    (device,) = await rows(engine, devices)
    assert device.id == winners[0]
    (stored,) = await rows(engine, enrollment_tokens)
    assert stored.device_id == winners[0]


async def test_the_token_is_stored_only_hashed(engine: AsyncEngine) -> None:
    token, _ = await create_token(engine)
    (stored,) = await rows(engine, enrollment_tokens)
    for value in stored:
        if isinstance(value, bytes | bytearray | memoryview):
            assert token.encode() not in bytes(value)
        assert token not in str(value)
    # Still usable: the hash is what is compared.
    assert isinstance(await enroll(engine, token, new_public_key(), "desk-01", None), str)
    (spent,) = await rows(engine, enrollment_tokens)
    assert all(token not in str(value) for value in spent)


async def test_failed_enrollments_leave_devices_unchanged(engine: AsyncEngine) -> None:
    first, _ = await create_token(engine)
    enrolled_key = new_public_key()
    assert isinstance(await enroll(engine, first, enrolled_key, "desk-01", None), str)
    before = await rows(engine, devices)
    expired, _ = await create_token(engine, timedelta(seconds=1))
    fresh, _ = await create_token(engine)
    await asyncio.sleep(1.2)

    attempts = [
        (first, new_public_key(), "desk-02", ErrorCode.TOKEN_USED),
        (expired, new_public_key(), "desk-03", ErrorCode.TOKEN_EXPIRED),
        ("bdt_unknown", new_public_key(), "desk-04", ErrorCode.BAD_TOKEN),
        (fresh, new_public_key(), "bad host name;", ErrorCode.INVALID_MESSAGE),
        (fresh, enrolled_key, "desk-05", ErrorCode.BAD_TOKEN),
    ]
    for token, key, hostname, code in attempts:
        assert_refused(await enroll(engine, token, key, hostname, None), code)
        assert await rows(engine, devices) == before
    # None of the refusals spent the fresh token.
    assert isinstance(await enroll(engine, fresh, new_public_key(), "desk-06", None), str)


async def test_reenrolling_a_known_key_is_refused_and_keeps_the_token(
    engine: AsyncEngine,
) -> None:
    first, _ = await create_token(engine)
    key = new_public_key()
    device_id = await enroll(engine, first, key, "desk-01", None)
    assert isinstance(device_id, str)

    fresh, _ = await create_token(engine)
    result = await enroll(engine, fresh, key, "desk-01", None)
    assert isinstance(result, ProtocolError)
    assert "already enrolled" in result.message
    (device,) = await rows(engine, devices)
    assert device.id == device_id
    tokens = {row.device_id: row for row in await rows(engine, enrollment_tokens)}
    assert set(tokens) == {device_id, None}
    assert tokens[None].used_at is None  # the fresh token stays unused ...
    other = await enroll(engine, fresh, new_public_key(), "desk-02", None)
    assert isinstance(other, str)  # ... and can still enroll another machine


async def test_one_key_racing_with_two_tokens_enrolls_once(engine: AsyncEngine) -> None:
    (a, _), (b, _) = await create_token(engine), await create_token(engine)
    key = new_public_key()
    results = await asyncio.gather(
        enroll(engine, a, key, "desk-01", None), enroll(engine, b, key, "desk-01", None)
    )
    assert sorted(type(r).__name__ for r in results) == ["ProtocolError", "str"], results
    assert await device_count(engine) == 1
    used = [row for row in await rows(engine, enrollment_tokens) if row.used_at is not None]
    assert len(used) == 1  # the losing token was not spent
