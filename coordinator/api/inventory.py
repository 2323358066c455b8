"""Inventory for on-site staff: search devices, latest inventory, change history, exports.

Every value comes from agents: it is returned as JSON strings (or CSV cells, quoted
against spreadsheet formulas) and never as markup; escaping is the console's job.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .. import inventory
from ..clock import isoformat
from ..errors import ApiError
from ..permissions import Permission
from ..settings import ENGINE, PRESENCE
from . import spec
from .middleware import require

routes = web.RouteTableDef()

MAX_LIMIT = 5000
MAX_EXPORT = 100_000


def _filters(request: web.Request) -> inventory.Filters:
    big = 10**9
    ram = spec.query_int(request, "ram_below", -1, 0, big)
    disk = spec.query_int(request, "disk_free_below", -1, 0, big)
    wear = spec.query_int(request, "battery_wear_above", -1, 0, 100)
    return inventory.Filters(
        q=spec.query_str(request, "q", 200),
        ram_below=None if ram < 0 else ram,
        disk_free_below=None if disk < 0 else disk,
        battery_wear_above=None if wear < 0 else wear,
        finding=spec.query_str(request, "finding", 64),
    )


def _device_id(request: web.Request) -> str:
    return request.match_info["device_id"][:64]


async def _existing(request: web.Request) -> str:
    device_id = _device_id(request)
    if not await inventory.device_exists(request.app[ENGINE], device_id):
        raise ApiError(404, "not_found", f"no device with id {device_id!r}")
    return device_id


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    await require(request, Permission.DEVICE_VIEW)
    found = await inventory.search(
        request.app[ENGINE],
        _filters(request),
        request.app[PRESENCE],
        limit=spec.query_int(request, "limit", 1000, 1, MAX_LIMIT),
        offset=spec.query_int(request, "offset", 0, 0, 10**7),
    )
    return web.json_response({"devices": found})


@routes.get("/api/v1/devices/export.csv")
async def export_csv(request: web.Request) -> web.Response:
    await require(request, Permission.DEVICE_VIEW)
    found = await inventory.search(
        request.app[ENGINE], _filters(request), request.app[PRESENCE], limit=MAX_EXPORT
    )
    return web.Response(
        text=inventory.to_csv(found),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="devices.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _latest(request: web.Request) -> tuple[str, dict[str, Any], str]:
    await require(request, Permission.DEVICE_VIEW)
    device_id = await _existing(request)
    found = await inventory.latest(request.app[ENGINE], device_id)
    if found is None:
        raise ApiError(404, "not_found", "this device has not sent an inventory yet")
    document, received_at = found
    return device_id, document, isoformat(received_at) or ""


@routes.get("/api/v1/devices/{device_id}/inventory")
async def get_inventory(request: web.Request) -> web.Response:
    device_id, document, received_at = await _latest(request)
    return web.json_response(
        {"device_id": device_id, "received_at": received_at, "document": document}
    )


@routes.get("/api/v1/devices/{device_id}/inventory.glpi.json")
async def download_inventory(request: web.Request) -> web.Response:
    device_id, document, _received_at = await _latest(request)
    return web.Response(
        text=json.dumps(document, ensure_ascii=False, indent=1),
        content_type="application/json",
        charset="utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(device_id)}.json",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.get("/api/v1/devices/{device_id}/history")
async def get_history(request: web.Request) -> web.Response:
    await require(request, Permission.DEVICE_VIEW)
    device_id = await _existing(request)
    before = spec.query_int(request, "before", 0, 1, 2**62) or None
    changes = await inventory.history(
        request.app[ENGINE],
        device_id,
        limit=spec.query_int(request, "limit", 100, 1, 1000),
        before=before,
    )
    return web.json_response({"device_id": device_id, "changes": changes})


# --- OpenAPI ----------------------------------------------------------------------------

_DEVICE = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}
_NOT_FOUND = {"404": spec.error("No such device, or no inventory yet")}
_BAD = {"400": spec.error("Bad query parameter (the parameter is named)")}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_FILTERS = [
    _query(
        "q",
        {"type": "string", "maxLength": 200},
        "words that must all appear in hostname, user, serial, model, CPU, OS or software",
    ),
    _query("ram_below", {"type": "integer", "minimum": 0}, "memory below this many MB"),
    _query(
        "disk_free_below",
        {"type": "integer", "minimum": 0},
        "some filesystem has less than this many MB free",
    ),
    _query(
        "battery_wear_above",
        {"type": "integer", "minimum": 0, "maximum": 100},
        "a battery has lost more than this percentage of its design capacity",
    ),
    _query("finding", {"type": "string", "maxLength": 64}, "has this finding id"),
]

PATHS: dict[str, Any] = {
    "/api/v1/devices": {
        "get": {
            "summary": "Enrolled devices with their presence; search and filter by inventory",
            "parameters": [
                *_FILTERS,
                _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, ""),
                _query("offset", {"type": "integer", "minimum": 0}, ""),
            ],
            "responses": {"200": spec.ok("DeviceList"), **_BAD, **spec.AUTH_ERRORS},
        }
    },
    "/api/v1/devices/export.csv": {
        "get": {
            "summary": "The devices matching the same filters, as CSV",
            "parameters": _FILTERS,
            "responses": {
                "200": {
                    "description": "CSV with a header row",
                    "content": {"text/csv": {"schema": {"type": "string"}}},
                },
                **_BAD,
                **spec.AUTH_ERRORS,
            },
        }
    },
    "/api/v1/devices/{device_id}/inventory": {
        "get": {
            "summary": "The device's latest inventory (GLPI JSON format)",
            "parameters": [_DEVICE],
            "responses": {
                "200": spec.ok("DeviceInventory"),
                **_NOT_FOUND,
                **spec.AUTH_ERRORS,
            },
        }
    },
    "/api/v1/devices/{device_id}/inventory.glpi.json": {
        "get": {
            "summary": "Download the latest inventory as a GLPI JSON file (for GLPI import)",
            "parameters": [_DEVICE],
            "responses": {
                "200": {
                    "description": "The GLPI inventory document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_NOT_FOUND,
                **spec.AUTH_ERRORS,
            },
        }
    },
    "/api/v1/devices/{device_id}/history": {
        "get": {
            "summary": "What changed in the device's inventory, newest first",
            "parameters": [
                _DEVICE,
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, ""),
                _query("before", {"type": "integer", "minimum": 1}, "a change id: older ones"),
            ],
            "responses": {
                "200": spec.ok("DeviceHistory"),
                **_BAD,
                **_NOT_FOUND,
                **spec.AUTH_ERRORS,
            },
        }
    },
}

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Device": {
        "type": "object",
        "required": ["id", "hostname", "online", "last_seen"],
        "properties": {
            "id": {"type": "string"},
            "hostname": {"type": "string"},
            "online": {"type": "boolean"},
            "last_seen": {"type": ["string", "null"], "format": "date-time"},
            "enrolled_at": {"type": "string", "format": "date-time"},
            "agent_version": _NULLABLE_STR,
            "facts": {"type": "object"},
            "inventory": {
                "type": ["object", "null"],
                "description": "summary of the latest inventory (lowercased), if any",
                "properties": {
                    "user": _NULLABLE_STR,
                    "serial": _NULLABLE_STR,
                    "model": _NULLABLE_STR,
                    "cpu": _NULLABLE_STR,
                    "os": _NULLABLE_STR,
                    "memory_mb": _NULLABLE_INT,
                    "min_disk_free_mb": _NULLABLE_INT,
                    "max_battery_wear_pct": _NULLABLE_INT,
                    "received_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
    "DeviceInventory": {
        "type": "object",
        "required": ["device_id", "received_at", "document"],
        "properties": {
            "device_id": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"},
            "document": {"type": "object", "description": "GLPI inventory format"},
        },
    },
    "DeviceHistory": {
        "type": "object",
        "required": ["device_id", "changes"],
        "properties": {
            "device_id": {"type": "string"},
            "changes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "at", "section", "kind", "summary"],
                    "properties": {
                        "id": {"type": "integer"},
                        "at": {"type": "string", "format": "date-time"},
                        "section": {"type": "string"},
                        "kind": {"enum": ["added", "removed", "changed"]},
                        "summary": {
                            "type": "object",
                            "description": "item; before/after, or the changed fields",
                        },
                    },
                },
            },
        },
    },
}
