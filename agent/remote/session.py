"""One remote session on the endpoint, from the coordinator's offer to its end.

Order matters, and is the point of this module (DESIGN.md invariant 1):

1. join the relay with the offer's one-time token, wait for the viewer's hello;
2. answer with our signed hello: both ends now hold keys the coordinator never sees,
   and the same 6-digit verification code;
3. ask the user (``consent.ask``, showing that code), or apply the local
   ``policy.toml`` (which only this machine's administrator can write); the answer is a
   receipt signed with the device's identity key;
4. only then, and only on "allow": show the banner, capture the screen, and, for a
   control session, inject input. Input in a view-only session is dropped here.

Whatever ends the session (the banner's button or hotkey, the technician, the viewer or
the relay going away, a forged frame, the agent stopping), the ``finally`` below stops
capture, releases held keys and takes the banner down.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from protocol import e2e, identity, remote
from protocol.canonical import receipt_bytes
from protocol.errors import ProtocolError
from protocol.messages import SessionOffer

from . import consent
from .policy import load_policy, policy_path

log = logging.getLogger(__name__)

VIEWER_WAIT = 60.0  # the technician's page must connect within this time
CONSENT_TIMEOUT = 60.0
MAX_FPS = 60.0
Connect = Callable[[str], Awaitable[ClientConnection]]


class SessionOver(Exception):
    """The session ends, with the reason recorded by the coordinator."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class Context:
    device_id: str
    key: Ed25519PrivateKey
    config_dir: Path
    connect: Connect  # opens a pinned websocket to a path on the coordinator
    consent_timeout: float = CONSENT_TIMEOUT


def signed(key: Ed25519PrivateKey, receipt: dict[str, Any]) -> dict[str, Any]:
    return {
        "receipt": receipt,
        "signature": base64.b64encode(identity.sign(key, receipt_bytes(receipt))).decode(),
    }


