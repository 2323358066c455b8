"""What the desk does with tickets: open, find, work, escalate, resolve, comment.

Every change runs in one transaction with its timeline entry, its domain event (for
webhooks) and, where it is security-relevant, its audit entry: all of them or none.
Permission checks that depend on the ticket (level, assignment) live here; the API
layer has already checked the caller is signed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .. import audit, events
from ..accounts import Principal
from ..clock import isoformat, utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..permissions import Permission, allowed
from ..storage.schema import devices, kb_articles, kb_links, ticket_events, tickets, users
from . import attachments
from .lifecycle import OPEN_STATUSES, Action, Status, allowed_actions, next_status
from .priority import PRIORITY_NAMES, priority, service_level

CHANNELS = ("agent", "phone", "email", "web", "api")
ROLE_LEVEL = {"l1": 1, "l2": 2, "l3": 3, "admin": 3, "onsite": 0}
BREACHING_SOON = timedelta(minutes=30)
REFERENCE_PREFIX = "BD-"


@dataclass(frozen=True)
class Actor:
    """Who acts on a ticket: a technician, an agent, or the system (SLA watchdog)."""

    name: str
    role: str | None = None
    user_id: int | None = None

    @classmethod
    def of(cls, who: Principal) -> Actor:
        return cls(who.name, who.role, who.user_id)


SYSTEM = Actor("system")


def reference_for(ticket_id: int) -> str:
    return f"{REFERENCE_PREFIX}{ticket_id:06d}"


def _search_text(*parts: object) -> str:
    return " ".join(str(p) for p in parts if p).lower()


def _like_terms(column: Any, q: str) -> list[Any]:
    terms = q.lower().split()[:8]
    escaped = [t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for t in terms]
    return [column.like(f"%{t}%", escape="\\") for t in escaped]


# --- reading ----------------------------------------------------------------------------


def _public(row: Row[Any], assignee: str | None) -> dict[str, Any]:
    return {
        "reference": row.reference,
        "created_at": isoformat(row.created_at),
        "updated_at": isoformat(row.updated_at),
        "channel": row.channel,
        "requester": row.requester,
        "device_id": row.device_id,
        "category": row.category,
        "subject": row.subject,
        "description": row.description,
        "impact": row.impact,
        "urgency": row.urgency,
        "priority": row.priority,
        "priority_name": PRIORITY_NAMES[row.priority],
        "level": row.level,
        "status": row.status,
        "assignee": assignee,
        "group": row.group_name,
        "resolution": row.resolution,
        "external_refs": row.external_refs or {},
        "sla": {
            "own_due_at": isoformat(row.own_due_at),
            "resolve_due_at": isoformat(row.resolve_due_at),
            "owned_at": isoformat(row.owned_at),
            "answered_at": isoformat(row.answered_at),
            "own_breached": row.own_breached_at is not None,
            "resolve_breached": row.resolve_breached_at is not None,
        },
        "allowed_actions": [a.value for a in allowed_actions(Status(row.status))],
    }


def _select() -> Any:
    return select(tickets, users.c.name.label("assignee_name")).outerjoin(
        users, users.c.id == tickets.c.assignee_id
    )


def _visible(viewer: Principal) -> Any:
    if allowed(viewer.role, Permission.TICKET_VIEW_ALL):
        return True
    # On-site staff see the tickets dispatched to them.
    return tickets.c.assignee_id == viewer.user_id


async def visible_row(conn: AsyncConnection, reference: str, viewer: Principal | None) -> Row[Any]:
    """The ticket, if ``viewer`` may see it (None: the system); NotFound otherwise."""
    query = _select().where(tickets.c.reference == reference.upper()[:16])
    if viewer is not None:
        query = query.where(_visible(viewer))
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no ticket {reference[:16]!r}")
    return row


async def get(engine: AsyncEngine, reference: str, viewer: Principal) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = await visible_row(conn, reference, viewer)
        timeline = (
            await conn.execute(
                select(ticket_events)
                .where(ticket_events.c.ticket_id == row.id)
                .order_by(ticket_events.c.id)
            )
        ).all()
        articles = (
            await conn.execute(
                select(kb_articles.c.id, kb_articles.c.title)
                .join(kb_links, kb_links.c.article_id == kb_articles.c.id)
                .where(kb_links.c.ticket_id == row.id)
            )
        ).all()
        files = await attachments.listing(conn, row.id)
        hostname = None
        if row.device_id:
            hostname = (
                await conn.execute(select(devices.c.hostname).where(devices.c.id == row.device_id))
            ).scalar_one_or_none()
    ticket = _public(row, row.assignee_name)
    ticket["device_hostname"] = hostname
    ticket["diagnostics"] = row.diagnostics
    ticket["timeline"] = [
        {"at": isoformat(e.at), "actor": e.actor, "kind": e.kind, "data": e.data} for e in timeline
    ]
    ticket["kb_articles"] = [{"id": a.id, "title": a.title} for a in articles]
    ticket["attachments"] = files
    return ticket


async def search(
    engine: AsyncEngine,
    viewer: Principal,
    *,
    q: str | None = None,
    status: str | None = None,
    level: int | None = None,
    assignee: str | None = None,
    queue: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    conditions: list[Any] = [_visible(viewer)]
    if q:
        conditions += _like_terms(tickets.c.search_text, q)
    if status == "open":
        conditions.append(tickets.c.status.in_([s.value for s in OPEN_STATUSES]))
    elif status:
        conditions.append(tickets.c.status == status)
    if level:
        conditions.append(tickets.c.level == level)
    if assignee == "none":
        conditions.append(tickets.c.assignee_id.is_(None))
    elif assignee:
        conditions.append(users.c.name == assignee)
    now = utcnow()
    open_ = tickets.c.status.in_([s.value for s in OPEN_STATUSES])
    if queue == "unanswered":
        conditions += [open_, tickets.c.owned_at.is_(None), tickets.c.answered_at.is_(None)]
    elif queue == "breaching":
        soon = now + BREACHING_SOON
        conditions += [
            open_,
            or_(
                and_(tickets.c.owned_at.is_(None), tickets.c.own_due_at <= soon),
                tickets.c.resolve_due_at <= soon,
            ),
        ]
    where = and_(*conditions)
    async with engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.count())
                .select_from(tickets.outerjoin(users, users.c.id == tickets.c.assignee_id))
                .where(where)
            )
        ).scalar_one()
        # Most urgent first: priority, then the nearest deadline.
        rows = (
            await conn.execute(
                _select()
                .where(where)
                .order_by(tickets.c.priority, tickets.c.resolve_due_at, tickets.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
    return [_public(r, r.assignee_name) for r in rows], int(total)


# --- writing ----------------------------------------------------------------------------


async def _event(
    conn: AsyncConnection, ticket_id: int, actor: Actor, kind: str, data: dict[str, Any]
) -> None:
    await conn.execute(
        insert(ticket_events).values(
            ticket_id=ticket_id, at=utcnow(), actor=actor.name, kind=kind, data=data
        )
    )


def _summary(reference: str, row_or_values: Any) -> dict[str, Any]:
    get_ = (
        row_or_values.get
        if isinstance(row_or_values, dict)
        else lambda k: getattr(row_or_values, k)
    )
    return {
        "reference": reference,
        "subject": get_("subject"),
        "status": get_("status"),
        "level": get_("level"),
        "priority": get_("priority"),
    }


async def create_in(
    conn: AsyncConnection,
    actor: Actor,
    *,
    subject: str,
    description: str,
    channel: str,
    requester: str,
    device_id: str | None = None,
    category: str | None = None,
    impact: int = 3,
    urgency: int = 3,
    level: int = 1,
    external_refs: dict[str, str] | None = None,
    diagnostics: dict[str, Any] | None = None,
) -> str:
    """Open a ticket in the caller's transaction; returns its reference."""
    if channel not in CHANNELS:
        raise Invalid(f"channel must be one of {', '.join(CHANNELS)}", "channel")
    now = utcnow()
    prio = priority(impact, urgency)
    own_due, resolve_due = (await service_level(conn, prio)).due(now)
    hostname = None
    if device_id is not None:
        hostname = (
            await conn.execute(select(devices.c.hostname).where(devices.c.id == device_id))
        ).scalar_one_or_none()
        if hostname is None:
            raise Invalid(f"no device {device_id!r}", "device_id")
    values = {
        "created_at": now,
        "updated_at": now,
        "channel": channel,
        "requester": requester,
        "device_id": device_id,
        "category": category,
        "subject": subject,
        "description": description,
        "impact": impact,
        "urgency": urgency,
        "priority": prio,
        "level": level,
        "status": Status.NEW.value,
        "group_name": f"l{level}",
        "own_due_at": own_due,
        "resolve_due_at": resolve_due,
        "external_refs": external_refs or {},
        "diagnostics": diagnostics,
        "search_text": "",
    }
    ticket_id = int(
        (await conn.execute(insert(tickets).values(**values).returning(tickets.c.id))).scalar_one()
    )
    reference = reference_for(ticket_id)
    await conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id)
        .values(
            reference=reference,
            search_text=_search_text(
                reference,
                subject,
                description,
                requester,
                category,
                hostname,
                " ".join((external_refs or {}).values()),
            ),
        )
    )
    await _event(conn, ticket_id, actor, "created", {"channel": channel, "level": level})
    await events.publish(conn, "ticket.created", _summary(reference, values))
    return reference


