"""The agent link: the sans-I/O state machines of both ends of ``/ws/agent``.

Each side is an object that takes whole websocket messages in (:meth:`receive_data`) and
gives back bytes to send (:meth:`data_to_send`) and events (:meth:`events_received`). It
never touches a socket or a clock: the adapter passes times in and runs the timers.

Conversation::

    agent                                coordinator
    hello {versions, software}     ->
                                   <-    welcome {version, challenge, server_time}
    enroll {token, public_key,     ->    (adapter checks the token)
            hostname, signature}   <-    enrolled {device_id}; then the coordinator closes
  or
    authenticate {device_id,       ->    (adapter looks up the device's public key)
                  signature}       <-    authenticated {device_id, heartbeat_interval}
    heartbeat {seq, sent_at}       ->
                                   <-    heartbeat_ack {seq, server_time}
    deliver {key, kind, body}      ->    (adapter commits it)
                                   <-    ack {key, result}
                                         or reject {key, code, message}: never acceptable
                                   <-    session_offer {session_id, ticket, ..., relay_token}
                                         (the agent answers through its user's consent, on
                                          the session relay: docs/remote-sessions.md)

Any protocol violation queues an ``error`` message for the peer and a
:class:`ConnectionFailed` event; the adapter then closes with the error's close code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import identity
from .errors import ErrorCode, InvalidState, ProtocolError
from .frames import SUPPORTED_VERSIONS
from .messages import (
    SESSION_SCOPES,
    Ack,
    Authenticate,
    Authenticated,
    Deliver,
    Enroll,
    Enrolled,
    Error,
    Heartbeat,
    HeartbeatAck,
    Hello,
    JSONObject,
    Message,
    Reject,
    SessionOffer,
    Welcome,
    decode_message,
    encode_message,
)

# --- events -----------------------------------------------------------------------------


class Event:
    """Base of everything a link reports to its adapter."""


@dataclass(frozen=True, slots=True)
class EnrollmentRequested(Event):
    token: str
    public_key: bytes
    hostname: str


@dataclass(frozen=True, slots=True)
class AuthenticationRequested(Event):
    device_id: str


@dataclass(frozen=True, slots=True)
class EnrollmentAccepted(Event):
    device_id: str


@dataclass(frozen=True, slots=True)
class LinkReady(Event):
    device_id: str
    heartbeat_interval: float


@dataclass(frozen=True, slots=True)
class HeartbeatReceived(Event):
    seq: int
    sent_at: float


@dataclass(frozen=True, slots=True)
class HeartbeatAcked(Event):
    seq: int
    server_time: float


@dataclass(frozen=True, slots=True)
class DeliveryReceived(Event):
    key: str
    kind: str
    body: JSONObject


@dataclass(frozen=True, slots=True)
class DeliveryAcked(Event):
    key: str
    result: JSONObject | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRejected(Event):
    key: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SessionOffered(Event):
    """A technician asks for a session; the agent's own consent decides what happens."""

    offer: SessionOffer


@dataclass(frozen=True, slots=True)
class ConnectionFailed(Event):
    """The link is over. ``remote`` is True when the peer sent the error."""

    error: ProtocolError
    remote: bool = False


# --- states -----------------------------------------------------------------------------


class CoordinatorState(Enum):
    AWAIT_HELLO = auto()
    AWAIT_CREDENTIALS = auto()
    ENROLLING = auto()  # waiting for the adapter to check the token
    VERIFYING = auto()  # waiting for the adapter to look up the device key
    READY = auto()
    DONE = auto()  # enrollment finished; the adapter closes normally
    FAILED = auto()


class AgentState(Enum):
    IDLE = auto()
    HELLO_SENT = auto()
    CREDENTIALS_SENT = auto()
    READY = auto()
    DONE = auto()
    FAILED = auto()


