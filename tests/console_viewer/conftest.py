"""The technician's live-session page (session.html + viewer.js) in headless Chromium,
against a stand-in for the coordinator and the agent.

A throwaway aiohttp app on 127.0.0.1 serves the console's real static files and the
real ``session.html`` (rendered with a stub context, with the console's security
headers, so a CSP slip fails here too), and answers ``/ws/viewer/<id>`` playing both
ends: the coordinator's JSON control messages, and the agent's side of the end-to-end
handshake (``protocol.e2e.agent_handshake`` with a fresh Ed25519 key) and its sealed
``protocol.remote`` messages. Without Playwright or Chromium the tests are skipped,
except in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator.permissions import Permission
from coordinator.web import STATIC
from coordinator.web.render import ENV
from coordinator.web.sessions import SECURITY_HEADERS
from protocol import remote
from protocol.e2e import Channel, agent_handshake
from protocol.errors import ErrorCode, ProtocolError
from protocol.identity import public_key_bytes
from tests.conftest import wait_for
from tests.console.conftest import chromium

_ids = itertools.count(1)


@dataclass
class FakeSession:
    """One session as the page sees it: the coordinator's messages and the agent's."""

    harness: Harness
    id: str
    scope: str = "control"
    ticket: str = "BD-000123"
    subject: str = "Outlook keeps asking for the password"
    device: str = "PC-FLOOR2-17"
    technician: str = "ada"
    wrong_key: bool = False  # announce another device key than the one that signs
    current: str = "pending"  # the state the coordinator last announced
    page_state: tuple[str, str | None] = ("pending", None)  # what the page is rendered with
    sockets: int = 0
    identity: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    channel: Channel | None = None
    ws: web.WebSocketResponse | None = None
    # From the viewer: JSON messages (pings counted apart), opened and decoded plaintexts.
    texts: list[dict[str, Any]] = field(default_factory=list)
    pings: int = 0
    received: list[remote.RemoteMessage] = field(default_factory=list)
    errors: list[ProtocolError] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    @property
    def path(self) -> str:
        return f"/sessions/{self.id}"

    @property
    def device_key(self) -> bytes:
        return public_key_bytes(self.identity)

    @property
    def code(self) -> str:
        assert self.channel is not None
        return self.channel.code

    # --- what the test makes the coordinator and the agent send ---------------------

    def _run(self, make: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self.harness.loop).result(10)

    def wait_ready(self) -> None:
        assert self.ready.wait(10), f"no handshake; errors: {self.errors}"

    def text(self, doc: dict[str, Any]) -> None:
        async def go() -> None:
            if doc.get("type") == "state":
                self.current = doc["state"]
            assert self.ws is not None
            await self.ws.send_str(json.dumps(doc))

        self._run(go)

    def state(self, state: str, scope: str | None = None, reason: str | None = None) -> None:
        doc: dict[str, Any] = {"type": "state", "state": state, "scope": scope or self.scope}
        doc["peer"] = True
        if reason:
            doc["reason"] = reason
        self.text(doc)

    def live(self) -> None:
        self.wait_ready()
        self.state("live")

    def seal(self, message: remote.RemoteMessage) -> bytes:
        """Seal in the harness's thread (the channel's counter is not shared)."""

        async def go() -> bytes:
            assert self.channel is not None
            return self.channel.seal(remote.encode(message))

        return bytes(self._run(go))

    def seal_raw(self, plaintext: bytes) -> bytes:
        """Seal bytes that need not be a valid message."""

        async def go() -> bytes:
            assert self.channel is not None
            return self.channel.seal(plaintext)

        return bytes(self._run(go))

    def raw(self, data: bytes) -> None:
        async def go() -> None:
            assert self.ws is not None
            await self.ws.send_bytes(data)

        self._run(go)

    def close(self) -> None:
        """The socket goes away without a word (the coordinator restarting, say)."""

        async def go() -> None:
            assert self.ws is not None
            await self.ws.close()

        self._run(go)

    def send(self, *messages: remote.RemoteMessage) -> None:
        async def go() -> None:
            assert self.ws is not None and self.channel is not None
            for message in messages:
                await self.ws.send_bytes(self.channel.seal(remote.encode(message)))

        self._run(go)

    def wait_received(self, predicate: Any, what: str, timeout: float = 10) -> Any:
        def found() -> Any:
            return next((m for m in list(self.received) if predicate(m)), None)

        return wait_for(found, timeout, interval=0.05, what=what)

    def inputs(self) -> list[remote.RemoteMessage]:
        kinds = (remote.PointerMove, remote.PointerButton, remote.Wheel, remote.Key)
        return [m for m in list(self.received) if isinstance(m, kinds)]


class Harness:
    """The aiohttp app in a thread of its own (Playwright's sync API owns this one)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.sessions: dict[str, FakeSession] = {}
        self.runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def session(self, **fields: Any) -> FakeSession:
        session = FakeSession(self, id=f"s{next(_ids)}-{os.urandom(4).hex()}", **fields)
        self.sessions[session.id] = session
        return session

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._headers])
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/sessions/{id}", self._page)
        app.router.add_get("/ws/viewer/{id}", self._viewer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    @web.middleware
    async def _headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if not isinstance(response, web.WebSocketResponse):
            response.headers.update(SECURITY_HEADERS)
        return response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if "/" in name or name.startswith("."):
            raise web.HTTPNotFound()
        path = STATIC / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _page(self, request: web.Request) -> web.Response:
        s = self.sessions.get(request.match_info["id"])
        if s is None:
            raise web.HTTPNotFound()
        html = ENV.get_template("session.html").render(
            remote={
                "id": s.id,
                "ticket": s.ticket,
                "subject": s.subject,
                "scope": s.scope,
                "technician": s.technician,
                "device": s.device,
                "state": s.page_state[0],
                "reason": s.page_state[1],
            },
            me=SimpleNamespace(name=s.technician, role="l2"),
            session=SimpleNamespace(full_name="Ada Lovelace"),
            can=lambda permission: True,
            Permission=Permission,
            csrf="csrf-token",
            flash=None,
            path=request.path,
        )
        return web.Response(text=html, content_type="text/html")

    async def _viewer(self, request: web.Request) -> web.StreamResponse:
        s = self.sessions.get(request.match_info["id"])
        if s is None:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(max_msg_size=2 * 1024 * 1024)
        await ws.prepare(request)
        s.ws = ws
        s.sockets += 1
        await ws.send_json(
            {
                "type": "session",
                "id": s.id,
                "ticket": s.ticket,
                "scope": s.scope,
                "device_key": base64.b64encode(
                    public_key_bytes(Ed25519PrivateKey.generate()) if s.wrong_key else s.device_key
                ).decode(),
                "technician": s.technician,
            }
        )
        await ws.send_json({"type": "state", "state": "pending", "scope": s.scope, "peer": True})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    doc = json.loads(msg.data)
                    if doc.get("type") == "ping":
                        s.pings += 1
                        await ws.send_json({"type": "pong", "t": doc["t"]})
                        continue
                    s.texts.append(doc)
                    if doc.get("type") == "end":  # as the relay does
                        s.current = "ended"
                        await ws.send_json(
                            {
                                "type": "state",
                                "state": "ended",
                                "scope": s.scope,
                                "reason": "ended_by_technician",
                                "peer": True,
                            }
                        )
                        await ws.close(message=b"ended: ended_by_technician")
                elif msg.type == WSMsgType.BINARY:
                    await self._binary(s, ws, msg.data)
        finally:
            s.closed.set()
        return ws

    async def _binary(self, s: FakeSession, ws: web.WebSocketResponse, data: bytes) -> None:
        if s.channel is None:
            result = agent_handshake(s.id, s.identity, data)
            if isinstance(result, ProtocolError):
                s.errors.append(result)
                return
            hello, s.channel = result
            await ws.send_bytes(hello)
            s.current = "awaiting_consent"
            await ws.send_json(
                {"type": "state", "state": "awaiting_consent", "scope": s.scope, "peer": True}
            )
            s.ready.set()
            return
        if s.current != "live":  # the relay forwards sealed messages only when live
            s.errors.append(ProtocolError(ErrorCode.INVALID_MESSAGE, f"sealed while {s.current}"))
            return
        plain = s.channel.open(data)
        if isinstance(plain, ProtocolError):
            s.errors.append(plain)
            return
        decoded = remote.decode(plain)
        if isinstance(decoded, ProtocolError):
            s.errors.append(decoded)
            return
        s.received.append(decoded)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    h.start()
    try:
        yield h
    finally:
        h.stop()


@dataclass
class Viewer:
    """A page showing one session, and what its console said."""

    page: Any
    session: FakeSession
    console: list[str]

    def view(self) -> dict[str, Any]:
        return dict(self.page.evaluate("() => ({...window.backdeskViewer})"))

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("() => window.cspViolations"))

    def wait(self, expression: str, timeout: float = 10_000) -> None:
        self.page.wait_for_function(expression, timeout=timeout)

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        rgba = self.page.evaluate(
            """([x, y]) => Array.from(document.getElementById("screen")
                .getContext("2d").getImageData(x, y, 1, 1).data)""",
            [x, y],
        )
        return (rgba[0], rgba[1], rgba[2])


@pytest.fixture
def open_viewer(browser: Any, harness: Harness) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_(**fields: Any) -> Viewer:
        session = harness.session(**fields)
        context = browser.new_context(
            base_url=harness.url, viewport={"width": 1280, "height": 800}, locale="en-GB"
        )
        context.set_default_timeout(10_000)
        # Anything the Content-Security-Policy blocks is a bug of the page.
        context.add_init_script(
            """window.cspViolations = [];
            document.addEventListener("securitypolicyviolation", (e) =>
                window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));"""
        )
        contexts.append(context)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(session.path)
        return Viewer(page, session, console)

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()
