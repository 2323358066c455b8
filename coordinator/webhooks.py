"""Outbound webhooks: subscriptions, signing, and the dispatcher that delivers them.

What a receiver gets
--------------------
One ``POST`` per event, body ``application/json`` (see :func:`coordinator.events.envelope`)::

    {"id": 42, "type": "ticket.created", "at": "2026-01-02T03:04:05.678Z", "data": {...}}

with these headers:

``X-Backdesk-Event``       the event type, e.g. ``ticket.created``
``X-Backdesk-Delivery``    the delivery id: unique per (webhook, event), the same on retries
``X-Backdesk-Timestamp``   unix seconds when this attempt was signed
``X-Backdesk-Signature``   ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)

Answer any 2xx once the event is safely stored. Anything else (another status, a
redirect, no answer within 10 s, a closed port) is retried with exponential backoff
(1 s doubling up to 5 min, with jitter) for as long as it takes: deliveries are rows in
the database, so a coordinator restart resumes them.

Ordering and duplicates
-----------------------
Each webhook receives its events **in order** (ascending event ``id``): only the oldest
undelivered event of a webhook is ever attempted, so a failing one holds back the ones
after it for that webhook (other webhooks are independent). Delivery is **at least
once**: if the coordinator dies after the receiver answered but before it recorded the
answer, the event is sent again. Receivers must deduplicate on ``X-Backdesk-Delivery``
(or on the event ``id``). On PostgreSQL with several writers, events are ordered by id,
which is the order in which they were created, not necessarily the order of commit.

Verifying a request (copy this into the receiver)
--------------------------------------------------
:func:`verify_signature` uses only the standard library::

    ok = verify_signature(secret, request.headers["X-Backdesk-Timestamp"], raw_body,
                          request.headers["X-Backdesk-Signature"])

It checks the HMAC over the *raw* body bytes (before any JSON parsing) in constant time,
and refuses timestamps more than ``tolerance`` seconds away from now, so a captured
request cannot be replayed later.

Several coordinators
--------------------
Nodes sharing one database may all run the dispatcher. Before sending, a node *claims*
the delivery with a conditional ``UPDATE`` that pushes ``next_attempt_at`` into the future
(a lease) only if it is still due; the node whose update changed the row sends it, the
others skip it. A node that dies mid-send leaves a lease that simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from yarl import URL

from . import __version__
from .clock import isoformat, utcnow
from .events import envelope
from .settings import ENGINE, SETTINGS
from .storage.schema import events, webhook_deliveries, webhooks

log = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0  # seconds a receiver has to answer
# A claimed delivery is left alone by other nodes this long: longer than any send.
LEASE = timedelta(seconds=SEND_TIMEOUT + 5)
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
MAX_PARALLEL_WEBHOOKS = 16
SIGNATURE_TOLERANCE = 300
USER_AGENT = f"Backdesk-Webhook/{__version__}"


# --- signing ----------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Backdesk-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes,
    signature: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is ours over ``timestamp`` and ``body``, and is recent.

    ``timestamp`` and ``signature`` are the ``X-Backdesk-Timestamp`` and
    ``X-Backdesk-Signature`` headers; ``body`` the raw request body.
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    scheme, _, received = signature.partition("=")
    if scheme != "sha256" or not received:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = hmac.new(key, f"{sent_at}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: doubling, capped, jittered."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(max(attempts - 1, 0), 20))
    # "Equal jitter": half fixed, half random, so nodes and webhooks spread out but a
    # retry never comes sooner than half the nominal delay (and never under 1 s).
    return max(BACKOFF_BASE, delay / 2 + random.uniform(0, delay / 2))  # noqa: S311


# --- subscriptions ----------------------------------------------------------------------


def public_url(url: str) -> str:
    """The URL without a password, for the audit log and listings."""
    parsed = URL(url)
    return str(parsed.with_password(None)) if parsed.password else url


async def create(
    conn: AsyncConnection, url: str, event_types: Sequence[str], secret: str | None = None
) -> dict[str, Any]:
    """Subscribe ``url`` to ``event_types`` (or ``["*"]``); the result carries the secret."""
    kinds = ["*"] if "*" in event_types else list(dict.fromkeys(event_types))
    secret = secret or new_secret()
    now = utcnow()
    result = await conn.execute(
        insert(webhooks)
        .values(url=url, secret=secret, events=kinds, active=True, created_at=now)
        .returning(webhooks.c.id)
    )
    return {
        "id": int(result.scalar_one()),
        "url": url,
        "events": kinds,
        "active": True,
        "created_at": isoformat(now),
        "secret": secret,
    }


async def remove(conn: AsyncConnection, webhook_id: int) -> dict[str, Any] | None:
    """Delete a subscription and its queue; returns what it was, or None if unknown."""
    row = (
        await conn.execute(
            select(webhooks.c.id, webhooks.c.url, webhooks.c.events).where(
                webhooks.c.id == webhook_id
            )
        )
    ).first()
    if row is None:
        return None
    await conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook_id == row.id))
    await conn.execute(delete(webhooks).where(webhooks.c.id == row.id))
    return {"id": row.id, "url": public_url(row.url), "events": row.events}


async def list_webhooks(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every active subscription with its queue length and why its queue is stuck."""
    pending = (
        select(
            webhook_deliveries.c.webhook_id,
            func.count().label("pending"),
            func.min(webhook_deliveries.c.event_id).label("head_event_id"),
        )
        .where(webhook_deliveries.c.delivered_at.is_(None))
        .group_by(webhook_deliveries.c.webhook_id)
        .subquery()
    )
    delivered = (
        select(
            webhook_deliveries.c.webhook_id,
            func.max(webhook_deliveries.c.delivered_at).label("last_delivered_at"),
        )
        .where(webhook_deliveries.c.delivered_at.is_not(None))
        .group_by(webhook_deliveries.c.webhook_id)
        .subquery()
    )
    head = webhook_deliveries.alias("head")
    query = (
        select(
            webhooks.c.id,
            webhooks.c.url,
            webhooks.c.events,
            webhooks.c.active,
            webhooks.c.created_at,
            func.coalesce(pending.c.pending, 0).label("pending"),
            head.c.last_error,
            head.c.attempts,
            head.c.next_attempt_at,
            delivered.c.last_delivered_at,
        )
        .select_from(webhooks)
        .outerjoin(pending, pending.c.webhook_id == webhooks.c.id)
        .outerjoin(
            head,
            and_(head.c.webhook_id == webhooks.c.id, head.c.event_id == pending.c.head_event_id),
        )
        .outerjoin(delivered, delivered.c.webhook_id == webhooks.c.id)
        .where(webhooks.c.active)
        .order_by(webhooks.c.id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "id": r.id,
            "url": public_url(r.url),
            "events": r.events,
            "active": r.active,
            "created_at": isoformat(r.created_at),
            "pending": int(r.pending),
            "last_error": r.last_error,
            "next_attempt_at": isoformat(r.next_attempt_at) if r.pending else None,
            "last_delivered_at": isoformat(r.last_delivered_at),
        }
        for r in rows
    ]