# Which message each state accepts, and the method that handles it. Everything that
# affects the state machines lives in these two tables; anything not listed is refused.
COORDINATOR_TRANSITIONS: dict[tuple[CoordinatorState, type[Message]], str] = {
    (CoordinatorState.AWAIT_HELLO, Hello): "_on_hello",
    (CoordinatorState.AWAIT_CREDENTIALS, Enroll): "_on_enroll",
    (CoordinatorState.AWAIT_CREDENTIALS, Authenticate): "_on_authenticate",
    (CoordinatorState.READY, Heartbeat): "_on_heartbeat",
    (CoordinatorState.READY, Deliver): "_on_deliver",
}

AGENT_TRANSITIONS: dict[tuple[AgentState, type[Message]], str] = {
    (AgentState.HELLO_SENT, Welcome): "_on_welcome",
    (AgentState.CREDENTIALS_SENT, Enrolled): "_on_enrolled",
    (AgentState.CREDENTIALS_SENT, Authenticated): "_on_authenticated",
    (AgentState.READY, HeartbeatAck): "_on_heartbeat_ack",
    (AgentState.READY, Ack): "_on_ack",
    (AgentState.READY, Reject): "_on_reject",
    (AgentState.READY, SessionOffer): "_on_session_offer",
}


class _Link:
    """What both ends share: buffers, error handling and dispatch through a table."""

    _table: dict[tuple[Any, type[Message]], str]
    _failed_state: Any

    def __init__(self) -> None:
        self._outgoing: list[bytes] = []
        self._events: list[Event] = []
        self.state: Any
        self.error: ProtocolError | None = None

    def data_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    @property
    def failed(self) -> bool:
        return self.state is self._failed_state

    def receive_data(self, data: bytes) -> None:
        """Feed one websocket message. Input after a failure is discarded."""
        if self.failed:
            return
        message = decode_message(data)
        if isinstance(message, ProtocolError):
            self.fail(message)
            return
        if isinstance(message, Error):
            self._remote_failure(message)
            return
        handler = self._table.get((self.state, type(message)))
        if handler is None:
            self.fail(
                ProtocolError(
                    ErrorCode.UNEXPECTED_MESSAGE,
                    f"{message.TYPE} is not allowed in state {self.state.name.lower()}",
                )
            )
            return
        method: Callable[[Message], None] = getattr(self, handler)
        method(message)

    def fail(self, error: ProtocolError) -> None:
        """Tell the peer why, and report the end of the link. Idempotent."""
        if self.failed:
            return
        self._send(Error(code=error.code.value, message=error.message[:500]))
        self.state = self._failed_state
        self.error = error
        self._events.append(ConnectionFailed(error))

    def _remote_failure(self, message: Error) -> None:
        try:
            code = ErrorCode(message.code)
        except ValueError:
            code = ErrorCode.SERVER_ERROR
        self.state = self._failed_state
        self.error = ProtocolError(code, message.message)
        self._events.append(ConnectionFailed(self.error, remote=True))

    def _send(self, message: Message) -> None:
        self._outgoing.append(encode_message(message))

    def _require(self, *states: Any) -> None:
        if self.state not in states:
            raise InvalidState(f"not allowed in state {self.state.name.lower()}")


