"""The agent's link to the coordinator: enrollment, then a connection kept up for good.

This is the asyncio adapter around ``protocol.link.AgentLink``: it moves bytes, runs the
timers (heartbeats, handshake deadline, reconnect backoff) and drains the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from protocol import identity
from protocol.errors import CREDENTIAL_ERRORS, ErrorCode, ProtocolError
from protocol.frames import MAX_FRAME_SIZE
from protocol.link import (
    AgentLink,
    ConnectionFailed,
    DeliveryAcked,
    DeliveryRejected,
    EnrollmentAccepted,
    Event,
    HeartbeatAcked,
    LinkReady,
    SessionOffered,
)
from protocol.messages import SessionOffer

from . import __version__, facts, pinning
from .config import AgentDir, Enrollment
from .errors import AgentError, EnrollmentRefused, Unreachable
from .outbox import Outbox

log = logging.getLogger(__name__)

SOFTWARE = f"backdesk-agent/{__version__}"
AGENT_PATH = "/ws/agent"
HANDSHAKE_TIMEOUT = 15.0
OUTBOX_POLL = 0.5  # other processes (get-help) write to the outbox: look for new work
MAX_IN_FLIGHT = 32
INVENTORY_INTERVAL = 6 * 3600
CLOCK_SAVE_INTERVAL = 600
# Reconnect delays: 0.5 s doubling to 15 s, plus up to 1 s of jitter so a fleet that lost
# its coordinator does not come back all in the same second.
BACKOFF = wait_exponential_jitter(multiplier=0.5, max=15.0, jitter=1.0)


class LinkLost(Exception):
    """The connection dropped or failed; retry after a delay."""


# Anything that means "the network or the coordinator is not there right now".
_TRANSIENT = (OSError, TimeoutError, ssl.SSLError, ConnectionClosed, InvalidHandshake, LinkLost)


async def _open(url: str, context: ssl.SSLContext, fingerprint: bytes) -> ClientConnection:
    ws = await connect(
        url,
        ssl=context,
        compression=None,
        max_size=MAX_FRAME_SIZE,
        open_timeout=pinning.CONNECT_TIMEOUT,
        user_agent_header=SOFTWARE,
    )
    # The context already trusts only the pinned certificate; check the exact bytes too.
    try:
        pinning.check_fingerprint(
            pinning.peer_certificate(ws.transport.get_extra_info("ssl_object")), fingerprint
        )
    except AgentError:
        await ws.close()
        raise
    return ws


async def _send_all(ws: ClientConnection, link: AgentLink) -> None:
    for data in link.data_to_send():
        await ws.send(data)


async def _receive(ws: ClientConnection, link: AgentLink) -> list[Event]:
    """Wait for the next message and return the link's events."""
    data = await ws.recv()
    if isinstance(data, str):
        link.fail(ProtocolError(ErrorCode.MALFORMED_FRAME, "text messages are not used"))
    else:
        link.receive_data(data)
    await _send_all(ws, link)
    return link.events_received()


def _refusal(event: DeliveryRejected) -> dict[str, Any]:
    """What is kept of a delivery the coordinator will never accept (it is dropped)."""
    log.error("the coordinator refused outbox message %s: %s", event.key, event.message)
    return {"refused": event.code, "message": event.message}


# --- enrollment -------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollResult:
    device_id: str
    hostname: str
    fingerprint: str


async def enroll(
    agent_dir: AgentDir,
    coordinator: str,
    token: str,
    fingerprint_text: str,
    progress: Callable[[str], None] = lambda _msg: None,
) -> EnrollResult:
    fingerprint = identity.parse_fingerprint(fingerprint_text)
    if fingerprint is None:
        raise AgentError(
            f"bad fingerprint {fingerprint_text!r}: expected sha256: and 64 hex digits"
        )
    host, port = pinning.parse_coordinator_url(coordinator)
    progress(f"Checking the certificate of {host}:{port}")
    der = await pinning.fetch_certificate(host, port)
    pinning.check_fingerprint(der, fingerprint)
    pem = ssl.DER_cert_to_PEM_cert(der)

    agent_dir.ensure()
    # Kept in memory until the coordinator accepts it: a refused (re-)enrollment must
    # leave a working identity as it was.
    key = Ed25519PrivateKey.generate()
    hostname = facts.hostname()
    progress(f"Enrolling {hostname} with a new identity key")
    try:
        ws = await _open(
            pinning.websocket_url(coordinator, AGENT_PATH), pinning.pinned_context(pem), fingerprint
        )
    except (*_TRANSIENT, InvalidURI) as exc:
        raise Unreachable(f"cannot reach the coordinator at {coordinator}: {exc}") from exc
    link = AgentLink(server_fingerprint=fingerprint, software=SOFTWARE)
    try:
        link.start_enrollment(token, key, hostname)
        await _send_all(ws, link)
        while True:
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    events = await _receive(ws, link)
            except (ConnectionClosed, TimeoutError) as exc:
                raise Unreachable(
                    f"the coordinator closed the connection during enrollment: {exc}"
                ) from exc
            for event in events:
                match event:
                    case EnrollmentAccepted(device_id=device_id):
                        enrollment = Enrollment(
                            coordinator=coordinator,
                            fingerprint=identity.format_fingerprint(fingerprint),
                            device_id=device_id,
                            hostname=hostname,
                        )
                        agent_dir.save_enrollment(enrollment, pem, key)
                        return EnrollResult(device_id, hostname, enrollment.fingerprint)
                    case ConnectionFailed(error=error):
                        raise EnrollmentRefused(error.message)
    finally:
        await ws.close()