class RemoteSession:
    def __init__(self, offer: SessionOffer, context: Context) -> None:
        self.offer = offer
        self.ctx = context
        self.ws: ClientConnection | None = None
        self.channel: e2e.Channel | None = None
        self.scope: str | None = None
        self.started_at: float | None = None
        self.dropped_input = 0
        self.code: str | None = None
        self.via = "user"

    def _receipt(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "session": self.offer.session_id,
            "device": self.ctx.device_id,
            "ticket": self.offer.ticket,
            "technician": self.offer.technician,
            **fields,
        }

    async def run(self) -> str:
        """Run the session to its end; returns why it ended."""
        offer = self.offer
        log.info(
            "session %s: %s (%s) asks to %s the screen for %s",
            offer.session_id,
            offer.technician,
            offer.role,
            offer.scope,
            offer.ticket,
        )
        try:
            self.ws = await self.ctx.connect(f"/ws/relay/{offer.session_id}")
        except Exception as exc:
            log.warning("session %s: cannot reach the relay: %s", offer.session_id, exc)
            return "agent_gone"
        reason = "agent_gone"
        try:
            token = base64.b64encode(offer.relay_token).decode()
            await self.ws.send(json.dumps({"type": "join", "token": token}))
            await self._handshake()
            granted = await self._consent()
            if granted is None:
                return "denied"
            reason = await self._live(granted)
        except SessionOver as over:
            reason = over.reason
            log.info("session %s ended: %s", offer.session_id, over)
        except ConnectionClosed:
            reason = "relay_gone"
            log.info("session %s: the relay closed the connection", offer.session_id)
        except Exception:
            # A bug must end the session (and show in the log), never leave it half open.
            reason = "agent_error"
            log.exception("session %s failed", offer.session_id)
        finally:
            if self.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), 2.0)
        return reason

    # --- before consent -------------------------------------------------------------

    async def _control(self, text: str) -> None:
        """A state message from the coordinator: only "ended" matters to us."""
        try:
            message = json.loads(text)
        except ValueError:
            raise SessionOver("protocol_error", "the relay sent bad JSON") from None
        if isinstance(message, dict) and message.get("state") == "ended":
            raise SessionOver(str(message.get("reason") or "ended"), "ended by the coordinator")

    async def _handshake(self) -> None:
        assert self.ws is not None
        async with asyncio.timeout(VIEWER_WAIT):
            while True:
                data = await self.ws.recv()
                if isinstance(data, str):
                    await self._control(data)
                    continue
                answer = e2e.agent_handshake(self.offer.session_id, self.ctx.key, data)
                if isinstance(answer, ProtocolError):
                    raise SessionOver("protocol_error", answer.message)
                hello, self.channel = answer
                self.code = self.channel.code
                await self.ws.send(hello)
                return

    async def _consent(self) -> str | None:
        """The granted scope (after sending the signed consent), or None if refused."""
        assert self.ws is not None and self.code is not None
        offer = self.offer
        policy = load_policy(policy_path(self.ctx.config_dir))
        if policy.warning:
            log.warning("%s", policy.warning)
        granted = policy.grants(offer.scope)  # type: ignore[arg-type]
        if granted is not None:
            decision, self.via = "allow", "policy"
            log.warning(
                "session %s: unattended %s allowed by the local policy", offer.session_id, granted
            )
        else:
            request = consent.ConsentRequest(
                technician=offer.technician,
                role=offer.role,
                ticket=offer.ticket,
                subject=offer.subject,
                scope=offer.scope,  # type: ignore[arg-type]
                code=self.code,
                session=offer.session_id,
            )
            # While the user thinks, the coordinator may end the session (the technician
            # gave up): then the dialog goes away at once.
            asking = asyncio.create_task(consent.ask(request, self.ctx.consent_timeout))
            watching = asyncio.create_task(self._watch_until_answered())
            try:
                done, _ = await asyncio.wait(
                    {asking, watching}, return_when=asyncio.FIRST_COMPLETED
                )
                if watching in done:
                    watching.result()  # raises SessionOver / ConnectionClosed
                answer = asking.result()
            finally:
                for task in (asking, watching):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            decision = answer.decision
            granted = answer.scope if answer.allowed else None
        if granted is None:
            await self._send_consent(decision, None, time.time())
            log.info("session %s: the user said %s", offer.session_id, decision)
            return None
        self.scope = granted
        return granted

    async def _send_consent(self, decision: str, scope: str | None, at: float) -> None:
        """The answer, signed: what the coordinator records and anyone can verify."""
        assert self.ws is not None
        receipt = self._receipt(
            "consent",
            scope=scope,
            decision=decision,
            via=self.via,
            code=self.code,
            at=round(at, 3),
        )
        await self.ws.send(json.dumps({"type": "consent", **signed(self.ctx.key, receipt)}))

    async def _watch_until_answered(self) -> None:
        assert self.ws is not None
        while True:
            data = await self.ws.recv()
            if isinstance(data, str):
                await self._control(data)
            else:
                raise SessionOver("protocol_error", "a sealed message before consent")

    # --- live -------------------------------------------------------------------------

    async def _live(self, scope: str) -> str:
        from . import banner as banner_module  # Tk process helpers, only when needed

        assert self.ws is not None and self.channel is not None
        offer = self.offer
        banner = banner_module.Banner()
        try:
            await banner.start(offer.technician, offer.ticket, scope)
        except banner_module.BannerError as exc:
            # A live session must be visible on the endpoint: without the banner, no session.
            log.error("session %s: %s", offer.session_id, exc)
            await self._send_consent("deny", None, time.time())
            await banner.close()
            return "denied"
        self.started_at = time.time()
        await self._send_consent("allow", scope, self.started_at)
        log.warning(
            "session %s: %s is %s this screen",
            offer.session_id,
            offer.technician,
            "controlling" if scope == "control" else "viewing",
        )
        from .streamer import Streamer  # numpy, mss, pynput: only for a live session

        streamer = Streamer(self, scope, banner)
        reason = "ended_by_user"
        try:
            reason = await streamer.run()
            log.info("session %s: ending (%s)", offer.session_id, reason)
        finally:
            await streamer.close()
            await banner.close()
            if self.dropped_input:
                log.warning(
                    "session %s: dropped %d input events (view only)",
                    offer.session_id,
                    self.dropped_input,
                )
        await self._send_end(reason)
        return reason

    async def _send_end(self, reason: str) -> None:
        if self.ws is None:
            return
        receipt = self._receipt(
            "end",
            scope=self.scope,
            reason=reason,
            started_at=round(self.started_at or 0.0, 3),
            ended_at=round(time.time(), 3),
        )
        with contextlib.suppress(ConnectionClosed, OSError):
            await self.ws.send(
                json.dumps({"type": "end", "reason": reason, **signed(self.ctx.key, receipt)})
            )

    async def send_sealed(self, message: remote.RemoteMessage) -> int:
        assert self.ws is not None and self.channel is not None
        data = self.channel.seal(remote.encode(message))
        await self.ws.send(data)
        return len(data)