class CoordinatorLink(_Link):
    """The coordinator's end of one agent connection."""

    _table = COORDINATOR_TRANSITIONS
    _failed_state = CoordinatorState.FAILED

    def __init__(
        self,
        *,
        server_fingerprint: bytes,
        challenge: bytes,
        server_time: float,
        heartbeat_interval: float,
    ) -> None:
        super().__init__()
        if len(challenge) != 32:
            raise ValueError("challenge must be 32 random bytes")
        self.state: CoordinatorState = CoordinatorState.AWAIT_HELLO
        self._fingerprint = server_fingerprint
        self._challenge = challenge
        self._server_time = server_time
        self._heartbeat_interval = heartbeat_interval
        self._pending: Authenticate | None = None
        self.device_id: str | None = None
        self.peer_software: str | None = None

    # inbound

    def _on_hello(self, message: Hello) -> None:
        common = set(message.versions) & set(SUPPORTED_VERSIONS)
        if not common:
            self.fail(
                ProtocolError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"agent speaks {message.versions}, coordinator speaks {list(SUPPORTED_VERSIONS)}",
                )
            )
            return
        self.state = CoordinatorState.AWAIT_CREDENTIALS
        self.peer_software = message.software
        self._send(Welcome(max(common), self._challenge, self._server_time))

    def _on_enroll(self, message: Enroll) -> None:
        if not identity.valid_public_key(message.public_key):
            self.fail(
                ProtocolError(ErrorCode.INVALID_MESSAGE, "public key is not a valid Ed25519 key")
            )
            return
        transcript = identity.enroll_transcript(
            self._challenge, self._fingerprint, message.public_key
        )
        if not identity.verify(message.public_key, message.signature, transcript):
            self.fail(ProtocolError(ErrorCode.BAD_SIGNATURE, "enrollment signature is invalid"))
            return
        self.state = CoordinatorState.ENROLLING
        self._events.append(
            EnrollmentRequested(message.token, message.public_key, message.hostname)
        )

    def _on_authenticate(self, message: Authenticate) -> None:
        self.state = CoordinatorState.VERIFYING
        self._pending = message
        self._events.append(AuthenticationRequested(message.device_id))

    def _on_heartbeat(self, message: Heartbeat) -> None:
        self._send(HeartbeatAck(message.seq, self._server_time))
        self._events.append(HeartbeatReceived(message.seq, message.sent_at))

    def _on_deliver(self, message: Deliver) -> None:
        self._events.append(DeliveryReceived(message.key, message.kind, message.body))

    # decisions the adapter makes after I/O

    def accept_enrollment(self, device_id: str) -> None:
        self._require(CoordinatorState.ENROLLING)
        self.state = CoordinatorState.DONE
        self.device_id = device_id
        self._send(Enrolled(device_id))

    def verify_authentication(self, public_key: bytes | None) -> None:
        """Finish authentication with the device's registered key (None: unknown device)."""
        self._require(CoordinatorState.VERIFYING)
        pending, self._pending = self._pending, None
        assert pending is not None
        if public_key is None:
            self.fail(
                ProtocolError(
                    ErrorCode.UNKNOWN_DEVICE,
                    "this device is not enrolled here: enroll it again with a new token",
                )
            )
            return
        transcript = identity.authenticate_transcript(
            self._challenge, self._fingerprint, pending.device_id
        )
        if not identity.verify(public_key, pending.signature, transcript):
            self.fail(
                ProtocolError(ErrorCode.BAD_SIGNATURE, "signature does not match the device's key")
            )
            return
        self.state = CoordinatorState.READY
        self.device_id = pending.device_id
        self._send(Authenticated(pending.device_id, self._heartbeat_interval))
        self._events.append(LinkReady(pending.device_id, self._heartbeat_interval))

    def acknowledge(self, key: str, result: JSONObject | None = None) -> None:
        """The delivery with ``key`` is committed: tell the agent it may forget it."""
        self._require(CoordinatorState.READY)
        self._send(Ack(key, result))

    def reject(self, key: str, error: ProtocolError) -> None:
        """The delivery with ``key`` can never be accepted: the agent should drop it."""
        self._require(CoordinatorState.READY)
        self._send(Reject(key, error.code.value, error.message[:500]))

    def offer_session(self, offer: SessionOffer) -> None:
        self._require(CoordinatorState.READY)
        self._send(offer)

    def set_server_time(self, now: float) -> None:
        self._server_time = now


