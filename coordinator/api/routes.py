"""REST endpoints under ``/api/v1``. Each is described in ``openapi.py``."""

from __future__ import annotations

from aiohttp import web

from .. import __version__, accounts, devices
from ..errors import ApiError
from ..permissions import Permission
from ..settings import ENGINE, PRESENCE
from .middleware import require
from .openapi import SPEC

routes = web.RouteTableDef()


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(SPEC)


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    await require(request, Permission.DEVICE_VIEW)
    found = await devices.list_devices(request.app[ENGINE], request.app[PRESENCE])
    return web.json_response({"devices": found})


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
