"""Fixtures for outbound webhooks: a coordinator that polls fast, a real HTTP receiver
on loopback that can fail or go away, and events published straight into the database
the running coordinator uses (as the ticket code does, in its own transaction)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from coordinator import accounts, events
from coordinator.storage.engine import create_engine
from tests.conftest import ApiClient, Coordinator

POLL = ("--heartbeat-interval", "1", "--webhook-poll-interval", "0.2")
PASSWORD = "correct horse battery"


def db_url(coordinator: Coordinator) -> str:
    return coordinator.db or f"sqlite:///{coordinator.data_dir / 'backdesk.db'}"


def publish(coordinator: Coordinator, *items: tuple[str, dict[str, Any]]) -> list[int]:
    """Publish events, one transaction each, into the coordinator's database."""

    async def run() -> list[int]:
        engine = create_engine(db_url(coordinator))
        try:
            ids = []
            for event_type, payload in items:
                async with engine.begin() as conn:
                    ids.append(await events.publish(conn, event_type, payload))
            return ids
        finally:
            await engine.dispose()

    return asyncio.run(run())


def make_keys(coordinator: Coordinator, *roles: str) -> dict[str, str]:
    """API keys through the coordinator's own code: quicker than the CLI."""

    async def run() -> dict[str, str]:
        engine = create_engine(db_url(coordinator))
        try:
            keys = {}
            for role in roles:
                name = f"{role}-{uuid.uuid4().hex[:8]}"
                await accounts.add_user(engine, name, role, PASSWORD)
                keys[role] = await accounts.create_api_key(engine, name)
            return keys
        finally:
            await engine.dispose()

    return asyncio.run(run())


def admin(coordinator: Coordinator) -> ApiClient:
    return ApiClient(coordinator, make_keys(coordinator, "admin")["admin"])


def subscribe(client: ApiClient, url: str, kinds: list[str] | None = None) -> dict[str, Any]:
    status, body = client.request(
        "POST", "/api/v1/webhooks", {"url": url, "events": kinds or ["*"]}
    )
    assert status == 201, (status, body)
    return dict(body)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def delivery(self) -> str:
        return self.headers["x-backdesk-delivery"]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request.

    ``faults`` lists how to misbehave on the next requests, one each: ``"500"`` answers
    500, ``"hangup"`` closes the connection without answering (recorded as status 0).
    ``stop()`` closes the port (the sender sees "connection refused") and ``start()``
    opens it again on the same port.
    """

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.requests: list[Received] = []
        self.faults: list[str] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    fault = receiver.faults.pop(0) if receiver.faults else ""
                    status = {"500": 500, "hangup": 0}.get(fault, 200)
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                        )
                    )
                if status == 0:
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r for r in self.requests if r.status == 200 and (path is None or r.path == path)
            ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver that is up; call ``stop()`` to take it down."""
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Coordinator]:
    """A running coordinator on SQLite whose dispatcher polls every 0.2 s."""
    c = Coordinator(tmp_path / "coordinator", extra=POLL)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def node_any_db(tmp_path: Path, database: str | None) -> Iterator[Coordinator]:
    """The same, once on SQLite and once on PostgreSQL."""
    c = Coordinator(tmp_path / "coordinator", db=database, extra=POLL)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
