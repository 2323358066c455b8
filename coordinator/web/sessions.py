"""Who is signed in to the console: cookie sessions, CSRF tokens, sign-in rate limits.

A console session is a random token (``secrets.token_urlsafe(32)``) in the
``backdesk_session`` cookie (Secure, HttpOnly, SameSite=Strict, Path=/). The database
keeps only its SHA-256 in ``web_sessions``, with the user, a per-session CSRF token and
an expiry twelve hours after sign-in. The user row is read on every request, so a role
change or a disabled account takes effect at once.

Requests that change something (POST, PUT, PATCH, DELETE) must come from our own pages:
an ``Origin`` header, when the browser sends one, must name this host, and the form's
hidden ``csrf_token`` (or, for the REST API called by console scripts, the
``X-CSRF-Token`` header) must equal the session's. The sign-in form has no session yet:
it uses a double-submit token in its own short-lived cookie.

``console`` is the middleware that applies all of this to every page outside ``/api/``
and ``/ws/``, and sets the security headers (a strict Content-Security-Policy: scripts
only from ``/static/``, no framing).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit

from aiohttp import web
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..accounts import Principal
from ..clock import utcnow
from ..settings import ENGINE
from ..storage.schema import users, web_sessions

log = logging.getLogger(__name__)

COOKIE = "backdesk_session"
LOGIN_COOKIE = "backdesk_signin"  # double-submit CSRF token of the sign-in form
SESSION_LIFETIME = timedelta(hours=12)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Pages anyone may open (everything else needs a session).
PUBLIC_PAGES = frozenset({"/login"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": Chromium then sends "Origin: null" on our own form posts.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    full_name: str | None
    csrf_token: str
    token_hash: bytes
    expires_at: datetime


SESSION = "backdesk.web_session"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# --- the session store ------------------------------------------------------------------


async def open_session(engine: AsyncEngine, who: Principal) -> str:
    """A new session for ``who``; returns the token to put in the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
        await conn.execute(
            insert(web_sessions).values(
                token_hash=_hash(token),
                user_id=who.user_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return token


async def lookup(engine: AsyncEngine, token: str) -> WebSession | None:
    """The live session of this cookie value, or None (unknown, expired, user disabled)."""
    if not token or len(token) > 128:
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    web_sessions.c.token_hash,
                    web_sessions.c.csrf_token,
                    web_sessions.c.expires_at,
                    users.c.id,
                    users.c.name,
                    users.c.role,
                    users.c.full_name,
                )
                .join(users, users.c.id == web_sessions.c.user_id)
                .where(
                    web_sessions.c.token_hash == _hash(token),
                    web_sessions.c.expires_at > utcnow(),
                    ~users.c.disabled,
                )
            )
        ).first()
    if row is None:
        return None
    return WebSession(
        Principal(row.id, row.name, row.role),
        row.full_name,
        row.csrf_token,
        bytes(row.token_hash),
        row.expires_at,
    )


async def close_session(engine: AsyncEngine, session: WebSession) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            delete(web_sessions).where(web_sessions.c.token_hash == session.token_hash)
        )


def set_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")


def current(request: web.Request) -> WebSession | None:
    """The session the ``console`` middleware found for this request, if any."""
    value = request.get(SESSION)
    return value if isinstance(value, WebSession) else None


def signed_in(request: web.Request) -> WebSession:
    """The session of a page behind sign-in (the middleware has made sure there is one)."""
    session = current(request)
    assert session is not None
    return session