def _status(delivered_at: datetime | None, attempts: int) -> str:
    if delivered_at is not None:
        return "delivered"
    return "retrying" if attempts else "pending"


async def list_deliveries(
    engine: AsyncEngine, webhook_id: int, limit: int = 50
) -> list[dict[str, Any]] | None:
    """The newest deliveries of a webhook, newest first; None if the webhook is unknown."""
    async with engine.connect() as conn:
        exists = (
            await conn.execute(select(webhooks.c.id).where(webhooks.c.id == webhook_id))
        ).first()
        if exists is None:
            return None
        rows = (
            await conn.execute(
                select(
                    webhook_deliveries.c.id,
                    webhook_deliveries.c.event_id,
                    events.c.type,
                    webhook_deliveries.c.attempts,
                    webhook_deliveries.c.next_attempt_at,
                    webhook_deliveries.c.delivered_at,
                    webhook_deliveries.c.last_error,
                )
                .join(events, events.c.id == webhook_deliveries.c.event_id)
                .where(webhook_deliveries.c.webhook_id == webhook_id)
                .order_by(webhook_deliveries.c.event_id.desc())
                .limit(limit)
            )
        ).all()
    return [
        {
            "id": r.id,
            "event_id": r.event_id,
            "event_type": r.type,
            "status": _status(r.delivered_at, r.attempts),
            "attempts": r.attempts,
            "next_attempt_at": None if r.delivered_at else isoformat(r.next_attempt_at),
            "delivered_at": isoformat(r.delivered_at),
            "last_error": r.last_error,
        }
        for r in rows
    ]


# --- delivery ---------------------------------------------------------------------------


def _heads(webhook_id: int | None = None) -> Any:
    """The oldest undelivered event of each webhook: the only one that may be sent."""
    query = select(
        webhook_deliveries.c.webhook_id,
        func.min(webhook_deliveries.c.event_id).label("event_id"),
    ).where(webhook_deliveries.c.delivered_at.is_(None))
    if webhook_id is not None:
        query = query.where(webhook_deliveries.c.webhook_id == webhook_id)
    return query.group_by(webhook_deliveries.c.webhook_id).subquery()


