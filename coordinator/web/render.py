"""Turning templates into pages: the Jinja2 environment, flash messages, SLA clocks.

Autoescaping is on for every template: whatever a user typed or an agent reported is
text, never markup. Nothing here marks user data safe; the only ``Markup`` the console
builds is the knowledge base's rendered Markdown, which ``kb.render_markdown`` produces
with raw HTML escaped and links restricted to http, https and mailto.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from aiohttp import web

from .. import __version__
from ..permissions import Permission, allowed
from ..tickets.service import BREACHING_SOON
from .sessions import CSRF_FIELD, current

FLASH_COOKIE = "backdesk_flash"
FLASH_KINDS = ("ok", "error")
MAX_FLASH = 600

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("coordinator.web", "templates"),
    autoescape=True,  # every value that came from an agent or a user is escaped
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- values shown on pages -----------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def when(value: str | None) -> str:
    """A UTC time as people read it: '4 Dec 2025, 17:15 UTC' (scripts localise it)."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def duration(delta: timedelta) -> str:
    """'45 min', '2 h 5 min', '3 d 4 h'."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def ago(value: str | None, now: datetime | None = None) -> str:
    moment = parse_time(value)
    if moment is None:
        return "—"
    delta = (now or datetime.now(UTC)) - moment
    if delta < timedelta(minutes=1):
        return "just now"
    return duration(delta) + " ago"


def sla_clock(ticket: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Which deadline runs now, and how it stands: ok, soon, breached or done.

    Until someone owns or answers the ticket the clock is the time to own; after that,
    the time to resolve. Resolved and closed tickets have no running clock.
    """
    now = now or datetime.now(UTC)
    sla = ticket["sla"]
    status = ticket["status"]
    if status in ("resolved", "closed"):
        return {"state": "done", "text": status, "due": None, "label": "", "title": ""}
    if sla["owned_at"] is None and sla["answered_at"] is None:
        due, label, breached = sla["own_due_at"], "to own", sla["own_breached"]
    else:
        due, label, breached = sla["resolve_due_at"], "to resolve", sla["resolve_breached"]
    moment = parse_time(due)
    assert moment is not None
    left = moment - now
    if breached or left <= timedelta(0):
        state, text = "breached", "breached"
    else:
        state = "soon" if left <= BREACHING_SOON else "ok"
        text = f"{duration(left)} left"
    return {
        "state": state,
        "text": text,
        "due": due,
        "label": label,
        "title": f"due {when(due)} ({label})",
    }


def label(value: str | None) -> str:
    """'waiting_user' -> 'waiting user'."""
    return (value or "").replace("_", " ")


ROLE_NAMES = {
    "l1": "Level 1",
    "l2": "Level 2",
    "l3": "Level 3",
    "onsite": "On-site",
    "admin": "Administrator",
}

ENV.filters.update(when=when, ago=ago, label=label)
ENV.globals.update(
    sla_clock=sla_clock, role_names=ROLE_NAMES, version=__version__, csrf_field=CSRF_FIELD
)


# --- flash messages (Post/Redirect/Get) ----------------------------------------------


def flash(response: web.StreamResponse, kind: str, message: str) -> None:
    """A one-time message shown by the next page this browser opens."""
    assert kind in FLASH_KINDS
    response.set_cookie(
        FLASH_COOKIE,
        quote(f"{kind}:{message[:MAX_FLASH]}", safe=""),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
        max_age=60,
    )


def redirect(location: str, kind: str | None = None, message: str = "") -> web.Response:
    """303 See Other to ``location`` (a path on this site), with an optional flash."""
    if not location.startswith("/") or location.startswith("//"):
        location = "/"
    response = web.Response(status=303, headers={"Location": location})
    if kind is not None:
        flash(response, kind, message)
    return response


def _take_flash(request: web.Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    kind, _, message = unquote(raw).partition(":")
    if kind not in FLASH_KINDS or not message:
        return None
    return {"kind": kind, "message": message[:MAX_FLASH]}


# --- pages ---------------------------------------------------------------------------


def page_response(template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page without a signed-in user (sign-in, errors before sign-in)."""
    context.setdefault("session", None)
    context.setdefault("flash", None)
    html = ENV.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html")


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """A page for whoever is signed in: the nav bar, their CSRF token, the pending flash."""
    session = current(request)
    can = (lambda p: allowed(session.principal.role, p)) if session else (lambda p: False)
    flash_message = _take_flash(request)
    context.update(
        session=session,
        me=session.principal if session else None,
        csrf=session.csrf_token if session else "",
        can=can,
        Permission=Permission,
        flash=flash_message,
        path=request.path,
    )
    response = page_response(template, status=status, **context)
    if flash_message is not None or FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response
