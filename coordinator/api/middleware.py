"""Where HTTP errors become JSON, and where requests are authenticated.

Every error response has the shape ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .. import audit
from ..accounts import Principal, principal_for_api_key
from ..errors import ApiError, Conflict, Forbidden, Invalid, NotFound
from ..permissions import Permission, allowed
from ..settings import ENGINE
from ..web import sessions as web_sessions

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PRINCIPAL = "backdesk.principal"
# Paths anyone may read: liveness for load balancers and the API description.
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="backdesk"'} if status == 401 else None
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except Conflict as exc:
        return error_response(409, "conflict", str(exc))
    except Invalid as exc:
        return error_response(400, "invalid_field", str(exc), exc.field)
    except Forbidden as exc:
        await _audit_denial(request, exc)
        return error_response(403, "forbidden", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        response = error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
        if "Allow" in exc.headers:  # a 405 must say what is allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error; see the server log")


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/") and request.path not in PUBLIC_PATHS:
        request[PRINCIPAL] = await _authenticate(request)
    return await handler(request)


async def _authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if not header and request.cookies.get(web_sessions.COOKIE):
        return await _console_session(request)
    if not header:
        raise ApiError(
            401, "unauthorized", "authentication required: send 'Authorization: Bearer KEY'"
        )
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(401, "unauthorized", "use the Bearer scheme with an API key")
    principal = await principal_for_api_key(request.app[ENGINE], credentials.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    return principal


async def _console_session(request: web.Request) -> Principal:
    """The console's own scripts call the API with the session cookie. A cookie is sent
    by the browser whoever wrote the page, so changes must also prove they come from our
    pages: same origin, and the session's CSRF token in the ``X-CSRF-Token`` header."""
    session = await web_sessions.lookup(request.app[ENGINE], request.cookies[web_sessions.COOKIE])
    if session is None:
        raise ApiError(401, "unauthorized", "the console session has ended: sign in again")
    if request.method not in web_sessions.SAFE_METHODS:
        if not web_sessions.same_origin(request):
            raise ApiError(403, "cross_origin", "requests from other sites are refused")
        if not web_sessions.tokens_match(
            session.csrf_token, request.headers.get(web_sessions.CSRF_HEADER)
        ):
            raise ApiError(
                403,
                "csrf_token_missing",
                f"send the console's CSRF token in the {web_sessions.CSRF_HEADER} header",
            )
    return session.principal


def principal(request: web.Request) -> Principal:
    value = request[PRINCIPAL]
    assert isinstance(value, Principal)
    return value


async def _audit_denial(request: web.Request, exc: Forbidden) -> None:
    who = request.get(PRINCIPAL)
    async with request.app[ENGINE].begin() as conn:
        await audit.append(
            conn,
            who.name if isinstance(who, Principal) else "anonymous",
            "permission.denied",
            exc.target,
            {
                "permission": exc.permission,
                "role": who.role if isinstance(who, Principal) else None,
                "method": request.method,
                "path": request.path,
            },
        )


def check(who: Principal, permission: Permission, target: str = "") -> None:
    """Raise Forbidden (a 403, recorded in the audit log) unless the role grants it."""
    if not allowed(who.role, permission):
        raise Forbidden(
            permission.value,
            f"role {who.role!r} may not {permission.value.replace('.', ' ').replace('_', ' ')}",
            target,
        )


async def require(request: web.Request, permission: Permission, target: str = "") -> Principal:
    """The caller, if their role grants ``permission``."""
    who = principal(request)
    check(who, permission, target)
    return who
