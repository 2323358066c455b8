"""Where HTTP errors become JSON, and where requests are authenticated.

Every error response has the shape ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .. import audit
from ..accounts import Principal, principal_for_api_key
from ..errors import ApiError
from ..permissions import Permission, allowed
from ..settings import ENGINE

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
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        return error_response(exc.status, _HTTP_CODES.get(exc.status, "http_error"), exc.reason)
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


def principal(request: web.Request) -> Principal:
    value = request[PRINCIPAL]
    assert isinstance(value, Principal)
    return value


async def require(request: web.Request, permission: Permission, target: str = "") -> Principal:
    """The caller, if their role grants ``permission``; else a 403, recorded in the audit log."""
    who = principal(request)
    if not allowed(who.role, permission):
        engine = request.app[ENGINE]
        async with engine.begin() as conn:
            await audit.append(
                conn,
                who.name,
                "permission.denied",
                target,
                {"permission": permission.value, "role": who.role, "path": request.path},
            )
        raise ApiError(
            403, "forbidden", f"role {who.role!r} may not {permission.value.replace('.', ' ')}"
        )
    return who
