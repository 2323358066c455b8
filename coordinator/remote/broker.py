"""The session broker: who may ask for a remote session, and the record of each one.

A request only creates a ``pending`` row and sends the device an offer; it grants
nothing. What the user answered arrives as a receipt signed by the device's identity
key, which is checked here against the session before the state changes, and kept (in
the row, the ticket's timeline and the audit log). See docs/remote-sessions.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol import identity
from protocol.canonical import receipt_bytes

from .. import audit, events
from ..accounts import Principal
from ..clock import isoformat, utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..permissions import Permission
from ..storage.schema import devices, remote_sessions, tickets, users
from ..tickets import service as tickets_service
from ..tickets.service import Actor

SCOPES = ("view", "control")
# The agent must join and its user answer within this time (the dialog itself waits 60 s).
OFFER_LIFETIME = timedelta(seconds=150)
ACTIVE_STATES = ("pending", "awaiting_consent", "live")
REASONS = (
    "denied",
    "timeout",
    "ended_by_user",
    "ended_by_technician",
    "viewer_gone",
    "agent_gone",
    "protocol_error",
    "expired",
    "coordinator_restart",
    "agent_error",
)
MAX_RECEIPT_BYTES = 4096


@dataclass(frozen=True)
class Offer:
    """What the device is told about a new request (and the token it joins with)."""

    session_id: str
    device_id: str
    ticket: str
    subject: str
    technician: str
    role: str
    scope: str
    relay_token: bytes
    expires_at: datetime


def token_hash(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def public(row: Any) -> dict[str, Any]:
    duration = None
    if row.started_at is not None and row.ended_at is not None:
        duration = round((row.ended_at - row.started_at).total_seconds(), 1)
    return {
        "id": row.id,
        "ticket": row.reference,
        "device_id": row.device_id,
        "technician": row.technician,
        "scope_requested": row.scope_requested,
        "scope": row.scope,
        "state": row.state,
        "reason": row.reason,
        "created_at": isoformat(row.created_at),
        "expires_at": isoformat(row.expires_at),
        "started_at": isoformat(row.started_at) if row.started_at else None,
        "ended_at": isoformat(row.ended_at) if row.ended_at else None,
        "duration_s": duration,
        "consent": row.consent,
        "end_receipt": row.end_receipt,
        "viewer_url": f"/sessions/{row.id}",
    }


def _select() -> Any:
    return select(remote_sessions, tickets.c.reference, tickets.c.subject).join(
        tickets, tickets.c.id == remote_sessions.c.ticket_id
    )


async def _row(conn: AsyncConnection, session_id: str) -> Any:
    row = (await conn.execute(_select().where(remote_sessions.c.id == session_id[:32]))).first()
    if row is None:
        raise NotFound(f"no session {session_id[:32]!r}")
    return row


async def get(engine: AsyncEngine, session_id: str, who: Principal | None) -> dict[str, Any]:
    """A session, for its technician, or anyone who may see its ticket."""
    async with engine.connect() as conn:
        row = await _row(conn, session_id)
        if who is not None and row.technician_id != who.user_id:
            await tickets_service.visible_row(conn, row.reference, who)  # NotFound if not
    return public(row)


async def for_viewer(engine: AsyncEngine, session_id: str, who: Principal) -> dict[str, Any]:
    """The session and device key for the technician who asked for it; NotFound for
    anyone else (a colleague cannot take over someone else's session)."""
    async with engine.connect() as conn:
        row = await _row(conn, session_id)
        if row.technician_id != who.user_id:
            raise NotFound(f"no session {session_id[:32]!r}")
        device = (
            await conn.execute(
                select(devices.c.public_key, devices.c.hostname).where(
                    devices.c.id == row.device_id
                )
            )
        ).one()
    return {
        **public(row),
        "subject": row.subject,
        "device_key": bytes(device.public_key),
        "hostname": device.hostname,
    }


async def for_ticket(engine: AsyncEngine, reference: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                _select()
                .where(tickets.c.reference == reference)
                .order_by(remote_sessions.c.created_at.desc())
                .limit(20)
            )
        ).all()
    return [public(r) for r in rows]


