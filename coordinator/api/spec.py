"""Building blocks of the OpenAPI document and of query-string parsing, shared by every
API module (``openapi.py`` merges the modules' ``PATHS`` and ``SCHEMAS``; it imports
them, so they cannot import it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import Invalid


def ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def error(description: str) -> dict[str, Any]:
    return ok("Error", description)


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


AUTH_ERRORS = {"401": error("Missing or invalid credentials"), "403": error("Role not allowed")}
BODY_ERRORS = {
    "400": error("Malformed body; the message names the field"),
    "413": error("Body too large"),
    "415": error("Body is not application/json"),
}


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"query parameter {name!r} must be an integer from {low} to {high}", name)
    return int(raw)


def query_str(request: web.Request, name: str, max_length: int) -> str | None:
    raw = request.query.get(name)
    if raw is None or not raw.strip():
        return None
    if len(raw) > max_length:
        raise Invalid(f"query parameter {name!r} is longer than {max_length} characters", name)
    return raw
