"""A hand-driven ``/ws/agent`` client for tests that play a misbehaving or hostile agent.

It speaks the real protocol through ``protocol.link.AgentLink`` when a test wants a
well-formed conversation, and sends arbitrary bytes or text when it wants to break it.
Every conversation ends in a :class:`Closed`: the close code and reason the coordinator
chose, and the ``error`` messages it sent before closing.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import identity
from protocol.errors import ProtocolError
from protocol.link import AgentLink, ConnectionFailed, Event, LinkReady
from protocol.messages import Error, Message, decode_message
from tests.conftest import Coordinator


def pinned_context(coordinator: Coordinator) -> ssl.SSLContext:
    """Trust exactly the coordinator's self-signed certificate, as agents do."""
    context = ssl.create_default_context(
        cadata=(coordinator.data_dir / "tls" / "cert.pem").read_text()
    )
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def server_fingerprint(coordinator: Coordinator) -> bytes:
    fingerprint = identity.parse_fingerprint(coordinator.fingerprint)
    assert fingerprint is not None, coordinator.fingerprint
    return fingerprint


@dataclass
class Closed:
    """How the coordinator ended a connection."""

    code: int | None
    reason: str
    errors: list[Error] = field(default_factory=list)
    opened_at: float = 0.0  # time.monotonic() when the websocket was open
    after: float = 0.0  # seconds from then to the close


class RogueAgent:
    """One websocket to ``/ws/agent``; use as ``async with RogueAgent(coordinator) as rogue``."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator
        self.url = f"wss://127.0.0.1:{coordinator.port}/ws/agent"
        self.ws: ClientConnection | None = None
        self.opened_at = 0.0
        self.sent: list[bytes | str] = []
        self.received: list[Message | ProtocolError] = []

    async def __aenter__(self) -> RogueAgent:
        self.ws = await connect(
            self.url,
            ssl=pinned_context(self.coordinator),
            compression=None,
            max_size=None,
            ping_interval=None,
            open_timeout=10,
            close_timeout=2,
            user_agent_header="rogue-agent",
        )
        self.opened_at = time.monotonic()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.ws is not None
        await self.ws.close()

    # raw I/O

    async def send(self, data: bytes | str) -> None:
        assert self.ws is not None
        self.sent.append(data)
        await self.ws.send(data)

    async def recv(self, timeout: float = 10) -> bytes:
        assert self.ws is not None
        async with asyncio.timeout(timeout):
            data = await self.ws.recv()
        assert isinstance(data, bytes), f"the coordinator sent text: {data!r}"
        self.received.append(decode_message(data))
        return data

    async def closed(self, timeout: float = 10) -> Closed:
        """Read until the coordinator closes; fail if it keeps the connection open."""
        assert self.ws is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.recv(timeout)
        except ConnectionClosed:
            pass
        except TimeoutError:
            raise AssertionError(
                f"the coordinator kept the connection open for {timeout}s"
            ) from None
        return Closed(
            code=self.ws.close_code,
            reason=self.ws.close_reason or "",
            errors=[m for m in self.received if isinstance(m, Error)],
            opened_at=self.opened_at,
            after=time.monotonic() - self.opened_at,
        )

    # a well-formed conversation

    async def run_link(self, link: AgentLink, timeout: float = 10) -> Event | None:
        """Flush ``link`` and feed it replies until it is ready or has failed.

        None: the coordinator closed the connection without telling the link why.
        """
        async with asyncio.timeout(timeout):
            while True:
                for data in link.data_to_send():
                    await self.send(data)
                try:
                    data = await self.recv(timeout)
                except ConnectionClosed:
                    return None
                link.receive_data(data)
                for event in link.events_received():
                    if isinstance(event, LinkReady | ConnectionFailed):
                        for data in link.data_to_send():
                            await self.send(data)
                        return event

    async def authenticate(
        self, device_id: str, key: Ed25519PrivateKey, fingerprint: bytes | None = None
    ) -> AgentLink:
        """Hello, then sign the challenge as ``device_id`` with ``key``.

        ``fingerprint`` is the server fingerprint the signature covers; by default the
        real coordinator's, as an honest agent would sign.
        """
        link = AgentLink(
            server_fingerprint=fingerprint or server_fingerprint(self.coordinator),
            software="rogue-agent/0",
        )
        link.start_authentication(device_id, key)
        await self.run_link(link)
        return link
