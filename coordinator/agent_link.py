"""``/ws/agent``: the adapter between aiohttp websockets and ``protocol.link``.

This module only moves bytes and does the I/O the protocol asks for (token checks, key
lookups, commits). A bad or slow peer ends its own connection with a close code and a
reason; nothing here can take the process down or touch another connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from aiohttp import WSCloseCode, WSMsgType, web

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import MAX_FRAME_SIZE
from protocol.link import (
    AuthenticationRequested,
    ConnectionFailed,
    CoordinatorLink,
    CoordinatorState,
    DeliveryReceived,
    EnrollmentRequested,
    Event,
    HeartbeatReceived,
    LinkReady,
)
from protocol.messages import SessionOffer

from . import audit, devices, enrollment, inbox
from .remote.relay import HUB
from .settings import ENGINE, PRESENCE, SETTINGS, SOCKETS

log = logging.getLogger(__name__)

# How long a close waits for the peer's answer: an agent that stopped answering must not
# hold its socket (or look online) for long.
CLOSE_TIMEOUT = 2.0

_HANDSHAKE_STATES = (
    CoordinatorState.AWAIT_HELLO,
    CoordinatorState.AWAIT_CREDENTIALS,
    CoordinatorState.ENROLLING,
    CoordinatorState.VERIFYING,
)


class AgentConnection:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.app = request.app
        self.ws = ws
        self.peer = request.remote
        self.settings = self.app[SETTINGS]
        self.engine = self.app[ENGINE]
        self.presence = self.app[PRESENCE]
        self.link = CoordinatorLink(
            server_fingerprint=self.settings.fingerprint,
            challenge=secrets.token_bytes(32),
            server_time=time.time(),
            heartbeat_interval=self.settings.heartbeat_interval,
        )
        self.device_id: str | None = None
        self.online = False

    def _timeout(self) -> float:
        if self.link.state in _HANDSHAKE_STATES:
            return self.settings.handshake_timeout
        return self.settings.heartbeat_interval * self.settings.missed_heartbeats

    async def serve(self) -> None:
        deadline = time.monotonic() + self.settings.handshake_timeout
        try:
            while not self.ws.closed:
                timeout = self._timeout()
                if self.link.state in _HANDSHAKE_STATES:
                    # The whole handshake has one deadline, so a client trickling
                    # messages cannot hold a connection open forever.
                    timeout = max(0.0, deadline - time.monotonic())
                try:
                    msg = await self.ws.receive(timeout=timeout)
                except TimeoutError:
                    code = (
                        ErrorCode.HANDSHAKE_TIMEOUT
                        if self.link.state in _HANDSHAKE_STATES
                        else ErrorCode.HEARTBEAT_TIMEOUT
                    )
                    self.link.fail(ProtocolError(code, "no message from the agent in time"))
                else:
                    if msg.type is WSMsgType.BINARY:
                        self.link.set_server_time(time.time())
                        self.link.receive_data(msg.data)
                    elif msg.type is WSMsgType.TEXT:
                        self.link.fail(
                            ProtocolError(ErrorCode.MALFORMED_FRAME, "text messages are not used")
                        )
                    else:  # CLOSE, CLOSING, CLOSED, ERROR (e.g. message too big)
                        if msg.type is WSMsgType.ERROR:
                            log.info("agent %s: %s", self.peer, self.ws.exception())
                        return
                if await self._process() is False:
                    return
        finally:
            self._offline()

    def _offline(self) -> None:
        """Idempotent. Called as soon as the link is judged dead, before the close
        handshake, which can wait for an unresponsive peer."""
        if self.device_id is not None and self.online:
            self.online = False
            self.presence.disconnected(self.device_id)
            self.app[HUB].agent_offline(self.device_id, self)
            log.info("device %s offline", self.device_id)

    async def _process(self) -> bool:
        """Handle the link's events and flush; False once the connection is finished."""
        while events := self.link.events_received():
            for event in events:
                await self._handle(event)
        await self._flush()
        if self.link.state is CoordinatorState.DONE:
            await self.ws.close(code=WSCloseCode.OK, message=b"enrolled")
            return False
        if self.link.failed:
            error = self.link.error
            assert error is not None
            self._offline()
            log.info("agent %s closed: %s", self.device_id or self.peer, error.close_reason)
            await self.ws.close(code=error.close_code, message=error.close_reason.encode())
            return False
        return True

    async def _flush(self) -> None:
        for data in self.link.data_to_send():
            await self.ws.send_bytes(data)

    async def offer_session(self, offer: SessionOffer) -> None:
        """Send a technician's session request to this agent (coordinator.remote)."""
        if not self.online or self.ws.closed or self.link.state is not CoordinatorState.READY:
            raise ConnectionError("the agent's link is not up")
        self.link.offer_session(offer)
        await self._flush()

    async def _refuse(self, key: str, kind: str, error: ProtocolError) -> None:
        """A well-formed delivery we will never accept: tell the agent to drop it (so an
        honest agent of another version does not retry it forever) and keep a trail."""
        assert self.device_id is not None
        log.warning("device %s: delivery refused: %s", self.device_id, error.message)
        async with self.engine.begin() as conn:
            await audit.append(
                conn,
                f"agent:{self.device_id[:8]}",
                "delivery.refused",
                self.device_id,
                {"kind": kind[:64], "reason": error.message[:200]},
            )
        self.link.reject(key, error)

    async def _handle(self, event: Event) -> None:
        match event:
            case EnrollmentRequested(token=token, public_key=key, hostname=hostname):
                enrolled = await enrollment.enroll(
                    self.engine, token, key, hostname, self.link.peer_software
                )
                if isinstance(enrolled, ProtocolError):
                    self.link.fail(enrolled)
                else:
                    log.info("device %s enrolled (%s)", enrolled, hostname)
                    self.link.accept_enrollment(enrolled)
            case AuthenticationRequested(device_id=device_id):
                self.link.verify_authentication(await devices.public_key(self.engine, device_id))
            case LinkReady(device_id=device_id):
                self.device_id = device_id
                self.online = True
                self.presence.connected(device_id)
                self.app[HUB].agent_online(device_id, self)
                await devices.mark_seen(self.engine, device_id, self.link.peer_software)
                log.info("device %s online from %s", device_id, self.peer)
            case HeartbeatReceived():
                assert self.device_id is not None
                await devices.mark_seen(self.engine, self.device_id)
            case DeliveryReceived(key=key, kind=kind, body=body):
                assert self.device_id is not None
                committed = await inbox.commit(self.engine, self.device_id, key, kind, body)
                if isinstance(committed, ProtocolError):
                    await self._refuse(key, kind, committed)
                else:
                    self.link.acknowledge(key, committed or None)
            case ConnectionFailed():
                pass  # _process closes the connection with the link's error


async def handle(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(
        max_msg_size=MAX_FRAME_SIZE,
        timeout=CLOSE_TIMEOUT,
        compress=False,  # screen frames are already compressed; deflate costs 10x throughput
        autoping=True,
        heartbeat=None,
    )
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    connection = AgentConnection(request, ws)
    try:
        await connection.serve()
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        # A bug or a database failure ends this connection only; the agent retries.
        log.exception("agent connection from %s failed", request.remote)
        if not ws.closed:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"server error")
    return ws
