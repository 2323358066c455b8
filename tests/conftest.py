"""Fixtures that run the real processes: a coordinator on loopback, agents against it.

Nothing here is mocked: the coordinator is ``backdesk-coordinator serve`` in its own
process, the agent is ``backdesk-agent``, and they talk TLS websockets on 127.0.0.1.
PostgreSQL tests use a fresh database created on the machine's server
(``BACKDESK_TEST_PG``, default ``postgresql://127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
COORDINATOR = str(BIN / "backdesk-coordinator")
AGENT = str(BIN / "backdesk-agent")
PG_ADMIN_URL = os.environ.get("BACKDESK_TEST_PG", "postgresql://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


# Every long-running process a test starts, so that none outlives the session even
# when a fixture fails half-way through its setup.
_PROCESSES: list[subprocess.Popen[str]] = []


@pytest.fixture(scope="session", autouse=True)
def _reap_processes() -> Iterator[None]:
    yield
    for process in _PROCESSES:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_cli(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}): {result.stderr}")
    return result


def wait_for(predicate: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Coordinator:
    data_dir: Path
    db: str | None = None
    port: int = 0
    extra: tuple[str, ...] = ("--heartbeat-interval", "1", "--handshake-timeout", "2")
    process: subprocess.Popen[str] | None = None
    fingerprint: str = ""
    log_path: Path = field(init=False)
    _admin_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-coordinator.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def db_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)] + (["--db", self.db] if self.db else [])

    def start(self) -> None:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [COORDINATOR, "serve", *self.db_args(), "--port", str(self.port), *self.extra],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        _PROCESSES.append(self.process)
        assert self.process.stdout is not None
        lines = [self.process.stdout.readline(), self.process.stdout.readline()]
        match = re.search(r"https://127\.0\.0\.1:(\d+)", lines[0])
        if not match:
            raise AssertionError(f"coordinator did not start: {lines} {self.log_path.read_text()}")
        self.port = int(match.group(1))
        self.fingerprint = lines[1].split()[-1]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill(signal.SIGTERM)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(COORDINATOR, *args, *self.db_args(), input=input, check=check)

    def token(self, expires: str = "1h") -> str:
        return self.cli("token", "create", "--expires", expires).stdout.strip()

    def api_key(self, role: str = "admin") -> str:
        """A key for a new account of ``role``. The first admin comes from the CLI, the
        rest through the REST API (much faster than one CLI process per account)."""
        if self._admin_key is None:
            name = f"admin-{uuid.uuid4().hex[:8]}"
            self.cli(
                "user",
                "add",
                name,
                "--role",
                "admin",
                "--password-stdin",
                input="correct horse battery\n",
            )
            self._admin_key = self.cli("apikey", "create", "--user", name).stdout.strip()
            if role == "admin":
                return self._admin_key
        admin = ApiClient(self, self._admin_key)
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        status, body = admin.request(
            "POST",
            "/api/v1/users",
            {"name": name, "role": role, "password": "correct horse battery"},
        )
        assert status == 201, body
        status, body = admin.request("POST", f"/api/v1/users/{name}/api-keys")
        assert status == 201, body
        return str(body["key"])

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read what is stored, straight from the database."""
        if self.db is None:
            with sqlite3.connect(self.data_dir / "backdesk.db") as conn:
                return conn.execute(query, params).fetchall()
        import asyncpg

        async def fetch() -> list[tuple[Any, ...]]:
            conn = await asyncpg.connect(self.db)
            try:
                numbers = itertools.count(1)
                query_pg = re.sub(r"\?", lambda _m: f"${next(numbers)}", query)
                return [tuple(r) for r in await conn.fetch(query_pg, *params)]
            finally:
                await conn.close()

        return asyncio.run(fetch())


@dataclass
class Agent:
    config_dir: Path
    coordinator: Coordinator
    process: subprocess.Popen[str] | None = None
    env: dict[str, str] | None = None  # e.g. DISPLAY of an Xvfb for remote sessions
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.config_dir.parent / f"{self.config_dir.name}-agent.log"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(AGENT, "--config-dir", str(self.config_dir), *args, check=check)

    def enroll(
        self, token: str | None = None, fingerprint: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "enroll",
            "--coordinator",
            self.coordinator.url,
            "--token",
            token or self.coordinator.token(),
            "--fingerprint",
            fingerprint or self.coordinator.fingerprint,
            "--json",
            check=check,
        )

    @property
    def device_id(self) -> str:
        return str(json.loads((self.config_dir / "agent.json").read_text())["device_id"])

    def start(self) -> None:
        self.process = subprocess.Popen(
            [AGENT, "--config-dir", str(self.config_dir), "run"],
            env=self.env,
            stdout=self.log_path.open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        _PROCESSES.append(self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _create_pg_database() -> str:
    import asyncpg

    name = f"backdesk_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except OSError as exc:
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Run a test on the embedded default (None: SQLite) and on PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Coordinator]:
    """A running coordinator on SQLite."""
    c = Coordinator(tmp_path / "coordinator")
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def coordinator_any_db(tmp_path: Path, database: str | None) -> Iterator[Coordinator]:
    """A running coordinator, once on SQLite and once on PostgreSQL."""
    c = Coordinator(tmp_path / "coordinator", db=database)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Any]:
    agents: list[Agent] = []

    def make(coordinator: Coordinator, name: str = "agent") -> Agent:
        agent = Agent(tmp_path / f"{name}-{len(agents)}", coordinator)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()


class ApiClient:
    """A tiny HTTPS client that trusts exactly the coordinator's certificate."""

    def __init__(self, coordinator: Coordinator, key: str | None) -> None:
        import ssl

        self.base = coordinator.url
        self.key = key
        self.context = ssl.create_default_context(
            cadata=(coordinator.data_dir / "tls" / "cert.pem").read_text()
        )
        self.context.check_hostname = False
        self.context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json"} if data else {}
        if self.key:
            all_headers["Authorization"] = f"Bearer {self.key}"
        all_headers.update(headers or {})
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body


@pytest.fixture
def api() -> Any:
    """``api(coordinator)`` is an admin client; ``api(coordinator, key=None)`` anonymous."""

    def make(coordinator: Coordinator, key: str | None = "", role: str = "admin") -> ApiClient:
        if key == "":
            key = coordinator.api_key(role)
        return ApiClient(coordinator, key)

    return make
