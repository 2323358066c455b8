"""Signing in to the console (name, password and a TOTP code) and signing out.

Any failure shows the same message, so the page tells nobody which of the three was
wrong; the audit log says why (``auth.sign_in_failed`` with a reason, never the
password). Too many failures for a name or from an address in 15 minutes and further
attempts are refused with HTTP 429 until the window passes (``sessions.SignInLimiter``).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import audit
from ..accounts import check_password, totp_ok, totp_secret
from ..settings import ENGINE
from . import sessions
from .render import page_response, redirect, render

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

GENERIC_FAILURE = "wrong name, password or code"
LOGIN_TOKEN_FIELD = "signin_token"


def _next_page(raw: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not raw:
        return "/queue"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return "/queue"
    if "\\" in raw or parts.path in ("/login", "/logout"):
        return "/queue"
    return raw


def _login_page(
    request: web.Request,
    status: int = 200,
    error: str | None = None,
    name: str = "",
    next_page: str = "",
) -> web.Response:
    # Keep the token this browser already has, so two open sign-in tabs both work.
    token = request.cookies.get(sessions.LOGIN_COOKIE, "")
    if not 24 <= len(token) <= 64 or not token.replace("-", "").replace("_", "").isalnum():
        token = secrets.token_urlsafe(24)
    response = page_response(
        "login.html",
        status=status,
        error=error,
        name=name,
        next_page=next_page,
        signin_token=token,
        token_field=LOGIN_TOKEN_FIELD,
    )
    response.set_cookie(
        sessions.LOGIN_COOKIE,
        token,
        path="/login",
        secure=True,
        httponly=True,
        samesite="Strict",
        max_age=3600,
    )
    return response


def _address(request: web.Request) -> str:
    # The peer address. Behind a reverse proxy this is the proxy's: the limit then
    # applies to everyone behind it, and the per-name limit still holds.
    return request.remote or "unknown"


async def _audit(
    request: web.Request, actor: str, action: str, target: str, details: dict[str, Any]
) -> None:
    async with request.app[ENGINE].begin() as conn:
        await audit.append(conn, actor, action, target[:200], details)


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    return redirect("/queue")


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if sessions.current(request) is not None:
        return redirect(_next_page(request.query.get("next")))
    return _login_page(request, next_page=_next_page(request.query.get("next")))


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()

    def field(name: str, limit: int) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    name = field("name", 64).strip()
    password = field("password", 200)
    code = field("code", 16).strip().replace(" ", "")
    next_page = _next_page(field("next", 500))

    if not sessions.tokens_match(
        request.cookies.get(sessions.LOGIN_COOKIE, ""), field(LOGIN_TOKEN_FIELD, 100)
    ):
        return page_response(
            "error.html",
            status=403,
            title="Request refused",
            message="This sign-in form is out of date. Reload the page and try again.",
        )

    address = _address(request)
    limiter = request.app[sessions.LIMITER]
    wait = limiter.retry_after(name, address)
    if wait is not None:
        await _audit(
            request,
            "anonymous",
            "auth.sign_in_failed",
            name,
            {"reason": "rate_limited", "address": address},
        )
        minutes = max(1, round(wait / 60))
        response = _login_page(
            request,
            429,
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            name,
            next_page,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    engine = request.app[ENGINE]
    who = await check_password(engine, name, password) if name and password else None
    reason = None
    if who is None:
        reason = "password"
    elif not totp_ok(await totp_secret(engine, who.user_id), code) or not request.app[
        sessions.USED_CODES
    ].first_use(who.user_id, code):
        reason = "totp"
    if who is None or reason is not None:
        limiter.failed(name, address)
        await _audit(
            request,
            "anonymous",
            "auth.sign_in_failed",
            name,
            {"reason": reason, "address": address},
        )
        return _login_page(request, 401, GENERIC_FAILURE, name, next_page)

    limiter.succeeded(name)
    token = await sessions.open_session(engine, who)
    await _audit(request, who.name, "auth.signed_in", who.name, {"address": address})
    log.info("%s signed in to the console", who.name)
    response = redirect(next_page)
    sessions.set_cookie(response, token)
    response.del_cookie(
        sessions.LOGIN_COOKIE, path="/login", secure=True, httponly=True, samesite="Strict"
    )
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    session = sessions.signed_in(request)
    await sessions.close_session(request.app[ENGINE], session)
    name = session.principal.name
    await _audit(request, name, "auth.signed_out", name, {})
    response = redirect("/login")
    sessions.clear_cookie(response)
    return response


@routes.get("/logout")
async def logout_page(request: web.Request) -> web.Response:
    # Signing out changes something, so it is a POST; a GET only offers the button.
    return render(request, "logout.html")