async def create(engine: AsyncEngine, who: Principal, **fields: Any) -> dict[str, Any]:
    async with engine.begin() as conn:
        reference = await create_in(conn, Actor.of(who), **fields)
    return await get(engine, reference, who)


async def _user(conn: AsyncConnection, name: str) -> Row[Any]:
    row = (await conn.execute(select(users).where(users.c.name == name, ~users.c.disabled))).first()
    if row is None:
        raise Invalid(f"no active user named {name!r}", "assignee")
    return row


async def act(
    engine: AsyncEngine,
    who: Principal,
    reference: str,
    action: Action,
    *,
    assignee: str | None = None,
    resolution: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Move a ticket through its lifecycle (see lifecycle.TRANSITIONS)."""
    actor = Actor.of(who)
    async with engine.begin() as conn:
        row = await visible_row(conn, reference, who)
        status = Status(row.status)
        _check_role(who, row, action)  # a role refused is told so (403) before any 409
        target = next_status(status, action)
        if target is None:
            raise Conflict(
                f"cannot {action.value.replace('_', ' ')} a ticket that is {status.value.replace('_', ' ')}"
            )
        now = utcnow()
        changes: dict[str, Any] = {"status": target.value, "updated_at": now}
        event_type = "ticket.updated"

        if action in (Action.TAKE, Action.ASSIGN, Action.DISPATCH):
            if action is Action.TAKE:
                if ROLE_LEVEL[who.role] < row.level:
                    raise Forbidden(
                        Permission.TICKET_WORK.value,
                        f"a {who.role} technician cannot take a level {row.level} ticket; escalate it instead",
                        row.reference,
                    )
                new_owner = await _user(conn, who.name)
            else:
                if assignee is None:
                    raise Invalid(f"{action.value} needs an assignee", "assignee")
                new_owner = await _user(conn, assignee)
            if action is Action.DISPATCH:
                if new_owner.role != "onsite":
                    raise Invalid(f"{new_owner.name} is not on-site staff", "assignee")
                changes["group_name"] = "onsite"
            elif ROLE_LEVEL[new_owner.role] < row.level:
                raise Invalid(
                    f"{new_owner.name} ({new_owner.role}) cannot work a level {row.level} ticket",
                    "assignee",
                )
            changes["assignee_id"] = new_owner.id
            if row.owned_at is None:
                changes["owned_at"] = now
            await _event(
                conn,
                row.id,
                actor,
                "assigned",
                {"assignee": new_owner.name, "action": action.value},
            )
        elif action is Action.ESCALATE:
            if row.level >= 3:
                raise Conflict("this ticket is already at level 3")
            new_level = row.level + 1
            level_sla = await service_level(conn, row.priority)
            changes.update(
                level=new_level,
                group_name=f"l{new_level}",
                assignee_id=None,
                owned_at=None,
                own_due_at=now + level_sla.own,  # the new level must own it in time
                own_breached_at=None,
            )
            event_type = "ticket.escalated"
            await _event(conn, row.id, actor, "level", {"from": row.level, "to": new_level})
            await audit.append(
                conn,
                actor.name,
                "ticket.escalated",
                row.reference,
                {"from": row.level, "to": new_level},
            )
        elif action is Action.RESOLVE:
            if not resolution or not resolution.strip():
                raise Invalid("resolving needs a resolution", "resolution")
            changes.update(resolution=resolution, resolved_at=now)
        elif action is Action.CLOSE:
            changes["closed_at"] = now
        elif action is Action.REOPEN:
            changes.update(resolved_at=None, closed_at=None)
            if row.assignee_id is None:
                changes["assignee_id"] = who.user_id

        await conn.execute(update(tickets).where(tickets.c.id == row.id).values(**changes))
        await _event(
            conn,
            row.id,
            actor,
            "status",
            {"from": status.value, "to": target.value, "action": action.value},
        )
        if comment:
            await _add_comment(conn, row, actor, comment)
        await events.publish(
            conn,
            event_type,
            {
                **_summary(row.reference, row),
                **{k: changes[k] for k in ("status", "level") if k in changes},
                "action": action.value,
            },
        )
    return await get(engine, reference, who)


def _check_role(who: Principal, row: Row[Any], action: Action) -> None:
    needed: Permission | None = None
    if action is Action.DISPATCH:
        needed = Permission.TICKET_DISPATCH_ONSITE
    elif action is Action.ESCALATE and row.level < 3:
        needed = Permission.TICKET_ESCALATE_L2 if row.level == 1 else Permission.TICKET_ESCALATE_L3
    if needed is not None and not allowed(who.role, needed):
        what = (
            "dispatch on-site staff"
            if action is Action.DISPATCH
            else f"escalate to level {row.level + 1}"
        )
        raise Forbidden(needed.value, f"role {who.role!r} may not {what}", row.reference)


async def _add_comment(conn: AsyncConnection, row: Row[Any], actor: Actor, body: str) -> None:
    await _event(conn, row.id, actor, "comment", {"body": body})
    values: dict[str, Any] = {"updated_at": utcnow()}
    if row.answered_at is None and actor.role is not None:
        values["answered_at"] = utcnow()  # the first answer from the desk stops the clock
    await conn.execute(update(tickets).where(tickets.c.id == row.id).values(**values))


async def comment(engine: AsyncEngine, who: Principal, reference: str, body: str) -> dict[str, Any]:
    async with engine.begin() as conn:
        row = await visible_row(conn, reference, who)
        await _add_comment(conn, row, Actor.of(who), body)
        await events.publish(
            conn, "ticket.updated", {**_summary(row.reference, row), "comment": True}
        )
    return await get(engine, reference, who)


async def update_fields(
    engine: AsyncEngine, who: Principal, reference: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change category, subject, impact/urgency (re-deriving priority and SLA) or external refs."""
    async with engine.begin() as conn:
        row = await visible_row(conn, reference, who)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        for key in ("category", "subject"):
            if key in fields:
                changes[key] = fields[key]
        if "impact" in fields or "urgency" in fields:
            impact = fields.get("impact", row.impact)
            urgency = fields.get("urgency", row.urgency)
            prio = priority(impact, urgency)
            own_due, resolve_due = (await service_level(conn, prio)).due(row.created_at)
            changes.update(
                impact=impact,
                urgency=urgency,
                priority=prio,
                own_due_at=own_due,
                resolve_due_at=resolve_due,
            )
        if "external_refs" in fields:
            changes["external_refs"] = {**(row.external_refs or {}), **fields["external_refs"]}
        changes["search_text"] = _search_text(
            row.reference,
            changes.get("subject", row.subject),
            row.description,
            row.requester,
            changes.get("category", row.category),
            " ".join(changes.get("external_refs", row.external_refs or {}).values()),
        )
        await conn.execute(update(tickets).where(tickets.c.id == row.id).values(**changes))
        shown = {k: v for k, v in fields.items()}
        await _event(conn, row.id, Actor.of(who), "updated", shown)
        await events.publish(
            conn, "ticket.updated", {**_summary(row.reference, row), "changed": sorted(fields)}
        )
    return await get(engine, reference, who)


async def record(
    conn: AsyncConnection, reference: str, actor: Actor, kind: str, data: dict[str, Any]
) -> None:
    """Add an entry to a ticket's timeline from elsewhere (sessions, consent receipts)."""
    ticket_id = (
        await conn.execute(select(tickets.c.id).where(tickets.c.reference == reference))
    ).scalar_one_or_none()
    if ticket_id is None:
        raise NotFound(f"no ticket {reference!r}")
    await _event(conn, ticket_id, actor, kind, data)
