"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Each API module declares its own ``PATHS`` and ``SCHEMAS`` next to its handlers; this
module holds the shared parts and merges them. A test checks that every route the app
registers is described, and the reverse. Request schemas double as the validators of
request bodies (``validation.py``).
"""

from __future__ import annotations

import copy
from typing import Any

from .. import __version__
from . import spec

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Backdesk coordinator API",
        "version": __version__,
        "description": "Remote maintenance for help desks. Authenticate with "
        "`Authorization: Bearer KEY` (create keys with `backdesk-coordinator apikey create`).",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/health": {
            "get": {
                "summary": "Liveness check",
                "security": [],
                "responses": {"200": spec.ok("Health")},
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document"}},
            }
        },
        "/api/v1/devices": {
            "get": {
                "summary": "List enrolled devices with their presence",
                "responses": {"200": spec.ok("DeviceList"), **spec.AUTH_ERRORS},
            }
        },
        "/api/v1/devices/{device_id}": {
            "get": {
                "summary": "One device",
                "parameters": [
                    {
                        "name": "device_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": spec.ok("Device"),
                    "404": spec.error("No such device"),
                    **spec.AUTH_ERRORS,
                },
            }
        },
        "/api/v1/users": {
            "get": {
                "summary": "List technician accounts (admin only)",
                "responses": {"200": spec.ok("UserList"), **spec.AUTH_ERRORS},
            },
            "post": {
                "summary": "Create an account (admin only); the answer holds its TOTP URI, once",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/UserCreate"}}
                    },
                },
                "responses": {
                    "201": {"description": "Created"},
                    "400": spec.error("Invalid field"),
                    "409": spec.error("Name taken"),
                    **spec.AUTH_ERRORS,
                },
            },
        },
        "/api/v1/users/{name}": {
            "patch": {
                "summary": "Change an account's role, name or disable it (admin only; audited)",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/UserUpdate"}}
                    },
                },
                "responses": {
                    "200": {"description": "The account"},
                    "404": spec.error("No such user"),
                    **spec.AUTH_ERRORS,
                },
            }
        },
        "/api/v1/users/{name}/api-keys": {
            "post": {
                "summary": "Create an API key for an account (admin only); shown once",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "201": {"description": "{key, user}"},
                    "404": spec.error("No such user"),
                    **spec.AUTH_ERRORS,
                },
            }
        },
        "/api/v1/enrollment-tokens": {
            "post": {
                "summary": "Create a one-time enrollment token (admin only)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/EnrollmentTokenCreate"}
                        }
                    },
                },
                "responses": {
                    "201": {"description": "{token, expires_at, fingerprint}"},
                    "400": spec.error("Invalid field"),
                    **spec.AUTH_ERRORS,
                },
            }
        },
        "/api/v1/audit": {
            "get": {
                "summary": "The audit log, newest first, 100 at a time (admin only)",
                "parameters": [
                    {
                        "name": "before",
                        "in": "query",
                        "schema": {"type": "integer"},
                        "description": "entries with a smaller id",
                    }
                ],
                "responses": {"200": {"description": '{"entries": [...]}'}, **spec.AUTH_ERRORS},
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    }
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
            },
            "Device": {
                "type": "object",
                "required": ["id", "hostname", "online", "last_seen"],
                "properties": {
                    "id": {"type": "string"},
                    "hostname": {"type": "string"},
                    "online": {"type": "boolean"},
                    "last_seen": {"type": ["string", "null"], "format": "date-time"},
                    "enrolled_at": {"type": "string", "format": "date-time"},
                    "agent_version": {"type": ["string", "null"]},
                    "facts": {"type": "object"},
                },
            },
            "DeviceList": {
                "type": "object",
                "required": ["devices"],
                "properties": {
                    "devices": {"type": "array", "items": {"$ref": "#/components/schemas/Device"}}
                },
            },
            "UserCreate": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "role", "password"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
                    "role": {"enum": ["l1", "l2", "l3", "onsite", "admin"]},
                    "password": {"type": "string", "minLength": 10, "maxLength": 200},
                    "full_name": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
            "EnrollmentTokenCreate": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"expires": {"type": "string", "pattern": "^[0-9]{1,7}[smhd]$"}},
            },
            "UserUpdate": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "role": {"enum": ["l1", "l2", "l3", "onsite", "admin"]},
                    "disabled": {"type": "boolean"},
                    "full_name": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
            "UserList": {
                "type": "object",
                "required": ["users"],
                "properties": {
                    "users": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "integer"},
                                "name": {"type": "string"},
                                "role": {"enum": ["l1", "l2", "l3", "onsite", "admin"]},
                                "disabled": {"type": "boolean"},
                            },
                        },
                    }
                },
            },
        },
    },
}


def _build() -> dict[str, Any]:
    from . import inventory, kb, remote, tickets, webhooks  # each module's own part of the API

    spec = copy.deepcopy(BASE)
    for module in (tickets, kb, webhooks, inventory, remote):
        spec["paths"].update(module.PATHS)
        spec["components"]["schemas"].update(module.SCHEMAS)
    return spec


SPEC = _build()
