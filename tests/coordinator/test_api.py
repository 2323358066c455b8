"""The REST API of a running coordinator, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from coordinator.api.openapi import SPEC
from coordinator.app import create_app
from coordinator.settings import Settings
from coordinator.storage.engine import create_engine

from .conftest import ROLES, Response, Served, fetch


def assert_json_error(response: Response, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status == status, (response.status, response.raw)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_health_needs_no_credentials(served: Served) -> None:
    response = fetch(served.coordinator, "/api/v1/health")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic YWRtaW46Y29ycmVjdCBob3JzZSBiYXR0ZXJ5",
        "Bearer",
        "Bearer ",
        "Bearer bdk_not-a-real-key",
        "Bearer not-even-the-prefix",
        "Bearer bdk_" + "x" * 500,
    ],
    ids=["none", "basic", "bearer-empty", "bearer-blank", "bogus", "no-prefix", "huge"],
)
def test_devices_refuse_missing_or_bad_credentials(
    served: Served, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = fetch(served.coordinator, "/api/v1/devices", headers=headers)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_a_valid_key_with_another_scheme_is_refused(served: Served) -> None:
    key = served.keys["admin"]
    response = fetch(
        served.coordinator, "/api/v1/devices", headers={"Authorization": f"Token {key}"}
    )
    assert_json_error(response, 401, "unauthorized")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_lists_devices(served: Served, role: str) -> None:
    response = fetch(served.coordinator, "/api/v1/devices", key=served.keys[role])
    assert response.status == 200, response.raw
    body = response.json()
    assert set(body) == {"devices"} and isinstance(body["devices"], list)


def test_users_are_admin_only(served: Served) -> None:
    for role in ("l1", "l2", "l3", "onsite"):
        response = fetch(served.coordinator, "/api/v1/users", key=served.keys[role])
        assert_json_error(response, 403, "forbidden")
    response = fetch(served.coordinator, "/api/v1/users", key=served.keys["admin"])
    assert response.status == 200
    users = response.json()["users"]
    assert sorted(u["role"] for u in users) == sorted(ROLES)
    for user in users:
        assert set(user) >= {"id", "name", "role", "disabled"}
        assert not any("password" in k or "hash" in k for k in user)
        assert "argon2" not in json.dumps(user)


def test_unknown_api_paths_are_json_404(served: Served) -> None:
    key = served.keys["l1"]
    for path in ("/api/v1/nothing-here", "/api/v2/devices", "/api/"):
        assert_json_error(fetch(served.coordinator, path, key=key), 404, "not_found")


def test_wrong_method_is_json_405(served: Served) -> None:
    key = served.keys["admin"]
    for method, path in [("POST", "/api/v1/devices"), ("DELETE", "/api/v1/users")]:
        response = fetch(served.coordinator, path, method=method, key=key, body=b"{}")
        assert_json_error(response, 405, "method_not_allowed")


def test_wrong_method_response_names_the_allowed_methods(served: Served) -> None:
    # RFC 9110 section 15.5.6: a 405 response MUST carry an Allow header.
    response = fetch(
        served.coordinator, "/api/v1/devices", method="POST", key=served.keys["admin"], body=b"{}"
    )
    assert response.status == 405
    assert "GET" in response.headers.get("allow", ""), response.headers


def test_an_unknown_device_is_json_404(served: Served) -> None:
    key = served.keys["onsite"]
    for device_id in ("00000000-0000-4000-8000-000000000000", "x" * 300, "%27%3B--"):
        response = fetch(served.coordinator, f"/api/v1/devices/{device_id}", key=key)
        assert_json_error(response, 404, "not_found")


def test_the_served_openapi_document(served: Served) -> None:
    response = fetch(served.coordinator, "/api/v1/openapi.json")
    assert response.status == 200
    spec = response.json()
    assert spec == json.loads(json.dumps(SPEC))
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    for path, operations in spec["paths"].items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            assert method in {"get", "post", "put", "patch", "delete"}
            assert operation["responses"], (path, method)


def test_the_console_is_html_with_a_content_security_policy(served: Served) -> None:
    response = fetch(served.coordinator, "/")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src" in response.headers["content-security-policy"]
    assert b"<html" in response.raw.lower()


def test_openapi_documents_exactly_the_registered_routes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'app.db'}")
        app = create_app(engine, Settings(fingerprint=b"0" * 32))
        registered = {
            (route.resource.canonical, route.method.lower())
            for route in app.router.routes()
            if route.resource is not None
            and route.resource.canonical.startswith("/api/v1")
            and route.method != "HEAD"
        }
    documented = {
        (path, method) for path, operations in SPEC["paths"].items() for method in operations
    }
    assert registered == documented
    assert {path for path, _ in registered} == set(SPEC["paths"])
