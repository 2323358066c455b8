"""Where HTTP errors become JSON, and where requests are authenticated.

Every error response has the shape ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..accounts import Principal, principal_for_api_key
from ..errors import ApiError
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


def error_response(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="backdesk"'} if status == 401 else None
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message)
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


def require_role(request: web.Request, *roles: str) -> Principal:
    who = principal(request)
    if who.role not in roles:
        raise ApiError(403, "forbidden", f"role {who.role!r} may not do this")
    return who
