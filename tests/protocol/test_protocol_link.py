"""The agent link: both state machines paired in memory, speaking bytes and events."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import FAST, check_error, json_objects, sample

from protocol import identity
from protocol.errors import ErrorCode, InvalidState, ProtocolError
from protocol.frames import SUPPORTED_VERSIONS, Frame, FrameKind, encode_frame
from protocol.link import (
    AGENT_TRANSITIONS,
    COORDINATOR_TRANSITIONS,
    AgentLink,
    AgentState,
    AuthenticationRequested,
    ConnectionFailed,
    CoordinatorLink,
    CoordinatorState,
    DeliveryAcked,
    DeliveryReceived,
    DeliveryRejected,
    EnrollmentAccepted,
    EnrollmentRequested,
    Event,
    HeartbeatAcked,
    HeartbeatReceived,
    LinkReady,
    SessionOffered,
)
from protocol.messages import (
    Authenticate,
    Authenticated,
    Enroll,
    Enrolled,
    Error,
    Hello,
    Message,
    Welcome,
    decode_message,
    encode_message,
    message_types,
)

FP = identity.certificate_fingerprint(b"coordinator certificate")
OTHER_FP = identity.certificate_fingerprint(b"another coordinator's certificate")
AGENT_KEY = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
AGENT_PUBLIC = identity.public_key_bytes(AGENT_KEY)
OTHER_PUBLIC = identity.public_key_bytes(OTHER_KEY)
CHALLENGE = bytes(range(32))
OTHER_CHALLENGE = bytes(range(100, 132))
SERVER_TIME = 1_700_000_000.0
HEARTBEAT_INTERVAL = 25.0
TOKEN = "enroll-token-0123"
HOSTNAME = "pc-accueil-03"
DEVICE_ID = "dev-7f3a"
SOFTWARE = "backdesk-agent/0.1.0"

Link = AgentLink | CoordinatorLink
Transcript = list[tuple[str, Message]]


# --- pairing ----------------------------------------------------------------------------


def make_coordinator(
    *, fingerprint: bytes = FP, challenge: bytes = CHALLENGE, server_time: float = SERVER_TIME
) -> CoordinatorLink:
    return CoordinatorLink(
        server_fingerprint=fingerprint,
        challenge=challenge,
        server_time=server_time,
        heartbeat_interval=HEARTBEAT_INTERVAL,
    )


def make_agent(*, fingerprint: bytes = FP) -> AgentLink:
    return AgentLink(server_fingerprint=fingerprint, software=SOFTWARE)


def decoded(data: bytes) -> Message:
    message = decode_message(data)
    assert isinstance(message, Message), message
    return message


def pump(agent: AgentLink, coordinator: CoordinatorLink, limit: int = 50) -> Transcript:
    """Move bytes both ways until neither side has anything to send."""
    transcript: Transcript = []
    for _ in range(limit):
        moved = False
        for data in agent.data_to_send():
            transcript.append((">", decoded(data)))
            coordinator.receive_data(data)
            moved = True
        for data in coordinator.data_to_send():
            transcript.append(("<", decoded(data)))
            agent.receive_data(data)
            moved = True
        if not moved:
            return transcript
    raise AssertionError("the links never went quiet")


def flow(transcript: Transcript) -> list[str]:
    return [direction + message.TYPE for direction, message in transcript]


def enrolling_pair(**coordinator_args: Any) -> tuple[AgentLink, CoordinatorLink, Transcript]:
    agent, coordinator = make_agent(), make_coordinator(**coordinator_args)
    agent.start_enrollment(TOKEN, AGENT_KEY, HOSTNAME)
    return agent, coordinator, pump(agent, coordinator)


def authenticating_pair(
    *, agent_fingerprint: bytes = FP, key: Ed25519PrivateKey = AGENT_KEY
) -> tuple[AgentLink, CoordinatorLink, Transcript]:
    agent, coordinator = make_agent(fingerprint=agent_fingerprint), make_coordinator()
    agent.start_authentication(DEVICE_ID, key)
    return agent, coordinator, pump(agent, coordinator)


def ready_pair() -> tuple[AgentLink, CoordinatorLink]:
    agent, coordinator, _ = authenticating_pair()
    coordinator.verify_authentication(AGENT_PUBLIC)
    pump(agent, coordinator)
    drain(agent)
    drain(coordinator)
    assert agent.state is AgentState.READY
    assert coordinator.state is CoordinatorState.READY
    return agent, coordinator


def drain(link: Link) -> None:
    link.data_to_send()
    link.events_received()


def failure(link: Link) -> ConnectionFailed:
    """The one event of a link that just failed."""
    events = link.events_received()
    assert len(events) == 1, events
    (event,) = events
    assert isinstance(event, ConnectionFailed), event
    assert link.failed
    assert link.error is event.error
    check_error(event.error)
    return event


def sent_error(link: Link) -> Error:
    """The one message a link that failed locally queued: an error for its peer."""
    out = link.data_to_send()
    assert len(out) == 1, out
    message = decoded(out[0])
    assert isinstance(message, Error), message
    return message


def assert_quiet(link: Link) -> None:
    assert link.events_received() == []
    assert link.data_to_send() == []


# --- the happy paths --------------------------------------------------------------------


def test_enrollment() -> None:
    agent, coordinator, transcript = enrolling_pair()
    assert flow(transcript) == [">hello", "<welcome", ">enroll"]
    hello, welcome, enroll = (m for _, m in transcript)
    assert isinstance(hello, Hello) and hello.versions == list(SUPPORTED_VERSIONS)
    assert hello.software == SOFTWARE
    assert isinstance(welcome, Welcome)
    assert welcome.challenge == CHALLENGE
    assert welcome.server_time == SERVER_TIME
    assert welcome.version in SUPPORTED_VERSIONS
    assert isinstance(enroll, Enroll) and enroll.public_key == AGENT_PUBLIC

    assert coordinator.events_received() == [EnrollmentRequested(TOKEN, AGENT_PUBLIC, HOSTNAME)]
    assert coordinator.state is CoordinatorState.ENROLLING
    assert agent.state is AgentState.CREDENTIALS_SENT
    assert agent.events_received() == []

    coordinator.accept_enrollment("dev-42")
    assert flow(pump(agent, coordinator)) == ["<enrolled"]
    assert agent.events_received() == [EnrollmentAccepted("dev-42")]
    assert coordinator.events_received() == []
    assert agent.state is AgentState.DONE
    assert coordinator.state is CoordinatorState.DONE
    assert agent.device_id == coordinator.device_id == "dev-42"
    assert agent.error is None and coordinator.error is None


def test_authentication() -> None:
    agent, coordinator, transcript = authenticating_pair()
    assert flow(transcript) == [">hello", "<welcome", ">authenticate"]
    assert coordinator.events_received() == [AuthenticationRequested(DEVICE_ID)]
    assert coordinator.state is CoordinatorState.VERIFYING

    coordinator.verify_authentication(AGENT_PUBLIC)
    assert flow(pump(agent, coordinator)) == ["<authenticated"]
    ready = LinkReady(DEVICE_ID, HEARTBEAT_INTERVAL)
    assert coordinator.events_received() == [ready]
    assert agent.events_received() == [ready]
    assert agent.state is AgentState.READY
    assert coordinator.state is CoordinatorState.READY
    assert agent.device_id == coordinator.device_id == DEVICE_ID
    assert agent.heartbeat_interval == HEARTBEAT_INTERVAL


@pytest.mark.parametrize("seq", [0, 1, 41, 2**63 - 1])
def test_heartbeat_is_acked_with_its_seq(seq: int) -> None:
    agent, coordinator = ready_pair()
    coordinator.set_server_time(SERVER_TIME + seq % 1000)
    agent.send_heartbeat(seq, 123.5)
    assert flow(pump(agent, coordinator)) == [">heartbeat", "<heartbeat_ack"]
    assert coordinator.events_received() == [HeartbeatReceived(seq, 123.5)]
    assert agent.events_received() == [HeartbeatAcked(seq, SERVER_TIME + seq % 1000)]


def test_delivery_is_acked_only_when_acknowledged() -> None:
    agent, coordinator = ready_pair()
    body = {"subject": "Imprimante", "lines": ["a", "b"], "n": 3, "nested": {"ok": True}}
    agent.deliver("key-1", "ticket", body)
    assert flow(pump(agent, coordinator)) == [">deliver"]
    assert coordinator.events_received() == [DeliveryReceived("key-1", "ticket", body)]
    assert agent.events_received() == []  # not committed yet
    coordinator.acknowledge("key-1")
    assert flow(pump(agent, coordinator)) == ["<ack"]
    assert agent.events_received() == [DeliveryAcked("key-1")]
    assert coordinator.events_received() == []


operations = st.lists(
    st.tuples(st.just("heartbeat"), st.integers(min_value=0, max_value=2**63 - 1))
    | st.tuples(st.just("deliver"), st.text(min_size=1, max_size=64), json_objects(3)),
    max_size=10,
)


@FAST
@given(operations)
def test_any_sequence_of_heartbeats_and_deliveries(ops: list[tuple[Any, ...]]) -> None:
    agent, coordinator = ready_pair()
    for op in ops:
        if op[0] == "heartbeat":
            agent.send_heartbeat(op[1], 1.0)
            pump(agent, coordinator)
            assert coordinator.events_received() == [HeartbeatReceived(op[1], 1.0)]
            assert agent.events_received() == [HeartbeatAcked(op[1], SERVER_TIME)]
        else:
            _, key, body = op
            agent.deliver(key, "note", body)
            pump(agent, coordinator)
            assert coordinator.events_received() == [DeliveryReceived(key, "note", body)]
            coordinator.acknowledge(key)
            pump(agent, coordinator)
            assert agent.events_received() == [DeliveryAcked(key)]
    assert agent.state is AgentState.READY
    assert coordinator.state is CoordinatorState.READY


def test_coordinator_picks_the_highest_common_version() -> None:
    coordinator = make_coordinator()
    coordinator.receive_data(encode_message(Hello(versions=[99, 1, 0], software="x")))
    welcome = decoded(coordinator.data_to_send()[0])
    assert isinstance(welcome, Welcome)
    assert welcome.version == max(SUPPORTED_VERSIONS)
    assert coordinator.state is CoordinatorState.AWAIT_CREDENTIALS


def test_coordinator_challenge_must_be_32_bytes() -> None:
    for size in (0, 16, 31, 33):
        with pytest.raises(ValueError, match="challenge"):
            make_coordinator(challenge=bytes(size))


# --- refusals: credentials --------------------------------------------------------------


def assert_failed_both_sides(
    agent: AgentLink, coordinator: CoordinatorLink, code: ErrorCode
) -> None:
    """The coordinator failed with ``code``; after a pump the agent knows why."""
    local = failure(coordinator)
    assert local.error.code is code
    assert local.remote is False
    assert coordinator.state is CoordinatorState.FAILED
    pump(agent, coordinator)
    remote = failure(agent)
    assert remote.remote is True
    assert remote.error.code is code
    assert remote.error.close_code == local.error.close_code
    assert agent.state is AgentState.FAILED
    assert_quiet(coordinator)


def test_unknown_device() -> None:
    agent, coordinator, _ = authenticating_pair()
    drain(coordinator)
    coordinator.verify_authentication(None)
    assert coordinator.device_id is None
    assert_failed_both_sides(agent, coordinator, ErrorCode.UNKNOWN_DEVICE)
    assert agent.error is not None and agent.error.close_code == 4401


def test_authentication_with_the_wrong_public_key() -> None:
    agent, coordinator, _ = authenticating_pair()
    drain(coordinator)
    coordinator.verify_authentication(OTHER_PUBLIC)
    assert_failed_both_sides(agent, coordinator, ErrorCode.BAD_SIGNATURE)
    assert coordinator.device_id is None


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 31, b"\xff" * 32, b"\x00" * 64])
def test_authentication_with_a_garbage_public_key(garbage: bytes) -> None:
    agent, coordinator, _ = authenticating_pair()
    drain(coordinator)
    coordinator.verify_authentication(garbage)
    assert_failed_both_sides(agent, coordinator, ErrorCode.BAD_SIGNATURE)


def test_authentication_signed_by_another_key() -> None:
    agent, coordinator, _ = authenticating_pair(key=OTHER_KEY)
    drain(coordinator)
    coordinator.verify_authentication(AGENT_PUBLIC)
    assert_failed_both_sides(agent, coordinator, ErrorCode.BAD_SIGNATURE)


def coordinator_awaiting_credentials(**args: Any) -> CoordinatorLink:
    coordinator = make_coordinator(**args)
    coordinator.receive_data(encode_message(Hello(versions=[1], software="forger")))
    assert isinstance(decoded(coordinator.data_to_send()[0]), Welcome)
    assert coordinator.state is CoordinatorState.AWAIT_CREDENTIALS
    return coordinator


def test_enroll_signed_by_a_key_other_than_the_one_claimed() -> None:
    coordinator = coordinator_awaiting_credentials()
    transcript = identity.enroll_transcript(CHALLENGE, FP, AGENT_PUBLIC)
    forged = Enroll(
        token=TOKEN,
        public_key=AGENT_PUBLIC,
        hostname=HOSTNAME,
        signature=identity.sign(OTHER_KEY, transcript),
    )
    coordinator.receive_data(encode_message(forged))
    event = failure(coordinator)
    assert event.error.code is ErrorCode.BAD_SIGNATURE
    assert sent_error(coordinator).code == ErrorCode.BAD_SIGNATURE.value


def test_enroll_with_a_garbage_signature() -> None:
    coordinator = coordinator_awaiting_credentials()
    forged = Enroll(token=TOKEN, public_key=AGENT_PUBLIC, hostname=HOSTNAME, signature=bytes(64))
    coordinator.receive_data(encode_message(forged))
    assert failure(coordinator).error.code is ErrorCode.BAD_SIGNATURE


def test_enroll_with_a_small_order_public_key() -> None:
    """The neutral point as public key with (R = neutral, S = 0) "verifies" anything:
    the coordinator would register a key that anyone can sign for."""
    coordinator = coordinator_awaiting_credentials()
    forged = Enroll(
        token=TOKEN,
        public_key=b"\x01" + bytes(31),
        hostname=HOSTNAME,
        signature=b"\x01" + bytes(63),
    )
    coordinator.receive_data(encode_message(forged))
    error = failure(coordinator).error
    assert error.code is ErrorCode.INVALID_MESSAGE
    assert "not a valid Ed25519 key" in error.message
    assert coordinator.state is CoordinatorState.FAILED


def test_enroll_replayed_from_another_connection() -> None:
    _, _, transcript = enrolling_pair(challenge=OTHER_CHALLENGE)
    (enroll,) = (m for d, m in transcript if isinstance(m, Enroll))
    coordinator = coordinator_awaiting_credentials()  # a fresh challenge
    coordinator.receive_data(encode_message(enroll))
    assert failure(coordinator).error.code is ErrorCode.BAD_SIGNATURE


def test_enroll_signed_for_another_coordinator_is_refused() -> None:
    # The agent pinned OTHER_FP: whoever relays its enrollment to us cannot use it.
    agent = make_agent(fingerprint=OTHER_FP)
    coordinator = make_coordinator()
    agent.start_enrollment(TOKEN, AGENT_KEY, HOSTNAME)
    pump(agent, coordinator)
    assert_failed_both_sides(agent, coordinator, ErrorCode.BAD_SIGNATURE)


def test_authentication_signed_for_another_coordinator_is_refused() -> None:
    agent, coordinator, _ = authenticating_pair(agent_fingerprint=OTHER_FP)
    assert coordinator.events_received() == [AuthenticationRequested(DEVICE_ID)]
    coordinator.verify_authentication(AGENT_PUBLIC)  # the right key...
    assert_failed_both_sides(agent, coordinator, ErrorCode.BAD_SIGNATURE)  # ...wrong server


def test_authentication_replayed_from_another_connection() -> None:
    agent = make_agent()
    first = make_coordinator(challenge=OTHER_CHALLENGE)
    agent.start_authentication(DEVICE_ID, AGENT_KEY)
    (authenticate,) = (m for _, m in pump(agent, first) if isinstance(m, Authenticate))
    coordinator = coordinator_awaiting_credentials()
    coordinator.receive_data(encode_message(authenticate))
    assert coordinator.events_received() == [AuthenticationRequested(DEVICE_ID)]
    coordinator.verify_authentication(AGENT_PUBLIC)
    assert failure(coordinator).error.code is ErrorCode.BAD_SIGNATURE


def test_authentication_for_another_device_id_is_refused() -> None:
    # A signature made as DEVICE_ID does not authenticate "dev-other" with the same key.
    agent = make_agent()
    first = make_coordinator()
    agent.start_authentication(DEVICE_ID, AGENT_KEY)
    (authenticate,) = (m for _, m in pump(agent, first) if isinstance(m, Authenticate))
    coordinator = coordinator_awaiting_credentials()
    stolen = Authenticate(device_id="dev-other", signature=authenticate.signature)
    coordinator.receive_data(encode_message(stolen))
    drain(coordinator)
    coordinator.verify_authentication(AGENT_PUBLIC)
    assert failure(coordinator).error.code is ErrorCode.BAD_SIGNATURE


# --- refusals: versions -----------------------------------------------------------------


@pytest.mark.parametrize("versions", [[99], [], [0], [2, 3, 255]])
def test_hello_without_a_common_version(versions: list[int]) -> None:
    coordinator = make_coordinator()
    coordinator.receive_data(encode_message(Hello(versions=versions, software="future")))
    event = failure(coordinator)
    assert event.error.code is ErrorCode.UNSUPPORTED_VERSION
    assert event.error.close_code == 1002
    assert sent_error(coordinator).code == ErrorCode.UNSUPPORTED_VERSION.value
    assert coordinator.state is CoordinatorState.FAILED


@pytest.mark.parametrize("version", [2, 255])
def test_agent_refuses_a_version_it_did_not_offer(version: int) -> None:
    agent = make_agent()
    agent.start_authentication(DEVICE_ID, AGENT_KEY)
    drain(agent)
    agent.receive_data(encode_message(Welcome(version, CHALLENGE, SERVER_TIME)))
    assert failure(agent).error.code is ErrorCode.UNSUPPORTED_VERSION
    assert sent_error(agent).code == ErrorCode.UNSUPPORTED_VERSION.value


# --- refusals: order --------------------------------------------------------------------


def ready_coordinator() -> CoordinatorLink:
    return ready_pair()[1]


def ready_agent() -> AgentLink:
    return ready_pair()[0]


def verifying_coordinator() -> CoordinatorLink:
    coordinator = authenticating_pair()[1]
    drain(coordinator)
    return coordinator


def enrolling_coordinator() -> CoordinatorLink:
    coordinator = enrolling_pair()[1]
    drain(coordinator)
    return coordinator


def done_coordinator() -> CoordinatorLink:
    coordinator = enrolling_coordinator()
    coordinator.accept_enrollment("dev-42")
    drain(coordinator)
    return coordinator


L = TypeVar("L", AgentLink, CoordinatorLink)


def failed(make: Callable[[], L]) -> Callable[[], L]:
    def build() -> L:
        link = make()
        link.fail(ProtocolError(ErrorCode.SERVER_ERROR, "test"))
        drain(link)
        return link

    return build


def hello_sent_agent() -> AgentLink:
    agent = make_agent()
    agent.start_authentication(DEVICE_ID, AGENT_KEY)
    drain(agent)
    return agent


def credentials_sent_agent(enrolling: bool) -> Callable[[], AgentLink]:
    def build() -> AgentLink:
        agent = enrolling_pair()[0] if enrolling else authenticating_pair()[0]
        drain(agent)
        return agent

    return build


def done_agent() -> AgentLink:
    agent, coordinator, _ = enrolling_pair()
    coordinator.accept_enrollment("dev-42")
    pump(agent, coordinator)
    drain(agent)
    return agent


COORDINATOR_IN: dict[CoordinatorState, Callable[[], CoordinatorLink]] = {
    CoordinatorState.AWAIT_HELLO: make_coordinator,
    CoordinatorState.AWAIT_CREDENTIALS: coordinator_awaiting_credentials,
    CoordinatorState.ENROLLING: enrolling_coordinator,
    CoordinatorState.VERIFYING: verifying_coordinator,
    CoordinatorState.READY: ready_coordinator,
    CoordinatorState.DONE: done_coordinator,
    CoordinatorState.FAILED: failed(make_coordinator),
}

# The agent waits for an answer to its credentials in one state, whether it enrolls or
# authenticates: both ways of getting there are walked.
AGENT_IN: dict[str, tuple[AgentState, Callable[[], AgentLink]]] = {
    "idle": (AgentState.IDLE, make_agent),
    "hello_sent": (AgentState.HELLO_SENT, hello_sent_agent),
    "enroll_sent": (AgentState.CREDENTIALS_SENT, credentials_sent_agent(enrolling=True)),
    "authenticate_sent": (AgentState.CREDENTIALS_SENT, credentials_sent_agent(enrolling=False)),
    "ready": (AgentState.READY, ready_agent),
    "done": (AgentState.DONE, done_agent),
    "failed": (AgentState.FAILED, failed(make_agent)),
}


def test_builders_reach_every_state() -> None:
    assert set(COORDINATOR_IN) == set(CoordinatorState)
    for coordinator_state, build_coordinator in COORDINATOR_IN.items():
        coordinator = build_coordinator()
        assert coordinator.state is coordinator_state
        assert_quiet(coordinator)
    assert {state for state, _ in AGENT_IN.values()} == set(AgentState)
    for agent_state, build_agent in AGENT_IN.values():
        agent = build_agent()
        assert agent.state is agent_state
        assert_quiet(agent)


def test_transition_tables_name_real_states_messages_and_handlers() -> None:
    registered = set(message_types().values())
    for table, link_type in (
        (COORDINATOR_TRANSITIONS, CoordinatorLink),
        (AGENT_TRANSITIONS, AgentLink),
    ):
        for (state, message_type), handler in table.items():
            assert message_type in registered
            assert message_type is not Error  # errors are handled in every state
            assert state.name != "FAILED"
            assert callable(getattr(link_type, handler))


def assert_unexpected(link: Link, message: Message) -> None:
    before = link.state
    link.receive_data(encode_message(message))
    event = failure(link)
    assert event.remote is False
    assert event.error.code is ErrorCode.UNEXPECTED_MESSAGE
    assert message.TYPE in event.error.message
    assert before.name.lower() in event.error.message
    error = sent_error(link)
    assert error.code == ErrorCode.UNEXPECTED_MESSAGE.value
    assert error.message == event.error.message
    # Input after a failure is ignored: no events, nothing to send, same error.
    first = link.error
    for data in (encode_message(message), encode_message(sample("hello")), b"garbage"):
        link.receive_data(data)
    assert_quiet(link)
    assert link.error is first
    assert link.failed


MESSAGE_TYPES = {name: cls for name, cls in message_types().items() if cls is not Error}

COORDINATOR_REFUSALS = [
    (state, name)
    for state in CoordinatorState
    if state is not CoordinatorState.FAILED
    for name, cls in MESSAGE_TYPES.items()
    if (state, cls) not in COORDINATOR_TRANSITIONS
]
AGENT_REFUSALS = [
    (label, name)
    for label, (state, _) in AGENT_IN.items()
    if state is not AgentState.FAILED
    for name, cls in MESSAGE_TYPES.items()
    if (state, cls) not in AGENT_TRANSITIONS
]


@pytest.mark.parametrize(("state", "name"), COORDINATOR_REFUSALS, ids=str)
def test_coordinator_refuses_what_its_table_does_not_list(
    state: CoordinatorState, name: str
) -> None:
    coordinator = COORDINATOR_IN[state]()
    assert_unexpected(coordinator, sample(name))
    assert coordinator.state is CoordinatorState.FAILED


@pytest.mark.parametrize(("label", "name"), AGENT_REFUSALS, ids=str)
def test_agent_refuses_what_its_table_does_not_list(label: str, name: str) -> None:
    agent = AGENT_IN[label][1]()
    assert_unexpected(agent, sample(name))
    assert agent.state is AgentState.FAILED


@pytest.mark.parametrize(
    ("state", "name"),
    [(state, cls.TYPE) for state, cls in COORDINATOR_TRANSITIONS],
    ids=str,
)
def test_coordinator_handles_what_its_table_lists(state: CoordinatorState, name: str) -> None:
    coordinator = COORDINATOR_IN[state]()
    coordinator.receive_data(encode_message(sample(name)))
    # Handled: something happened, and it was not a refusal of the message's type. (The
    # sample enroll carries a made-up signature, so it is refused, but for that reason.)
    events = coordinator.events_received()
    assert events or coordinator.data_to_send() or coordinator.state is not state
    assert coordinator.error is None or coordinator.error.code is not ErrorCode.UNEXPECTED_MESSAGE


# The answers an agent expects in each of its states, and where they take it.
AGENT_ACCEPTS: dict[tuple[str, str], tuple[Message, AgentState]] = {
    ("hello_sent", "welcome"): (sample("welcome"), AgentState.CREDENTIALS_SENT),
    ("enroll_sent", "enrolled"): (Enrolled("dev-42"), AgentState.DONE),
    ("authenticate_sent", "authenticated"): (
        Authenticated(DEVICE_ID, HEARTBEAT_INTERVAL),
        AgentState.READY,
    ),
    ("ready", "heartbeat_ack"): (sample("heartbeat_ack"), AgentState.READY),
    ("ready", "ack"): (sample("ack"), AgentState.READY),
    ("ready", "reject"): (sample("reject"), AgentState.READY),
    ("ready", "session_offer"): (sample("session_offer"), AgentState.READY),
}


def test_agent_accepts_cover_its_table() -> None:
    covered = {(AGENT_IN[label][0], message_types()[name]) for label, name in AGENT_ACCEPTS}
    assert covered == set(AGENT_TRANSITIONS)
    assert all(message.TYPE == name for (_, name), (message, _) in AGENT_ACCEPTS.items())


@pytest.mark.parametrize(("label", "name"), list(AGENT_ACCEPTS), ids=str)
def test_agent_handles_what_its_table_lists(label: str, name: str) -> None:
    message, after = AGENT_ACCEPTS[label, name]
    agent = AGENT_IN[label][1]()
    agent.receive_data(encode_message(message))
    assert agent.error is None
    assert agent.state is after
    assert agent.events_received() or agent.data_to_send()


def test_enrolling_agent_refuses_authenticated() -> None:
    """An agent that sent ``enroll`` has no device id to be authenticated as."""
    agent = credentials_sent_agent(enrolling=True)()
    agent.receive_data(encode_message(Authenticated("dev-from-nowhere", 30.0)))
    assert agent.failed
    assert not any(isinstance(e, LinkReady) for e in agent.events_received())
    assert agent.device_id is None


def test_authenticating_agent_refuses_enrolled() -> None:
    """An agent that sent ``authenticate`` did not ask to be enrolled again."""
    agent = credentials_sent_agent(enrolling=False)()
    agent.receive_data(encode_message(Enrolled("dev-from-nowhere")))
    assert agent.failed
    assert not any(isinstance(e, EnrollmentAccepted) for e in agent.events_received())


def test_agent_refuses_to_be_authenticated_as_another_device() -> None:
    agent = credentials_sent_agent(enrolling=False)()
    agent.receive_data(encode_message(Authenticated("dev-someone-else", 30.0)))
    assert agent.failed
    assert not any(isinstance(e, LinkReady) for e in agent.events_received())
    assert agent.device_id != "dev-someone-else"


def test_rejected_delivery_is_reported_and_the_link_stays_up() -> None:
    agent, coordinator = ready_pair()
    agent.deliver("k-9", "shell.exec", {})
    pump(agent, coordinator)
    coordinator.reject("k-9", ProtocolError(ErrorCode.INVALID_MESSAGE, "unknown kind"))
    pump(agent, coordinator)
    rejected = [e for e in agent.events_received() if isinstance(e, DeliveryRejected)]
    assert rejected == [DeliveryRejected("k-9", "invalid_message", "unknown kind")]
    assert agent.state is AgentState.READY and coordinator.state is CoordinatorState.READY


def test_deliver_before_authentication() -> None:
    coordinator = coordinator_awaiting_credentials()
    assert_unexpected(coordinator, sample("deliver"))


def test_deliver_while_the_key_is_being_looked_up() -> None:
    coordinator = verifying_coordinator()
    assert_unexpected(coordinator, sample("deliver"))
    # The adapter's late answer is now a programming error, not a way back in.
    with pytest.raises(InvalidState):
        coordinator.verify_authentication(AGENT_PUBLIC)


def test_heartbeat_before_hello() -> None:
    assert_unexpected(make_coordinator(), sample("heartbeat"))


def test_second_hello() -> None:
    assert_unexpected(coordinator_awaiting_credentials(), sample("hello"))


def test_agent_refuses_to_talk_after_a_failure_in_a_live_pair() -> None:
    agent, coordinator = ready_pair()
    agent.receive_data(encode_message(sample("welcome")))  # out of order
    assert failure(agent).error.code is ErrorCode.UNEXPECTED_MESSAGE
    pump(agent, coordinator)
    remote = failure(coordinator)
    assert remote.remote is True
    assert remote.error.code is ErrorCode.UNEXPECTED_MESSAGE
    # Neither side answers anything any more.
    agent.receive_data(encode_message(sample("heartbeat_ack")))
    coordinator.receive_data(encode_message(sample("heartbeat")))
    assert pump(agent, coordinator) == []
    assert_quiet(agent)
    assert_quiet(coordinator)


# --- bad bytes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.TRUNCATED_FRAME),
        (b"GET / HTTP/1.1\r\n\r\n", ErrorCode.MALFORMED_FRAME),
        (encode_frame(Frame(FrameKind.DATA, b"{}", channel=1)), ErrorCode.UNEXPECTED_MESSAGE),
        (encode_frame(Frame(FrameKind.CONTROL, b"{")), ErrorCode.INVALID_MESSAGE),
        (encode_frame(Frame(FrameKind.CONTROL, b'{"type":"x","v":1}')), ErrorCode.UNKNOWN_MESSAGE),
        (encode_message(sample("hello"))[:-1], ErrorCode.TRUNCATED_FRAME),
    ],
)
@pytest.mark.parametrize("side", ["agent", "coordinator"])
def test_bad_bytes_fail_the_link_with_the_decoder_error(
    data: bytes, code: ErrorCode, side: str
) -> None:
    link: Link = make_agent() if side == "agent" else make_coordinator()
    link.receive_data(data)
    assert failure(link).error.code is code
    assert sent_error(link).code == code.value


@FAST
@given(st.binary(max_size=200), st.sampled_from(sorted(COORDINATOR_IN, key=str)))
def test_coordinator_survives_arbitrary_bytes(data: bytes, state: CoordinatorState) -> None:
    coordinator = COORDINATOR_IN[state]()
    coordinator.receive_data(data)
    events = coordinator.events_received()
    if state is CoordinatorState.FAILED:
        assert events == []
    else:
        assert coordinator.failed
        assert [type(e) for e in events] == [ConnectionFailed]
        check_error(coordinator.error)  # type: ignore[arg-type]


@FAST
@given(st.binary(max_size=200), st.sampled_from(sorted(AGENT_IN)))
def test_agent_survives_arbitrary_bytes(data: bytes, label: str) -> None:
    state, build = AGENT_IN[label]
    agent = build()
    agent.receive_data(data)
    events = agent.events_received()
    if state is AgentState.FAILED:
        assert events == []
    else:
        assert agent.failed
        assert [type(e) for e in events] == [ConnectionFailed]
        check_error(agent.error)  # type: ignore[arg-type]


# --- errors from the peer ---------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("side", ["agent", "coordinator"])
def test_error_from_the_peer(code: ErrorCode, side: str) -> None:
    link: Link = ready_agent() if side == "agent" else ready_coordinator()
    link.receive_data(encode_message(Error(code=code.value, message="because")))
    event = failure(link)
    assert event.remote is True
    assert event.error == ProtocolError(code, "because")
    assert link.data_to_send() == []  # no error is sent back for an error


@pytest.mark.parametrize("code", ["", "nope", "SERVER_ERROR", "Bad_Token", "x" * 64])
def test_error_with_an_unknown_code_is_a_server_error(code: str) -> None:
    agent = hello_sent_agent()
    agent.receive_data(encode_message(Error(code=code, message="m")))
    event = failure(agent)
    assert event.remote is True
    assert event.error.code is ErrorCode.SERVER_ERROR
    assert event.error.message == "m"


@pytest.mark.parametrize("state", [s for s in CoordinatorState if s is not CoordinatorState.FAILED])
def test_coordinator_takes_an_error_in_every_state(state: CoordinatorState) -> None:
    coordinator = COORDINATOR_IN[state]()
    coordinator.receive_data(encode_message(Error("going_away", "bye")))
    event = failure(coordinator)
    assert (event.remote, event.error.code) == (True, ErrorCode.GOING_AWAY)
    assert coordinator.data_to_send() == []


@pytest.mark.parametrize(
    "label", [k for k, (s, _) in AGENT_IN.items() if s is not AgentState.FAILED]
)
def test_agent_takes_an_error_in_every_state(label: str) -> None:
    agent = AGENT_IN[label][1]()
    agent.receive_data(encode_message(Error("token_used", "ask for a new token")))
    event = failure(agent)
    assert (event.remote, event.error.code) == (True, ErrorCode.TOKEN_USED)
    assert event.error.close_code == 4401
    assert agent.data_to_send() == []


def test_error_after_a_failure_is_ignored() -> None:
    agent = failed(make_agent)()
    first = agent.error
    agent.receive_data(encode_message(Error("bad_token", "late")))
    assert_quiet(agent)
    assert agent.error is first


def test_error_text_from_the_peer_can_be_used_as_a_close_reason() -> None:
    """The peer's words end up in our close frame: they must always fit one.

    A JSON string may hold a lone surrogate escape; ``close_reason`` must still give
    text that encodes (or the decoder must refuse such a string)."""
    agent = hello_sent_agent()
    payload = b'{"type":"error","v":1,"code":"bad_token","message":"\\ud800 oops"}'
    agent.receive_data(encode_frame(Frame(FrameKind.CONTROL, payload)))
    event = failure(agent)  # remote, or local if the string is refused
    assert len(event.error.close_reason.encode()) <= 123


HOSTILE_PAYLOADS = {
    "version is a lone surrogate": b'{"type":"hello","v":"\\ud800","versions":[1],"software":"x"}',
    "version is a long string": b'{"type":"hello","v":"' + "\u00e9".encode() * 300 + b'"}',
    "type is a lone surrogate": b'{"type":"\\udfff","v":1}',
    "unknown field is a lone surrogate": (
        b'{"type":"hello","v":1,"versions":[1],"software":"x","\\ud800":1}'
    ),
}


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS.values(), ids=HOSTILE_PAYLOADS.keys())
@pytest.mark.parametrize("side", ["agent", "coordinator"])
def test_peer_text_quoted_in_our_error_never_breaks_the_link(payload: bytes, side: str) -> None:
    """Refusing a message must not raise, whatever the peer put in it: the refusal is an
    event, an error message the peer can decode, and a close reason that encodes."""
    link: Link = make_agent() if side == "agent" else make_coordinator()
    link.receive_data(encode_frame(Frame(FrameKind.CONTROL, payload)))
    event = failure(link)
    assert event.remote is False
    error = sent_error(link)
    assert error.code == event.error.code.value


def test_delivery_key_from_the_peer_can_be_acknowledged() -> None:
    """Whatever key the coordinator reports, acknowledging it must not raise."""
    agent, coordinator = ready_pair()
    payload = b'{"type":"deliver","v":1,"key":"k\\udc80","kind":"note","body":{}}'
    coordinator.receive_data(encode_frame(Frame(FrameKind.CONTROL, payload)))
    events = coordinator.events_received()
    assert coordinator.failed or [type(e) for e in events] == [DeliveryReceived]
    for event in events:
        if isinstance(event, DeliveryReceived):
            coordinator.acknowledge(event.key)
            pump(agent, coordinator)
            assert agent.events_received() == [DeliveryAcked(event.key)]


# --- fail() -----------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["agent", "coordinator"])
def test_fail_is_idempotent(side: str) -> None:
    link: Link = ready_agent() if side == "agent" else ready_coordinator()
    first = ProtocolError(ErrorCode.HEARTBEAT_TIMEOUT, "no heartbeat for 75 s")
    link.fail(first)
    link.fail(ProtocolError(ErrorCode.SERVER_ERROR, "second"))
    link.fail(first)
    event = failure(link)
    assert event == ConnectionFailed(first)
    assert link.error is first
    error = sent_error(link)
    assert (error.code, error.message) == ("heartbeat_timeout", "no heartbeat for 75 s")


def test_fail_after_a_remote_failure_sends_nothing() -> None:
    agent = ready_agent()
    agent.receive_data(encode_message(Error("going_away", "restart")))
    agent.fail(ProtocolError(ErrorCode.HEARTBEAT_TIMEOUT, "late"))
    assert failure(agent).remote is True
    assert agent.data_to_send() == []


def test_long_failure_message_still_reaches_the_peer() -> None:
    agent, coordinator = ready_pair()
    coordinator.fail(ProtocolError(ErrorCode.SERVER_ERROR, "é" * 2000))
    failure(coordinator)
    pump(agent, coordinator)
    remote = failure(agent)
    assert remote.remote is True
    assert remote.error.code is ErrorCode.SERVER_ERROR
    assert remote.error.message == "é" * 500


# --- methods called in the wrong state --------------------------------------------------

COORDINATOR_METHODS: dict[str, tuple[Callable[[CoordinatorLink], None], set[CoordinatorState]]] = {
    "accept_enrollment": (lambda c: c.accept_enrollment("dev-1"), {CoordinatorState.ENROLLING}),
    "verify_authentication": (
        lambda c: c.verify_authentication(AGENT_PUBLIC),
        {CoordinatorState.VERIFYING},
    ),
    "verify_authentication(None)": (
        lambda c: c.verify_authentication(None),
        {CoordinatorState.VERIFYING},
    ),
    "acknowledge": (lambda c: c.acknowledge("key-1"), {CoordinatorState.READY}),
}

AGENT_METHODS: dict[str, tuple[Callable[[AgentLink], None], set[AgentState]]] = {
    "send_heartbeat": (lambda a: a.send_heartbeat(1, 1.0), {AgentState.READY}),
    "deliver": (lambda a: a.deliver("key-1", "note", {}), {AgentState.READY}),
    "start_enrollment": (
        lambda a: a.start_enrollment(TOKEN, AGENT_KEY, HOSTNAME),
        {AgentState.IDLE},
    ),
    "start_authentication": (
        lambda a: a.start_authentication(DEVICE_ID, AGENT_KEY),
        {AgentState.IDLE},
    ),
}


@pytest.mark.parametrize(
    ("method", "state"),
    [
        (method, state)
        for method, (_, allowed) in COORDINATOR_METHODS.items()
        for state in CoordinatorState
        if state not in allowed
    ],
    ids=str,
)
def test_coordinator_method_in_the_wrong_state(method: str, state: CoordinatorState) -> None:
    call, _ = COORDINATOR_METHODS[method]
    coordinator = COORDINATOR_IN[state]()
    error_before, device_before = coordinator.error, coordinator.device_id
    with pytest.raises(InvalidState, match=state.name.lower()):
        call(coordinator)
    assert coordinator.state is state
    assert coordinator.error is error_before
    assert coordinator.device_id == device_before
    assert_quiet(coordinator)


@pytest.mark.parametrize(
    ("method", "label"),
    [
        (method, label)
        for method, (_, allowed) in AGENT_METHODS.items()
        for label, (state, _) in AGENT_IN.items()
        if state not in allowed
    ],
    ids=str,
)
def test_agent_method_in_the_wrong_state(method: str, label: str) -> None:
    call, _ = AGENT_METHODS[method]
    state, build = AGENT_IN[label]
    agent = build()
    error_before = agent.error
    with pytest.raises(InvalidState, match=state.name.lower()):
        call(agent)
    assert agent.state is state
    assert agent.error is error_before
    assert_quiet(agent)


@pytest.mark.parametrize("method", list(COORDINATOR_METHODS))
def test_coordinator_method_in_the_right_state(method: str) -> None:
    call, allowed = COORDINATOR_METHODS[method]
    for state in allowed:
        coordinator = COORDINATOR_IN[state]()
        call(coordinator)
        assert coordinator.data_to_send()  # it told the agent something


@pytest.mark.parametrize("method", list(AGENT_METHODS))
def test_agent_method_in_the_right_state(method: str) -> None:
    call, allowed = AGENT_METHODS[method]
    for state, build in AGENT_IN.values():
        if state in allowed:
            agent = build()
            call(agent)
            assert agent.data_to_send()


def test_events_are_plain_values() -> None:
    # Adapters compare and log events: they are frozen dataclasses of wire values.
    assert EnrollmentRequested("t", b"k", "h") == EnrollmentRequested("t", b"k", "h")
    assert issubclass(ConnectionFailed, Event)
    with pytest.raises(AttributeError):
        LinkReady("d", 1.0).device_id = "x"  # type: ignore[misc]


def test_agent_refuses_a_session_offer_with_an_unknown_scope() -> None:
    agent = AGENT_IN["ready"][1]()
    offer = dataclasses.replace(sample("session_offer"), scope="admin")
    agent.receive_data(encode_message(offer))
    assert agent.state is AgentState.FAILED
    assert agent.error is not None and "scope" in agent.error.message
    assert not [e for e in agent.events_received() if isinstance(e, SessionOffered)]


def test_a_session_offer_reaches_the_agent_as_an_event_and_grants_nothing() -> None:
    agent = AGENT_IN["ready"][1]()
    offer = sample("session_offer")
    agent.receive_data(encode_message(offer))
    assert agent.events_received() == [SessionOffered(offer)]
    assert agent.data_to_send() == []  # the answer is the user's, on the relay