async def request(
    engine: AsyncEngine, who: Principal, reference: str, scope: str, online: set[str]
) -> Offer:
    """Create a pending session for ``who`` on the ticket's device.

    Only the technician the ticket is assigned to may ask (a 403 in the audit log
    otherwise), for a ticket tied to a device that is online, one session at a time.
    """
    if scope not in SCOPES:
        raise Invalid("scope must be 'view' or 'control'", field="scope")
    now = utcnow()
    async with engine.begin() as conn:
        ticket = await tickets_service.visible_row(conn, reference, who)
        if ticket.assignee_id != who.user_id:
            raise Forbidden(
                Permission.SESSION_REQUEST.value,
                f"ticket {ticket.reference} is not assigned to you: take it first",
                ticket.reference,
            )
        if ticket.device_id is None:
            raise Conflict(f"ticket {ticket.reference} has no device to connect to")
        if ticket.device_id not in online:
            raise Conflict(f"the device of ticket {ticket.reference} is offline")
        busy = (
            await conn.execute(
                select(remote_sessions.c.id).where(
                    remote_sessions.c.device_id == ticket.device_id,
                    # A live session lasts as long as it lasts; an unanswered request
                    # only until it expires.
                    (remote_sessions.c.state == "live")
                    | (
                        remote_sessions.c.state.in_(("pending", "awaiting_consent"))
                        & (remote_sessions.c.expires_at > now)
                    ),
                )
            )
        ).first()
        if busy is not None:
            raise Conflict(f"the device already has a session ({busy.id}); end it first")
        full_name = (
            await conn.execute(select(users.c.full_name).where(users.c.id == who.user_id))
        ).scalar_one_or_none()
        session_id = secrets.token_hex(16)
        relay_token = secrets.token_bytes(32)
        expires_at = now + OFFER_LIFETIME
        await conn.execute(
            remote_sessions.insert().values(
                id=session_id,
                ticket_id=ticket.id,
                device_id=ticket.device_id,
                technician_id=who.user_id,
                technician=who.name,
                scope_requested=scope,
                state="pending",
                relay_token_hash=token_hash(relay_token),
                created_at=now,
                expires_at=expires_at,
            )
        )
        details = {"session": session_id, "scope": scope, "device": ticket.device_id}
        await audit.append(conn, who.name, "session.requested", ticket.reference, details)
        await tickets_service.record(
            conn, ticket.reference, Actor.of(who), "session.requested", details
        )
    return Offer(
        session_id=session_id,
        device_id=ticket.device_id,
        ticket=ticket.reference,
        subject=ticket.subject,
        technician=full_name or who.name,
        role=who.role,
        scope=scope,
        relay_token=relay_token,
        expires_at=expires_at,
    )


async def check_join(engine: AsyncEngine, session_id: str, token: bytes) -> Any:
    """The session row if ``token`` is its relay token and it still waits for its agent."""
    async with engine.begin() as conn:
        row = await _row(conn, session_id)
        if not secrets.compare_digest(row.relay_token_hash, token_hash(token)):
            raise Forbidden("session.join", "wrong relay token", session_id)
        if row.state != "pending" or row.expires_at <= utcnow():
            raise Conflict("this session is no longer waiting for its device")
        await conn.execute(
            update(remote_sessions)
            .where(remote_sessions.c.id == row.id)
            .values(state="awaiting_consent")
        )
    return row


def _verify(
    row: Any, public_key: bytes, message: dict[str, Any], kind: str
) -> tuple[dict[str, Any], str]:
    """The receipt and its signature, if the device signed exactly this session's facts."""
    receipt = message.get("receipt")
    signature_text = message.get("signature")
    if not isinstance(receipt, dict) or not isinstance(signature_text, str):
        raise Invalid(f"{kind} needs a receipt object and a signature")
    try:
        signed_bytes = receipt_bytes(receipt)
    except ValueError:  # NaN or infinity: not JSON anyone else could reproduce
        raise Invalid(f"the {kind} receipt is not canonical JSON") from None
    if len(signed_bytes) > MAX_RECEIPT_BYTES:
        raise Invalid("receipt too large")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("signature is not base64") from None
    if not identity.verify(public_key, signature, signed_bytes):
        raise Invalid(f"the {kind} receipt's signature does not verify")
    expected = {
        "kind": kind,
        "session": row.id,
        "device": row.device_id,
        "ticket": row.reference,
    }
    for name, value in expected.items():
        if receipt.get(name) != value:
            raise Invalid(f"the {kind} receipt names another {name}")
    return receipt, signature_text


