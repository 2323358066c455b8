"""Fixtures for the coordinator's tests: storage engines on both databases, a shared
running coordinator for the REST checks, and a raw HTTPS helper that keeps headers."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator import accounts
from coordinator.storage.engine import create_engine, migrate
from tests.conftest import Coordinator, _create_pg_database, _drop_pg_database

ROLES = ("l1", "l2", "l3", "onsite", "admin")
PASSWORD = "correct horse battery"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


def pinned_context(coordinator: Coordinator) -> ssl.SSLContext:
    """Trust exactly the coordinator's self-signed certificate."""
    context = ssl.create_default_context(
        cadata=(coordinator.data_dir / "tls" / "cert.pem").read_text()
    )
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def fetch(
    coordinator: Coordinator,
    path: str,
    method: str = "GET",
    key: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """One HTTPS request; unlike ``ApiClient`` it returns the response headers too."""
    all_headers = dict(headers or {})
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        coordinator.url + path, data=body, method=method, headers=all_headers
    )
    try:
        with urllib.request.urlopen(
            request, context=pinned_context(coordinator), timeout=30
        ) as resp:
            return Response(
                resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
            )
    except urllib.error.HTTPError as exc:
        return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_url(tmp_path: Path, database: str | None) -> str:
    """A fresh, empty database URL: a new SQLite file, or a new PostgreSQL database."""
    return database if database is not None else sqlite_url(tmp_path / "store.db")


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh database (SQLite and PostgreSQL)."""
    eng = create_engine(db_url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@dataclass
class Served:
    """A running coordinator shared by a module, with an API key for every role."""

    coordinator: Coordinator
    keys: dict[str, str] = field(default_factory=dict)


async def _make_keys(coordinator: Coordinator) -> dict[str, str]:
    url = coordinator.db or sqlite_url(coordinator.data_dir / "backdesk.db")
    eng = create_engine(url)
    try:
        keys = {}
        for role in ROLES:
            name = f"{role}-{uuid.uuid4().hex[:8]}"
            await accounts.add_user(eng, name, role, PASSWORD)
            keys[role] = await accounts.create_api_key(eng, name)
        return keys
    finally:
        await eng.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Like ``coordinator_any_db`` but started once per module: the REST checks only read."""
    db = None if request.param == "sqlite" else _create_pg_database()
    coordinator = Coordinator(tmp_path_factory.mktemp(f"served-{request.param}") / "data", db=db)
    coordinator.start()
    try:
        served = Served(coordinator)

        # Accounts straight through the coordinator's own code (the CLI is tested in
        # test_cli.py): ten CLI runs would cost more than all the checks together.
        served.keys = asyncio.run(_make_keys(coordinator))
        yield served
    finally:
        coordinator.stop()
        if db is not None:
            _drop_pg_database(db)