class Dispatcher:
    """Polls for due deliveries and sends them, one webhook at a time, in order.

    Each webhook with a due head gets its own task, which drains that webhook's queue
    while the receiver keeps answering 2xx and stops at the first failure (whose retry
    time the next poll respects). Nothing here raises into the server: errors are
    logged and the next poll tries again.
    """

    def __init__(
        self, engine: AsyncEngine, poll_interval: float = 1.0, timeout: float = SEND_TIMEOUT
    ) -> None:
        self.engine = engine
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._draining: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_PARALLEL_WEBHOOKS)
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
        )
        try:
            while True:
                try:
                    await self.poll()
                except Exception:
                    log.exception("webhook dispatcher: poll failed; trying again")
                await asyncio.sleep(self.poll_interval)
        finally:
            tasks = list(self._draining.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._http.close()

    async def poll(self) -> None:
        """Start a drain task for every webhook whose head delivery is due."""
        heads = _heads()
        query = (
            select(webhook_deliveries.c.webhook_id)
            .join(
                heads,
                and_(
                    heads.c.webhook_id == webhook_deliveries.c.webhook_id,
                    heads.c.event_id == webhook_deliveries.c.event_id,
                ),
            )
            .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
            .where(webhooks.c.active, webhook_deliveries.c.next_attempt_at <= utcnow())
        )
        async with self.engine.connect() as conn:
            due = [int(r.webhook_id) for r in await conn.execute(query)]
        for webhook_id in due:
            if webhook_id not in self._draining:
                self._draining[webhook_id] = asyncio.create_task(self._drain(webhook_id))

    async def _drain(self, webhook_id: int) -> None:
        try:
            async with self._slots:
                while await self._deliver_head(webhook_id):
                    pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook %s: delivery failed unexpectedly; will retry", webhook_id)
        finally:
            self._draining.pop(webhook_id, None)

    async def _deliver_head(self, webhook_id: int) -> bool:
        """Send the webhook's oldest undelivered event if due; True if it was delivered."""
        heads = _heads(webhook_id)
        now = utcnow()
        query = (
            select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.attempts,
                webhooks.c.url,
                webhooks.c.secret,
                events.c.id.label("event_id"),
                events.c.type,
                events.c.at,
                events.c.payload,
            )
            .join(
                heads,
                and_(
                    heads.c.webhook_id == webhook_deliveries.c.webhook_id,
                    heads.c.event_id == webhook_deliveries.c.event_id,
                ),
            )
            .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
            .join(events, events.c.id == webhook_deliveries.c.event_id)
            .where(
                webhook_deliveries.c.webhook_id == webhook_id,
                webhooks.c.active,
                webhook_deliveries.c.next_attempt_at <= now,
            )
        )
        async with self.engine.begin() as conn:
            head = (await conn.execute(query)).first()
            if head is None:
                return False
            # The claim: only the node whose update still finds the row due sends it.
            claimed = await conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == head.id,
                    webhook_deliveries.c.delivered_at.is_(None),
                    webhook_deliveries.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
            )
            if claimed.rowcount != 1:
                return False

        body = json.dumps(
            envelope(head.event_id, head.type, head.at, head.payload), separators=(",", ":")
        ).encode()
        try:
            error = await self._send(head.url, head.secret, head.id, head.type, body)
        except asyncio.CancelledError:
            # Shutting down mid-send: hand the delivery back instead of leaving the lease.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._release(head.id)), 2)
            raise

        async with self.engine.begin() as conn:
            if error is None:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == head.id)
                    .values(delivered_at=utcnow(), attempts=webhook_deliveries.c.attempts + 1)
                )
            else:
                attempts = head.attempts + 1
                delay = backoff(attempts)
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == head.id)
                    .values(
                        attempts=webhook_deliveries.c.attempts + 1,
                        last_error=error[:500],
                        next_attempt_at=utcnow() + timedelta(seconds=delay),
                    )
                )
                log.info(
                    "webhook %s: delivery %s (event %s) failed, attempt %s: %s; retry in %.1fs",
                    webhook_id,
                    head.id,
                    head.event_id,
                    attempts,
                    error,
                    delay,
                )
        return error is None

    async def _release(self, delivery_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.id == delivery_id,
                    webhook_deliveries.c.delivered_at.is_(None),
                )
                .values(next_attempt_at=utcnow())
            )

    async def _send(
        self, url: str, secret: str, delivery_id: int, event_type: str, body: bytes
    ) -> str | None:
        """POST one signed delivery; None on a 2xx answer, else what went wrong."""
        assert self._http is not None
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Backdesk-Event": event_type,
            "X-Backdesk-Delivery": str(delivery_id),
            "X-Backdesk-Timestamp": str(timestamp),
            "X-Backdesk-Signature": sign(secret, timestamp, body),
        }
        try:
            async with self._http.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status} {response.reason or ''}".strip()
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"
        except Exception as exc:  # refused, reset, TLS, DNS, bad URL: all retried alike
            return f"{type(exc).__name__}: {exc}"[:500]


async def deliver_in_background(app: web.Application) -> AsyncIterator[None]:
    """aiohttp ``cleanup_ctx``: run the dispatcher for the life of the app."""
    dispatcher = Dispatcher(app[ENGINE], app[SETTINGS].webhook_poll_interval)
    task = asyncio.create_task(dispatcher.run(), name="webhook-dispatcher")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
