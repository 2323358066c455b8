"""REST endpoints under ``/api/v1``. Each is described in ``openapi.py``."""

from __future__ import annotations

from aiohttp import web

from protocol import identity

from .. import __version__, accounts, audit, devices, enrollment
from ..clock import isoformat
from ..errors import ApiError, ConfigError, Invalid, NotFound
from ..permissions import Permission
from ..settings import ENGINE, PRESENCE, SETTINGS
from .middleware import require
from .openapi import SPEC
from .validation import read_json

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(SPEC)


# GET /api/v1/devices (list and search) lives in api/inventory.py.


@routes.get("/api/v1/devices/{device_id}")
async def get_device(request: web.Request) -> web.Response:
    await require(request, Permission.DEVICE_VIEW)
    device_id = request.match_info["device_id"]
    found = await devices.get_device(request.app[ENGINE], request.app[PRESENCE], device_id[:64])
    if found is None:
        raise ApiError(404, "not_found", f"no device with id {device_id[:64]!r}")
    return web.json_response(found)


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    await require(request, Permission.USER_MANAGE)
    return web.json_response({"users": await accounts.list_users(request.app[ENGINE])})


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    who = await require(request, Permission.USER_MANAGE)
    body = await read_json(request, "UserCreate")
    try:
        user = await accounts.add_user(
            request.app[ENGINE],
            body["name"],
            body["role"],
            body["password"],
            actor=who.name,
            full_name=body.get("full_name"),
        )
    except ConfigError as exc:
        raise Invalid(str(exc)) from None
    return web.json_response(
        {"id": user.id, "name": user.name, "role": user.role, "totp_uri": user.totp_uri},
        status=201,
    )


@routes.patch("/api/v1/users/{name}")
async def update_user(request: web.Request) -> web.Response:
    who = await require(request, Permission.USER_MANAGE)
    body = await read_json(request, "UserUpdate")
    user = await accounts.update_user(
        request.app[ENGINE], who.name, request.match_info["name"][:64], **body
    )
    return web.json_response(user)


@routes.post("/api/v1/users/{name}/api-keys")
async def create_api_key(request: web.Request) -> web.Response:
    who = await require(request, Permission.USER_MANAGE)
    name = request.match_info["name"][:64]
    try:
        key = await accounts.create_api_key(request.app[ENGINE], name, actor=who.name)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return web.json_response({"key": key, "user": name}, status=201)


@routes.post("/api/v1/enrollment-tokens")
async def create_enrollment_token(request: web.Request) -> web.Response:
    who = await require(request, Permission.ENROLLMENT_MANAGE)
    body = await read_json(request, "EnrollmentTokenCreate")
    try:
        lifetime = enrollment.parse_duration(body.get("expires", "24h"))
    except ConfigError as exc:
        raise Invalid(str(exc), "expires") from None
    token, expires_at = await enrollment.create_token(request.app[ENGINE], lifetime, actor=who.name)
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "token": token,
            "expires_at": isoformat(expires_at),
            "fingerprint": identity.format_fingerprint(settings.fingerprint),
        },
        status=201,
    )


@routes.get("/api/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    await require(request, Permission.AUDIT_READ)
    before = request.query.get("before")
    entries = await audit.recent(
        request.app[ENGINE], 100, int(before) if before and before.isdigit() else None
    )
    return web.json_response({"entries": entries})