# --- CSRF and origin --------------------------------------------------------------------


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def same_origin(request: web.Request) -> bool:
    """True unless the browser says the request comes from another site.

    Browsers send ``Origin`` on every cross-site POST; when it is there it must name
    this very host (scheme aside: the coordinator only speaks HTTPS).
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme == "https" and parts.netloc.lower() == request.host.lower()


# --- sign-in rate limits ----------------------------------------------------------------


class SignInLimiter:
    """Failed sign-ins per account name and per client address, in a sliding window.

    After ``limit`` failures in ``window`` for a name or for an address, further
    attempts are refused (HTTP 429) without looking at the password, until the oldest
    failure leaves the window. Refused attempts are not counted, so the wait ends.

    This is in-process state: it is lost on restart, and with several coordinator
    nodes each one counts on its own (an attacker gets the limit once per node). A
    shared store would make it global; for one node it is what we need.
    """

    MAX_KEYS = 100_000  # bound memory under a flood of distinct names or addresses

    def __init__(
        self,
        limit: int = 5,
        window: float = 15 * 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return f"name:{name.strip().lower()[:64]}", f"addr:{address}"

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds until this name and address may try again; None if they may now."""
        now = self.clock()
        waits = [
            times[0] + self.window - now
            for key in self._keys(name, address)
            if len(times := self._recent(key, now)) >= self.limit
        ]
        return max(waits) if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.MAX_KEYS:
            for key in list(self._failures):
                self._recent(key, now)
            if len(self._failures) >= self.MAX_KEYS:
                self._failures.clear()
        for key in self._keys(name, address):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        """A correct sign-in clears that name's failures (not the address's)."""
        self._failures.pop(self._keys(name, "")[0], None)


class UsedCodes:
    """TOTP codes already accepted, so that a code seen over a shoulder cannot be replayed
    while it is still valid (RFC 6238, section 5.2). In-process, like ``SignInLimiter``."""

    def __init__(self, keep: float = 120, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.clock = clock
        self._seen: dict[tuple[int, str], float] = {}

    def first_use(self, user_id: int, code: str) -> bool:
        now = self.clock()
        self._seen = {k: t for k, t in self._seen.items() if t > now - self.keep}
        key = (user_id, code.strip())
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


LIMITER = web.AppKey("sign_in_limiter", SignInLimiter)
USED_CODES = web.AppKey("used_totp_codes", UsedCodes)


def setup(app: web.Application) -> None:
    app[LIMITER] = SignInLimiter()
    app[USED_CODES] = UsedCodes()


# --- the middleware ---------------------------------------------------------------------


def _secure(response: web.StreamResponse | web.HTTPException, private: bool) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if private:
        response.headers["Cache-Control"] = "no-store"


def refuse(message: str, request: web.Request | None = None) -> web.Response:
    """A 403 page (CSRF or origin check failed)."""
    return _error_page(403, "Request refused", message, request)


@web.middleware
async def console(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign-in, CSRF and origin checks, and security headers, for the console's pages."""
    path = request.path
    if path.startswith(("/api/", "/ws/")):
        return await handler(request)
    if path.startswith("/static/"):
        response = await handler(request)
        _secure(response, private=False)
        return response

    unsafe = request.method not in SAFE_METHODS
    if unsafe and not same_origin(request):
        log.warning("refused a cross-origin %s to %s", request.method, path)
        response = refuse("This request came from another site and was refused.")
        _secure(response, private=True)
        return response

    token = request.cookies.get(COOKIE, "")
    session = await lookup(request.app[ENGINE], token) if token else None
    request[SESSION] = session
    try:
        if session is None and path not in PUBLIC_PAGES:
            target = "/login"
            if not unsafe and path != "/":
                target += "?next=" + quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(target)
        if unsafe and session is not None and path not in PUBLIC_PAGES:
            form = await request.post()
            given = form.get(CSRF_FIELD)
            if not tokens_match(session.csrf_token, given if isinstance(given, str) else None):
                log.warning("refused a %s to %s without a valid CSRF token", request.method, path)
                response = refuse(
                    "This form is out of date or did not come from Backdesk. "
                    "Go back, reload the page and try again.",
                    request,
                )
                _secure(response, private=True)
                return response
        response = await handler(request)
    except web.HTTPNotFound:
        response = _error_page(404, "Not found", "There is no such page.", request)
    except web.HTTPException as exc:
        _secure(exc, private=True)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, path)
        response = _error_page(
            500,
            "Something went wrong",
            "The error is in the coordinator's log. Try again.",
            request,
        )
    _secure(response, private=True)
    return response


def _error_page(
    status: int, title: str, message: str, request: web.Request | None = None
) -> web.Response:
    from .render import page_response, render  # render.py imports this module

    if request is not None and current(request) is not None:
        return render(request, "error.html", status=status, title=title, message=message)
    return page_response("error.html", status=status, title=title, message=message)