async def record_consent(engine: AsyncEngine, session_id: str, message: dict[str, Any]) -> Any:
    """Apply the agent's signed answer; returns the updated row."""
    async with engine.begin() as conn:
        row = await _row(conn, session_id)
        if row.state != "awaiting_consent":
            raise Conflict("no consent is awaited for this session")
        key = (
            await conn.execute(select(devices.c.public_key).where(devices.c.id == row.device_id))
        ).scalar_one()
        receipt, signature = _verify(row, bytes(key), message, "consent")
        decision = receipt.get("decision")
        scope = receipt.get("scope")
        if decision not in ("allow", "deny", "timeout"):
            raise Invalid("decision must be allow, deny or timeout")
        if decision == "allow" and (
            scope not in SCOPES or (row.scope_requested == "view" and scope == "control")
        ):
            raise Invalid("the granted scope must be view, or control when control was asked")
        now = utcnow()
        kept = {"receipt": receipt, "signature": signature}
        actor = f"agent:{row.device_id[:8]}"
        if decision == "allow":
            values: dict[str, Any] = {
                "state": "live",
                "scope": scope,
                "started_at": now,
                "consent": kept,
            }
        else:
            values = {
                "state": "ended",
                "reason": "denied" if decision == "deny" else "timeout",
                "ended_at": now,
                "consent": kept,
            }
        await conn.execute(
            update(remote_sessions).where(remote_sessions.c.id == row.id).values(**values)
        )
        await audit.append(conn, actor, f"session.consent.{decision}", row.reference, kept)
        timeline = {
            "session": row.id,
            "scope": scope,
            "decision": decision,
            "via": receipt.get("via"),
            "receipt": receipt,
            "signature": signature,
        }
        kind = "session.started" if decision == "allow" else "session.refused"
        await tickets_service.record(conn, row.reference, Actor(actor), kind, timeline)
        if decision == "allow":
            await events.publish(
                conn,
                "session.started",
                {"session": row.id, "ticket": row.reference, "scope": scope},
            )
        return await _row(conn, session_id)


async def end(
    engine: AsyncEngine,
    session_id: str,
    reason: str,
    actor: str,
    message: dict[str, Any] | None = None,
) -> Any:
    """End a session (idempotent: the first reason wins). ``message`` is the agent's
    signed end receipt when it sent one; an unverifiable one is recorded as absent."""
    if reason not in REASONS:
        reason = "protocol_error"
    async with engine.begin() as conn:
        row = await _row(conn, session_id)
        if row.state == "ended":
            return row
        end_receipt = None
        if message is not None:
            key = (
                await conn.execute(
                    select(devices.c.public_key).where(devices.c.id == row.device_id)
                )
            ).scalar_one()
            try:
                receipt, signature = _verify(row, bytes(key), message, "end")
                end_receipt = {"receipt": receipt, "signature": signature}
            except Invalid:
                end_receipt = None
        now = utcnow()
        await conn.execute(
            update(remote_sessions)
            .where(remote_sessions.c.id == row.id, remote_sessions.c.state != "ended")
            .values(state="ended", reason=reason, ended_at=now, end_receipt=end_receipt)
        )
        duration = round((now - row.started_at).total_seconds(), 1) if row.started_at else None
        details = {
            "session": row.id,
            "scope": row.scope,
            "reason": reason,
            "started_at": isoformat(row.started_at) if row.started_at else None,
            "ended_at": isoformat(now),
            "duration_s": duration,
            "receipt": end_receipt,
        }
        await audit.append(conn, actor, "session.ended", row.reference, details)
        await tickets_service.record(conn, row.reference, Actor(actor), "session.ended", details)
        if row.started_at is not None:
            await events.publish(
                conn,
                "session.ended",
                {
                    "session": row.id,
                    "ticket": row.reference,
                    "reason": reason,
                    "duration_s": duration,
                },
            )
        return await _row(conn, session_id)


async def note(
    engine: AsyncEngine, session_id: str, actor: str, action: str, details: dict[str, Any]
) -> None:
    """An audit entry about a session (e.g. input dropped in a view-only session)."""
    async with engine.begin() as conn:
        row = await _row(conn, session_id)
        await audit.append(conn, actor, action, row.reference, {"session": row.id, **details})


async def end_orphans(engine: AsyncEngine) -> int:
    """At start: sessions a previous run of this node left open cannot be live."""
    async with engine.connect() as conn:
        ids = (
            (
                await conn.execute(
                    select(remote_sessions.c.id).where(remote_sessions.c.state.in_(ACTIVE_STATES))
                )
            )
            .scalars()
            .all()
        )
    for session_id in ids:
        await end(engine, session_id, "coordinator_restart", "system")
    return len(ids)
