"""A coordinator that wants to watch without the user's consent (DESIGN.md invariant 1).

The real coordinator enrolls the agent and is stopped; a hostile one takes its place with
the very same certificate and key (so the agent's pinning cannot tell), authenticates
the agent with the real protocol, offers a session, plays the viewer too, and then tries
to go live on its own: it says "live", and sends sealed input before any consent. The
agent must capture nothing, inject nothing, and leave the decision to its user.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from coordinator.tls import fingerprint, server_context
from protocol import e2e, remote
from protocol.link import AuthenticationRequested, CoordinatorLink, LinkReady
from protocol.messages import SessionOffer
from tests.conftest import Agent, Coordinator, wait_for

from .conftest import CONSENT_TITLE, answer_consent, pointer


class HostileCoordinator:
    """Speaks the agent link and the relay like the real one, then cheats."""

    def __init__(self, data_dir: Path, port: int, mode: str) -> None:
        self.cert, self.key = data_dir / "tls" / "cert.pem", data_dir / "tls" / "key.pem"
        with sqlite3.connect(data_dir / "backdesk.db") as db:
            self.device_id, self.device_key = db.execute(
                "select id, public_key from devices"
            ).fetchone()
        self.port = port
        self.mode = mode
        self.session_id = secrets.token_hex(16)
        self.token = secrets.token_bytes(32)
        self.from_agent: list[bytes | str] = []  # everything the agent sent on the relay
        self.agent_hello = threading.Event()
        self.relay_closed = threading.Event()
        self.channel: e2e.Channel | None = None
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.main(),))

    async def main(self) -> None:
        context = server_context(self.cert, self.key)
        async with serve(self.handle, "127.0.0.1", self.port, ssl=context, compression=None):
            await self.stop.wait()

    async def handle(self, ws: ServerConnection) -> None:
        if ws.request.path == "/ws/agent":
            await self.agent_link(ws)
        elif ws.request.path == f"/ws/relay/{self.session_id}":
            await self.relay(ws)

    async def agent_link(self, ws: ServerConnection) -> None:
        link = CoordinatorLink(
            server_fingerprint=fingerprint(self.cert),
            challenge=secrets.token_bytes(32),
            server_time=time.time(),
            heartbeat_interval=1.0,
        )
        async for data in ws:
            link.receive_data(data)
            for event in link.events_received():
                if isinstance(event, AuthenticationRequested):
                    link.verify_authentication(bytes(self.device_key))
                elif isinstance(event, LinkReady):
                    link.offer_session(
                        SessionOffer(
                            session_id=self.session_id,
                            ticket="BD-000666",
                            subject="Nothing to see",
                            technician="Mallory",
                            role="l2",
                            scope="control",
                            relay_token=self.token,
                            expires_at=time.time() + 120,
                        )
                    )
            for out in link.data_to_send():
                await ws.send(out)

    async def relay(self, ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        assert join["type"] == "join"
        viewer = e2e.ViewerHandshake(self.session_id, bytes(self.device_key))
        await ws.send(viewer.hello())
        hello = await ws.recv()
        channel = viewer.finish(hello)  # type: ignore[arg-type]
        assert isinstance(channel, e2e.Channel)
        self.channel = channel
        self.agent_hello.set()
        # Cheat: declare the session live without any consent, and push input.
        await ws.send(json.dumps({"type": "state", "state": "live", "scope": "control"}))
        if self.mode == "input":
            await ws.send(channel.seal(remote.encode(remote.PointerMove(5, 5))))
            await ws.send(channel.seal(remote.encode(remote.FrameAck(0))))
        try:
            async for data in ws:
                self.from_agent.append(data)
        finally:
            self.relay_closed.set()


@pytest.fixture
def hostile(desk, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A second agent enrolled on its own coordinator, which is then replaced."""
    root = tmp_path / "forged"
    root.mkdir()
    coordinator = Coordinator(root / "coordinator")
    coordinator.start()
    agent = Agent(root / "agent", coordinator, env=desk.screen.env)
    agent.enroll()
    coordinator.stop()
    fake = HostileCoordinator(coordinator.data_dir, coordinator.port, request.param)
    fake.thread.start()
    agent.start()
    try:
        yield fake, agent
    finally:
        agent.stop()
        fake.loop.call_soon_threadsafe(fake.stop.set)
        fake.thread.join(timeout=10)


def sealed_from_agent(fake: HostileCoordinator) -> list[bytes]:
    return [d for d in fake.from_agent if isinstance(d, bytes)]


@pytest.mark.parametrize("hostile", ["live"], indirect=True)
def test_saying_live_starts_nothing_the_user_still_decides(desk, hostile) -> None:
    fake, agent = hostile
    assert fake.agent_hello.wait(30), "the agent never joined the relay"
    wait_for(lambda: desk.screen.windows(CONSENT_TITLE), 20, what="the consent dialog")
    time.sleep(2)  # ample time for a capture to start, if it were going to
    assert sealed_from_agent(fake) == [], "the agent sent screen data without consent"
    assert "capture started" not in agent.log_path.read_text()
    # The user says no; the agent tells the coordinator so, signed, and nothing more.
    answer_consent(desk.screen, agent.log_path, 0, "deny")
    assert fake.relay_closed.wait(15)
    texts = [json.loads(d) for d in fake.from_agent if isinstance(d, str)]
    assert [t["type"] for t in texts] == ["consent"]
    assert texts[0]["receipt"]["decision"] == "deny"
    assert sealed_from_agent(fake) == []


@pytest.mark.parametrize("hostile", ["input"], indirect=True)
def test_sealed_input_before_consent_ends_the_session(desk, hostile) -> None:
    fake, agent = hostile
    before = pointer(desk.screen)
    assert fake.agent_hello.wait(30), "the agent never joined the relay"
    assert fake.relay_closed.wait(20), "the agent kept a session the coordinator cheated in"
    assert sealed_from_agent(fake) == []
    assert pointer(desk.screen) == before
    wait_for(lambda: not desk.screen.windows(CONSENT_TITLE), 5, what="no dialog left")
    assert "a sealed message before consent" in agent.log_path.read_text()
