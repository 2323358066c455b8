"""Request bodies: parsed and validated at the edge against the OpenAPI schemas.

Anything malformed is a 400 that names the field; nothing reaches the domain code
unvalidated. Schemas forbid unknown fields (``additionalProperties: false``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..errors import ApiError

# JSON bodies are small documents; only attachments (raw bodies) may be larger.
MAX_JSON_BODY = 1024 * 1024


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    from .openapi import SPEC  # late: API modules import this one while SPEC is built

    schema = SPEC["components"]["schemas"][schema_name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate(schema_name: str, data: Any) -> dict[str, Any]:
    error = best_match(_validator(schema_name).iter_errors(data))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(data, dict):
            allowed = set(_validator(schema_name).schema.get("properties", {}))
            unknown = sorted(set(data) - allowed)
            path = unknown[0] if unknown else path
            raise ApiError(400, "invalid_field", f"unknown field {path!r}", field=path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            raise ApiError(400, "invalid_field", f"field {missing!r} is required", field=missing)
        raise ApiError(
            400, "invalid_field", f"field {path or '(body)'!r}: {error.message[:200]}", field=path
        )
    assert isinstance(data, dict)
    return data


async def read_json(request: web.Request, schema_name: str) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise ApiError(413, "payload_too_large", "request body is too large")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "payload_too_large", "request body is too large") from None
    if len(raw) > MAX_JSON_BODY:
        raise ApiError(413, "payload_too_large", "request body is too large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    return validate(schema_name, data)
