"""The desk's pages: queues, the ticket page and its actions, a ticket for a phone call.

Handlers call the same service functions as the REST API (``tickets.service``), so the
rules live in one place; what a page offers is only a convenience on top (a button a
role may not use is not shown, and refused if posted anyway). Forms follow
Post/Redirect/Get: a domain error (an illegal transition, a missing resolution) comes
back as a flash message on the page the form was on.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import select

from .. import audit, kb
from ..accounts import Principal, list_users
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..permissions import Permission, allowed
from ..remote import broker
from ..settings import ENGINE
from ..storage.schema import devices
from ..tickets import service
from ..tickets.lifecycle import Action
from ..tickets.priority import PRIORITY_NAMES, priority
from . import diagnostics
from .render import redirect, render
from .sessions import signed_in

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE_SIZE = 50
MAX_TEXT = 20_000

# Queue tabs: (key, label, search filters). Level tabs list the open tickets of a level.
TABS: list[tuple[str, str]] = [
    ("l1", "L1"),
    ("l2", "L2"),
    ("l3", "L3"),
    ("onsite", "On-site"),
    ("mine", "Mine"),
    ("unanswered", "Unanswered"),
    ("breaching", "Breaching soon"),
]
OWN_TAB = {"l1": "l1", "l2": "l2", "l3": "l3", "admin": "l1", "onsite": "mine"}

ACTION_LABELS = {
    Action.TAKE: "Take",
    Action.ASSIGN: "Assign",
    Action.START: "Start work",
    Action.WAIT_FOR_USER: "Wait for user",
    Action.RESUME: "Resume",
    Action.ESCALATE: "Escalate",
    Action.DISPATCH: "Dispatch on-site",
    Action.RESOLVE: "Resolve",
    Action.CLOSE: "Close",
    Action.REOPEN: "Reopen",
}
DONE_LABELS = {
    Action.TAKE: "taken",
    Action.ASSIGN: "assigned",
    Action.START: "in progress",
    Action.WAIT_FOR_USER: "waiting for the user",
    Action.RESUME: "resumed",
    Action.ESCALATE: "escalated",
    Action.DISPATCH: "dispatched on-site",
    Action.RESOLVE: "resolved",
    Action.CLOSE: "closed",
    Action.REOPEN: "reopened",
}
CATEGORIES = ("hardware", "software", "network", "account", "printing", "email", "other")
IMPACTS = {1: "High — many people or a whole site", 2: "Medium — a team", 3: "Low — one person"}
URGENCIES = {1: "High — work is stopped", 2: "Medium — work is slowed", 3: "Low — can wait"}


# --- helpers -------------------------------------------------------------------------


def _field(form: Any, name: str, limit: int = MAX_TEXT) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def deny(request: web.Request, who: Principal, exc: Forbidden) -> web.Response:
    """A 403 page, recorded in the audit log like the API's refusals."""
    async with request.app[ENGINE].begin() as conn:
        await audit.append(
            conn,
            who.name,
            "permission.denied",
            exc.target,
            {
                "permission": exc.permission,
                "role": who.role,
                "method": request.method,
                "path": request.path,
            },
        )
    return render(request, "error.html", status=403, title="Not allowed", message=str(exc))


def forbidden(who: Principal, permission: Permission, target: str = "") -> Forbidden:
    return Forbidden(
        permission.value,
        f"Your role ({who.role}) does not allow this ({permission.value}).",
        target,
    )


def not_found(request: web.Request, message: str) -> web.Response:
    return render(request, "error.html", status=404, title="Not found", message=message)


async def _hostnames(request: web.Request, device_ids: set[str]) -> dict[str, str]:
    if not device_ids:
        return {}
    async with request.app[ENGINE].connect() as conn:
        rows = (
            await conn.execute(
                select(devices.c.id, devices.c.hostname).where(devices.c.id.in_(device_ids))
            )
        ).all()
    return {r.id: r.hostname for r in rows}


# --- queue ---------------------------------------------------------------------------


def _tabs_for(who: Principal) -> list[tuple[str, str]]:
    if not allowed(who.role, Permission.TICKET_VIEW_ALL):
        return [("mine", "Dispatched to me")]  # on-site staff see only their own tickets
    return TABS


def _filters(tab: str, who: Principal) -> dict[str, Any]:
    if tab in ("l1", "l2", "l3"):
        return {"level": int(tab[1]), "status": "open"}
    if tab == "onsite":
        return {"status": "onsite"}
    if tab == "mine":
        return {"assignee": who.name, "status": "open"}
    return {"queue": tab}  # unanswered, breaching


def _chosen_tab(request: web.Request, who: Principal) -> str:
    tabs = {key for key, _ in _tabs_for(who)}
    level = request.query.get("level", "")
    view = request.query.get("view", "")
    if level in ("1", "2", "3") and f"l{level}" in tabs:
        return f"l{level}"
    if view in tabs:
        return view
    own = OWN_TAB.get(who.role, "mine")
    return own if own in tabs else next(iter(tabs))