# --- the service ------------------------------------------------------------------------


class Service:
    """``backdesk-agent run``: keep the link up, heartbeat, and drain the outbox."""

    def __init__(self, agent_dir: AgentDir, outbox: Outbox | None = None) -> None:
        self.dir = agent_dir
        self.enrollment = agent_dir.load_enrollment()
        self.key: Ed25519PrivateKey = agent_dir.load_key()
        fingerprint = identity.parse_fingerprint(self.enrollment.fingerprint)
        if fingerprint is None:
            raise AgentError(f"{agent_dir.enrollment_path} holds a bad fingerprint; enroll again")
        self.fingerprint = fingerprint
        self.context = pinning.pinned_context(agent_dir.certificate_pem())
        self.url = pinning.websocket_url(self.enrollment.coordinator, AGENT_PATH)
        self.outbox = outbox or Outbox(agent_dir.outbox_path)
        self.online = asyncio.Event()
        self._clock_saved_at = 0.0
        # At most one remote session at a time; it outlives a link reconnect (it has
        # its own relay connection) but not the service.
        self._remote: asyncio.Task[str] | None = None

    async def run(self) -> None:
        self.outbox.put("device.facts", facts.collect())
        inventory_task = asyncio.create_task(self._inventory_loop(), name="inventory")
        try:
            while True:
                retrying = AsyncRetrying(
                    wait=BACKOFF,
                    retry=retry_if_exception_type(_TRANSIENT),
                    before_sleep=self._log_retry,
                )
                # One session per call; returning normally means a session that was up
                # ended, so the next outage starts again from the shortest delay.
                await retrying(self._session)
        finally:
            inventory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inventory_task
            if self._remote is not None:
                # Stopping the agent ends its session: capture stops, the banner goes.
                self._remote.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._remote
            self.outbox.close()

    async def _inventory_loop(self) -> None:
        """The inventory on start, then every few hours; the outbox gets it only when it
        changed, as a diff when that is smaller (agent/inventory_upload.py)."""
        from . import inventory, inventory_upload  # not needed by the other commands

        device_id = self.enrollment.device_id
        while True:
            try:
                document = await asyncio.to_thread(inventory.collect, device_id)
                await asyncio.to_thread(
                    inventory_upload.queue, document, device_id, self.dir.root, self.outbox
                )
            except Exception:
                log.exception("could not take the inventory; trying again later")
            await asyncio.sleep(INVENTORY_INTERVAL)

    def _session_offered(self, offer: SessionOffer) -> None:
        """Start answering a technician's request (the user decides, not this call)."""
        if self._remote is not None and not self._remote.done():
            log.warning("session %s refused: another session is already open", offer.session_id)
            return
        from .remote.session import Context, RemoteSession  # only when a session comes

        async def connect(path: str) -> ClientConnection:
            url = pinning.websocket_url(self.enrollment.coordinator, path)
            return await _open(url, self.context, self.fingerprint)

        context = Context(
            device_id=self.enrollment.device_id,
            key=self.key,
            config_dir=self.dir.root,
            connect=connect,
        )
        self._remote = asyncio.create_task(
            RemoteSession(offer, context).run(), name=f"session-{offer.session_id}"
        )

    def _log_retry(self, state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0
        exc = state.outcome.exception() if state.outcome else None
        log.warning("coordinator unreachable (%s); retrying in %.1f s", exc or "?", delay)

    async def _session(self) -> None:
        ws = await _open(self.url, self.context, self.fingerprint)
        link = AgentLink(server_fingerprint=self.fingerprint, software=SOFTWARE)
        try:
            link.start_authentication(self.enrollment.device_id, self.key)
            await _send_all(ws, link)
            interval = await self._handshake(ws, link)
            log.info("online as device %s", self.enrollment.device_id)
            self.online.set()
            await self._serve(ws, link, interval)
        except (ConnectionClosed, LinkLost) as exc:
            if self.online.is_set():
                log.warning("connection to the coordinator lost: %s", exc)
                return
            raise
        finally:
            self.online.clear()
            await ws.close()

    async def deliver_now(self, keys: set[str]) -> dict[str, dict[str, Any]]:
        """Deliver these outbox messages on a connection of our own and wait for their
        acknowledgements (``get-help`` does this so the user sees the reference at once;
        whatever fails here stays in the outbox for the service)."""
        ws = await _open(self.url, self.context, self.fingerprint)
        link = AgentLink(server_fingerprint=self.fingerprint, software=SOFTWARE)
        results: dict[str, dict[str, Any]] = {}
        try:
            link.start_authentication(self.enrollment.device_id, self.key)
            await _send_all(ws, link)
            await self._handshake(ws, link)
            items = [i for i in self.outbox.pending(1000) if i.key in keys]
            for item in items:
                link.deliver(item.key, item.kind, item.body)
            await _send_all(ws, link)
            while len(results) < len(items):
                for event in await _receive(ws, link):
                    if isinstance(event, DeliveryAcked):
                        await asyncio.to_thread(self.outbox.remove, event.key, event.result)
                        results[event.key] = dict(event.result or {})
                    elif isinstance(event, DeliveryRejected):
                        await asyncio.to_thread(self.outbox.remove, event.key, _refusal(event))
                        results[event.key] = _refusal(event)
                    elif isinstance(event, ConnectionFailed):
                        self._failed(event.error)
        finally:
            await ws.close()
        return results

    async def _handshake(self, ws: ClientConnection, link: AgentLink) -> float:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            while True:
                for event in await _receive(ws, link):
                    if isinstance(event, LinkReady):
                        return event.heartbeat_interval
                    if isinstance(event, ConnectionFailed):
                        self._failed(event.error)

    def _note_clock(self, server_time: float) -> None:
        """Keep the offset to the coordinator's clock for the clock-skew finding (written
        at most every 10 minutes; the error is at most one round trip)."""
        now = time.time()
        if now - self._clock_saved_at < CLOCK_SAVE_INTERVAL:
            return
        self._clock_saved_at = now
        try:
            self.dir.save_clock_offset(server_time - now, now)
        except OSError as exc:
            log.warning("could not save the clock offset: %s", exc)

    def _failed(self, error: ProtocolError) -> None:
        if error.code in CREDENTIAL_ERRORS:
            raise EnrollmentRefused(f"the coordinator refused this device: {error.message}")
        raise LinkLost(error.message)

    async def _serve(self, ws: ClientConnection, link: AgentLink, interval: float) -> None:
        in_flight: set[str] = set()
        acked = asyncio.Event()
        last_ack = time.monotonic()

        async def heartbeat() -> None:
            seq = 0
            while True:
                if time.monotonic() - last_ack > 3 * interval:
                    raise LinkLost("no answer to heartbeats")
                link.send_heartbeat(seq, time.time())
                await _send_all(ws, link)
                seq += 1
                await asyncio.sleep(interval)

        async def drain() -> None:
            while True:
                room = MAX_IN_FLIGHT - len(in_flight)
                if room > 0:
                    items = await asyncio.to_thread(self.outbox.pending, room, frozenset(in_flight))
                    for item in items:
                        link.deliver(item.key, item.kind, item.body)
                        in_flight.add(item.key)
                    await _send_all(ws, link)
                # Wake on an acknowledgement (room again) or poll for messages that other
                # processes (get-help) put in the outbox.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(OUTBOX_POLL):
                        await acked.wait()
                acked.clear()

        async def receive() -> None:
            nonlocal last_ack
            while True:
                for event in await _receive(ws, link):
                    match event:
                        case DeliveryAcked(key=key, result=result):
                            await asyncio.to_thread(self.outbox.remove, key, result)
                            in_flight.discard(key)
                            acked.set()
                        case DeliveryRejected(key=key):
                            await asyncio.to_thread(self.outbox.remove, key, _refusal(event))
                            in_flight.discard(key)
                            acked.set()
                        case HeartbeatAcked(server_time=server_time):
                            last_ack = time.monotonic()
                            self._note_clock(server_time)
                        case SessionOffered(offer=offer):
                            self._session_offered(offer)
                        case ConnectionFailed(error=error):
                            self._failed(error)

        try:
            async with asyncio.TaskGroup() as group:
                for job in (heartbeat(), drain(), receive()):
                    group.create_task(job)
        except* EnrollmentRefused as group_error:
            raise group_error.exceptions[0] from None
        except* _TRANSIENT as group_error:
            raise LinkLost(str(group_error.exceptions[0])) from None