class AgentLink(_Link):
    """The agent's end of its connection to the coordinator."""

    _table = AGENT_TRANSITIONS
    _failed_state = AgentState.FAILED

    def __init__(self, *, server_fingerprint: bytes, software: str) -> None:
        super().__init__()
        self.state: AgentState = AgentState.IDLE
        self._fingerprint = server_fingerprint
        self._software = software[:64]
        self._credentials: Callable[[bytes], Message] | None = None
        # What we asked for decides the only answer we accept: "enrolled" to an enroll,
        # "authenticated" for our own device id to an authenticate.
        self._expected: type[Message] | None = None
        self._claimed_id: str | None = None
        self.device_id: str | None = None
        self.heartbeat_interval: float | None = None

    def start_enrollment(self, token: str, key: Ed25519PrivateKey, hostname: str) -> None:
        public_key = identity.public_key_bytes(key)

        def credentials(challenge: bytes) -> Message:
            transcript = identity.enroll_transcript(challenge, self._fingerprint, public_key)
            return Enroll(token, public_key, hostname, identity.sign(key, transcript))

        self._start(credentials, Enrolled)

    def start_authentication(self, device_id: str, key: Ed25519PrivateKey) -> None:
        def credentials(challenge: bytes) -> Message:
            transcript = identity.authenticate_transcript(challenge, self._fingerprint, device_id)
            return Authenticate(device_id, identity.sign(key, transcript))

        self._claimed_id = device_id
        self._start(credentials, Authenticated)

    def _start(self, credentials: Callable[[bytes], Message], expected: type[Message]) -> None:
        self._require(AgentState.IDLE)
        self._credentials = credentials
        self._expected = expected
        self.state = AgentState.HELLO_SENT
        self._send(Hello(list(SUPPORTED_VERSIONS), self._software))

    def send_heartbeat(self, seq: int, now: float) -> None:
        self._require(AgentState.READY)
        self._send(Heartbeat(seq, now))

    def deliver(self, key: str, kind: str, body: JSONObject) -> None:
        self._require(AgentState.READY)
        self._send(Deliver(key, kind, body))

    def _on_welcome(self, message: Welcome) -> None:
        if message.version not in SUPPORTED_VERSIONS:
            self.fail(
                ProtocolError(ErrorCode.UNSUPPORTED_VERSION, f"coordinator chose {message.version}")
            )
            return
        assert self._credentials is not None
        self.state = AgentState.CREDENTIALS_SENT
        self._send(self._credentials(message.challenge))
        self._credentials = None  # the closure holds the token and key: drop it

    def _unexpected_answer(self, message: Message) -> bool:
        if self._expected is type(message):
            return False
        self.fail(
            ProtocolError(
                ErrorCode.UNEXPECTED_MESSAGE, f"{message.TYPE} does not answer our request"
            )
        )
        return True

    def _on_enrolled(self, message: Enrolled) -> None:
        if self._unexpected_answer(message):
            return
        self.state = AgentState.DONE
        self.device_id = message.device_id
        self._events.append(EnrollmentAccepted(message.device_id))

    def _on_authenticated(self, message: Authenticated) -> None:
        if self._unexpected_answer(message):
            return
        if message.device_id != self._claimed_id:
            self.fail(
                ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, "authenticated as another device")
            )
            return
        self.state = AgentState.READY
        self.device_id = message.device_id
        self.heartbeat_interval = message.heartbeat_interval
        self._events.append(LinkReady(message.device_id, message.heartbeat_interval))

    def _on_heartbeat_ack(self, message: HeartbeatAck) -> None:
        self._events.append(HeartbeatAcked(message.seq, message.server_time))

    def _on_ack(self, message: Ack) -> None:
        self._events.append(DeliveryAcked(message.key, message.result))

    def _on_reject(self, message: Reject) -> None:
        self._events.append(DeliveryRejected(message.key, message.code, message.message))

    def _on_session_offer(self, message: SessionOffer) -> None:
        if message.scope not in SESSION_SCOPES:
            self.fail(ProtocolError(ErrorCode.INVALID_MESSAGE, f"unknown scope {message.scope!r}"))
            return
        self._events.append(SessionOffered(message))