def _tab_url(key: str) -> str:
    return f"/queue?level={key[1]}" if key in ("l1", "l2", "l3") else f"/queue?view={key}"


@routes.get("/queue")
async def queue(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    engine = request.app[ENGINE]
    tab = _chosen_tab(request, who)
    q = request.query.get("q", "").strip()[:200]
    raw_offset = request.query.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() and int(raw_offset) < 10**6 else 0

    counts = {}
    for key, _ in _tabs_for(who):
        _, counts[key] = await service.search(engine, who, limit=0, **_filters(key, who))
    filters: dict[str, Any] = {"q": q} if q else _filters(tab, who)
    found, total = await service.search(engine, who, limit=PAGE_SIZE, offset=offset, **filters)
    hosts = await _hostnames(request, {t["device_id"] for t in found if t["device_id"]})
    for ticket in found:
        ticket["device_hostname"] = hosts.get(ticket["device_id"] or "")
    tabs = [
        {"key": k, "label": label, "url": _tab_url(k), "count": counts[k], "active": k == tab}
        for k, label in _tabs_for(who)
    ]
    title = f"Search: {q}" if q else next(label for key, label in _tabs_for(who) if key == tab)
    return render(
        request,
        "queue.html",
        tabs=tabs,
        tab=tab,
        tab_url=_tab_url(tab),
        q=q,
        tickets=found,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        title=title,
    )


# --- ticket page ---------------------------------------------------------------------


def _may_work(ticket: dict[str, Any], who: Principal) -> bool:
    if not allowed(who.role, Permission.TICKET_WORK):
        return False
    # On-site staff work only what was dispatched to them.
    return allowed(who.role, Permission.TICKET_VIEW_ALL) or ticket["assignee"] == who.name


def offered_actions(ticket: dict[str, Any], who: Principal) -> list[Action]:
    """The actions the ticket's status allows AND the role grants, in lifecycle order."""
    if not _may_work(ticket, who):
        return []
    lifecycle = set(ticket["allowed_actions"])
    level = ticket["level"]
    mine = ticket["assignee"] == who.name
    view_all = allowed(who.role, Permission.TICKET_VIEW_ALL)
    offered = []
    for action in Action:
        if action.value not in lifecycle:
            continue
        if action is Action.TAKE and (mine or service.ROLE_LEVEL[who.role] < level):
            continue
        if action is Action.ASSIGN and not view_all:
            continue
        if action is Action.ESCALATE:
            needed = Permission.TICKET_ESCALATE_L2 if level == 1 else Permission.TICKET_ESCALATE_L3
            if level >= 3 or not allowed(who.role, needed):
                continue
        if action is Action.DISPATCH and not allowed(who.role, Permission.TICKET_DISPATCH_ONSITE):
            continue
        offered.append(action)
    return offered


@routes.get("/tickets/new")
async def new_ticket_form(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.TICKET_CREATE):
        return await deny(request, who, forbidden(who, Permission.TICKET_CREATE))
    return _new_ticket_page(request, {"impact": "3", "urgency": "3"})


def _new_ticket_page(
    request: web.Request, values: dict[str, str], error: str | None = None, status: int = 200
) -> web.Response:
    return render(
        request,
        "ticket_new.html",
        status=status,
        values=values,
        error=error,
        categories=CATEGORIES,
        impacts=IMPACTS,
        urgencies=URGENCIES,
        priority_names=PRIORITY_NAMES,
    )


@routes.post("/tickets/new")
async def create_ticket(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.TICKET_CREATE):
        return await deny(request, who, forbidden(who, Permission.TICKET_CREATE))
    form = await request.post()
    values = {
        "subject": _field(form, "subject", 200),
        "description": _field(form, "description"),
        "requester": _field(form, "requester", 200),
        "category": _field(form, "category", 64),
        "impact": _field(form, "impact", 1),
        "urgency": _field(form, "urgency", 1),
    }
    missing = [name for name in ("subject", "description", "requester") if not values[name]]
    if missing:
        return _new_ticket_page(
            request, values, f"Fill in the {' and '.join(missing)}.", status=400
        )
    if values["impact"] not in ("1", "2", "3") or values["urgency"] not in ("1", "2", "3"):
        return _new_ticket_page(request, values, "Choose an impact and an urgency.", status=400)
    try:
        ticket = await service.create(
            request.app[ENGINE],
            who,
            subject=values["subject"],
            description=values["description"],
            requester=values["requester"],
            category=values["category"] or None,
            impact=int(values["impact"]),
            urgency=int(values["urgency"]),
            channel="phone",
        )
    except (Invalid, Conflict) as exc:
        return _new_ticket_page(request, values, str(exc), status=400)
    reference = ticket["reference"]
    return redirect(
        f"/tickets/{reference}",
        "ok",
        f"Ticket {reference} opened (priority {priority(int(values['impact']), int(values['urgency']))}). "
        "Give the caller this reference.",
    )


@routes.get("/tickets/{reference}")
async def ticket_page(request: web.Request) -> web.Response:
    session = signed_in(request)
    who = session.principal
    engine = request.app[ENGINE]
    reference = request.match_info["reference"]
    try:
        ticket = await service.get(engine, reference, who)
    except NotFound:
        return not_found(request, f"There is no ticket {reference[:16]} that you can see.")
    offered = offered_actions(ticket, who)
    people = [u for u in await list_users(engine) if not u["disabled"]]
    assignable = [
        u
        for u in people
        if u["role"] != "onsite" and service.ROLE_LEVEL[str(u["role"])] >= ticket["level"]
    ]
    onsite = [u for u in people if u["role"] == "onsite"]
    kb_query = request.query.get("kbq", "").strip()[:200]
    kb_results: list[dict[str, Any]] = []
    if kb_query and allowed(who.role, Permission.KB_READ):
        kb_results, _ = await kb.search(engine, kb_query, limit=8)
    open_ = ticket["status"] not in ("resolved", "closed")
    return render(
        request,
        "ticket.html",
        ticket=ticket,
        attached=diagnostics.attached(ticket["diagnostics"]),
        actions=offered,
        labels=ACTION_LABELS,
        Action=Action,
        assignable=assignable,
        onsite_staff=onsite,
        kb_query=kb_query,
        kb_results=kb_results,
        can_request_session=open_
        and ticket["device_id"] is not None
        and allowed(who.role, Permission.SESSION_REQUEST),
        session_blocker=None
        if ticket.get("assignee") == who.name
        else "Take the ticket first: only its assignee may ask for a session.",
        sessions=await broker.for_ticket(engine, ticket["reference"]),
        may_comment=allowed(who.role, Permission.TICKET_COMMENT),
    )


@routes.post("/tickets/{reference}/actions")
async def ticket_action(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    reference = request.match_info["reference"][:16].upper()
    back = f"/tickets/{reference}"
    form = await request.post()
    try:
        action = Action(_field(form, "action", 32))
    except ValueError:
        return redirect(back, "error", "Unknown action.")
    if not allowed(who.role, Permission.TICKET_WORK):
        return await deny(request, who, forbidden(who, Permission.TICKET_WORK, reference))
    try:
        await service.act(
            request.app[ENGINE],
            who,
            reference,
            action,
            assignee=_field(form, "assignee", 64) or None,
            resolution=_field(form, "resolution") or None,
            comment=_field(form, "comment") or None,
        )
    except Forbidden as exc:
        return await deny(request, who, exc)
    except NotFound as exc:
        return redirect("/queue", "error", str(exc))
    except (Conflict, Invalid) as exc:
        return redirect(back, "error", _sentence(str(exc)))
    return redirect(back, "ok", f"{reference} {DONE_LABELS[action]}.")


@routes.post("/tickets/{reference}/comments")
async def ticket_comment(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    reference = request.match_info["reference"][:16].upper()
    back = f"/tickets/{reference}"
    if not allowed(who.role, Permission.TICKET_COMMENT):
        return await deny(request, who, forbidden(who, Permission.TICKET_COMMENT, reference))
    body = _field(await request.post(), "body")
    if not body:
        return redirect(back, "error", "Write something before adding a comment.")
    try:
        await service.comment(request.app[ENGINE], who, reference, body)
    except NotFound as exc:
        return redirect("/queue", "error", str(exc))
    return redirect(back + "#timeline", "ok", "Comment added.")


@routes.post("/tickets/{reference}/kb-links")
async def ticket_kb_link(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    reference = request.match_info["reference"][:16].upper()
    back = f"/tickets/{reference}"
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE, reference))
    raw = _field(await request.post(), "article_id", 12)
    if not raw.isdigit():
        return redirect(back, "error", "Choose an article to link.")
    engine = request.app[ENGINE]
    try:
        await service.get(engine, reference, who)  # the ticket must be visible to them
        linked = await kb.link_article(engine, reference, int(raw), who.name)
    except NotFound as exc:
        return redirect(back, "error", _sentence(str(exc)))
    return redirect(back, "ok", "Article linked." if linked else "That article was already linked.")


@routes.post("/tickets/{reference}/kb-article")
async def ticket_to_article(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    reference = request.match_info["reference"][:16].upper()
    back = f"/tickets/{reference}"
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE, reference))
    engine = request.app[ENGINE]
    try:
        await service.get(engine, reference, who)
        article = await kb.article_from_ticket(engine, reference, who.name)
    except (NotFound, Conflict) as exc:
        return redirect(back, "error", _sentence(str(exc)))
    return redirect(f"/kb/{article['id']}", "ok", "Article written from the resolution.")


def _sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return "That did not work."
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."
