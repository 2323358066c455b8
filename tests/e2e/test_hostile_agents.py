"""Hostile and broken agents on ``/ws/agent``: each gets a close code and a reason, and the
coordinator keeps serving everyone else with its stored data untouched (invariant 5)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.errors import ErrorCode
from protocol.frames import HEADER, MAGIC, MAX_CONTROL_PAYLOAD, MAX_FRAME_SIZE, Frame, FrameKind
from protocol.frames import encode_frame as frame
from protocol.messages import (
    Deliver,
    Enroll,
    Heartbeat,
    HeartbeatAck,
    Hello,
    Reject,
    decode_message,
    encode_message,
)
from tests.conftest import Agent, ApiClient, wait_for
from tests.e2e.conftest import Desk, identity_key, is_online, stored, wait_online
from tests.e2e.rogue import Closed, RogueAgent

# --- the desk under attack --------------------------------------------------------------


@pytest.fixture(scope="module")
def victim(desk: Desk) -> Agent:
    """A real agent, online for the whole module: attacks must not knock it off."""
    agent = desk.agent("victim")
    agent.enroll()
    agent.start()
    wait_online(desk.client, agent.device_id)
    wait_for(
        lambda: desk.coordinator.sql(
            "select 1 from agent_messages where device_id = ? and kind = 'device.facts'",
            agent.device_id,
        ),
        timeout=10,
        what="the victim's facts to be delivered",
    )
    return agent


@pytest.fixture(scope="module")
def insider(desk: Desk) -> Agent:
    """An enrolled device whose key the tests hold: an authenticated agent gone rogue."""
    agent = desk.agent("insider")
    agent.enroll()
    return agent


def assert_unharmed(desk: Desk, victim: Agent, before: dict[str, Any]) -> None:
    """The process lives, answers, keeps the victim online, and lost or gained nothing."""
    assert desk.coordinator.alive(), "the coordinator process died"
    status, body = ApiClient(desk.coordinator, None).request("GET", "/api/v1/health")
    assert (status, body["status"]) == (200, "ok")
    assert is_online(desk.client, victim.device_id), "the real agent was knocked offline"
    assert victim.process is not None and victim.process.poll() is None
    assert stored(desk.coordinator) == before


@pytest.fixture
def unharmed(desk: Desk, victim: Agent, insider: Agent) -> Iterator[None]:
    before = stored(desk.coordinator)
    yield
    assert_unharmed(desk, victim, before)


def assert_closed(closed: Closed, close_code: int, error: ErrorCode) -> None:
    """Closed with ``close_code``, the reason naming ``error``, told in an error message too."""
    assert closed.code == close_code, closed
    assert closed.reason.startswith(f"{error.value}: "), closed
    assert len(closed.reason) > len(error.value) + 5, "the reason says nothing more"
    assert [e.code for e in closed.errors] == [error.value], closed


async def authenticated_insider(rogue: RogueAgent, insider: Agent) -> None:
    link = await rogue.authenticate(insider.device_id, identity_key(insider))
    assert link.device_id == insider.device_id and link.error is None


# --- before authentication --------------------------------------------------------------


def control(payload: Any) -> bytes:
    return frame(Frame(FrameKind.CONTROL, json.dumps(payload).encode()))


BAD_OPENINGS: dict[str, tuple[bytes | str, ErrorCode]] = {
    "truncated frame": (
        HEADER.pack(MAGIC, 1, FrameKind.CONTROL, 0, 100) + b'{"type":',
        ErrorCode.TRUNCATED_FRAME,
    ),
    "shorter than a header": (b"BD\x01", ErrorCode.TRUNCATED_FRAME),
    "padded frame": (control({"type": "hello"}) + b"\x00", ErrorCode.MALFORMED_FRAME),
    "frame version 9": (
        frame(Frame(FrameKind.CONTROL, b'{"type":"hello"}', version=9)),
        ErrorCode.UNSUPPORTED_VERSION,
    ),
    "hello offering only version 99": (
        encode_message(Hello(versions=[99], software="rogue")),
        ErrorCode.UNSUPPORTED_VERSION,
    ),
    "hello of schema version 2": (
        control({"type": "hello", "v": 2, "versions": [1], "software": "x"}),
        ErrorCode.UNSUPPORTED_VERSION,
    ),
    "garbage bytes": (bytes(range(256)) * 4, ErrorCode.MALFORMED_FRAME),
    "text message": ("hello, coordinator", ErrorCode.MALFORMED_FRAME),
    "control payload not JSON": (
        frame(Frame(FrameKind.CONTROL, b"\xff\xfe not json")),
        ErrorCode.INVALID_MESSAGE,
    ),
    "unknown message type": (control({"type": "shell", "v": 1}), ErrorCode.UNKNOWN_MESSAGE),
    "hello with an extra field": (
        control({"type": "hello", "v": 1, "versions": [1], "software": "x", "admin": True}),
        ErrorCode.INVALID_MESSAGE,
    ),
    "data frame before hello": (
        frame(Frame(FrameKind.DATA, b"\x00" * 64, channel=7)),
        ErrorCode.UNEXPECTED_MESSAGE,
    ),
    "deliver before authentication": (
        encode_message(Deliver(key="k" * 32, kind="event", body={"n": 1})),
        ErrorCode.UNEXPECTED_MESSAGE,
    ),
    "heartbeat before authentication": (
        encode_message(Heartbeat(seq=1, sent_at=1.0)),
        ErrorCode.UNEXPECTED_MESSAGE,
    ),
    "control frame over its size limit": (
        HEADER.pack(MAGIC, 1, FrameKind.CONTROL, 0, MAX_CONTROL_PAYLOAD + 1)
        + b" " * (MAX_CONTROL_PAYLOAD + 1),
        ErrorCode.FRAME_TOO_LARGE,
    ),
}


@pytest.mark.usefixtures("unharmed")
@pytest.mark.parametrize("name", list(BAD_OPENINGS))
async def test_bad_opening_closes_that_connection_with_a_reason(desk: Desk, name: str) -> None:
    data, error = BAD_OPENINGS[name]
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.send(data)
        closed = await rogue.closed()
    close_code = 1009 if error is ErrorCode.FRAME_TOO_LARGE else 1002
    assert_closed(closed, close_code, error)


@pytest.mark.usefixtures("unharmed")
async def test_message_over_the_websocket_limit_is_refused_with_1009(desk: Desk) -> None:
    data = HEADER.pack(MAGIC, 1, FrameKind.DATA, 1, MAX_FRAME_SIZE) + bytes(MAX_FRAME_SIZE)
    assert len(data) > MAX_FRAME_SIZE
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.send(data)
        closed = await rogue.closed()
    assert closed.code == 1009, closed


@pytest.mark.usefixtures("unharmed")
async def test_hello_then_garbage_mid_handshake(desk: Desk) -> None:
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.send(encode_message(Hello(versions=[1, 99], software="rogue")))
        await rogue.recv()  # welcome: version 1 was chosen
        await rogue.send(b"BD\x01\x01\x00\x00\x00\x00\xff\xff\xff\xff")
        closed = await rogue.closed()
    assert_closed(closed, 1009, ErrorCode.FRAME_TOO_LARGE)


# --- credentials ------------------------------------------------------------------------


@pytest.mark.usefixtures("unharmed")
async def test_agent_signing_with_a_key_not_its_own(desk: Desk, victim: Agent) -> None:
    """Claim the victim's device id, sign with another key: refused, the victim stays."""
    async with RogueAgent(desk.coordinator) as rogue:
        link = await rogue.authenticate(victim.device_id, Ed25519PrivateKey.generate())
        closed = await rogue.closed()
    assert link.error is not None and link.error.code is ErrorCode.BAD_SIGNATURE
    assert closed.code == 4401, closed
    assert "bad_signature" in closed.reason
    assert is_online(desk.client, victim.device_id)


@pytest.mark.usefixtures("unharmed")
async def test_enrolled_agent_cannot_speak_for_another(
    desk: Desk, victim: Agent, insider: Agent
) -> None:
    """An enrolled device signing as the victim with its own (registered) key."""
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.authenticate(victim.device_id, identity_key(insider))
        closed = await rogue.closed()
    assert_closed(closed, 4401, ErrorCode.BAD_SIGNATURE)


@pytest.mark.usefixtures("unharmed")
async def test_unknown_device(desk: Desk) -> None:
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.authenticate(str(uuid.uuid4()), Ed25519PrivateKey.generate())
        closed = await rogue.closed()
    assert_closed(closed, 4401, ErrorCode.UNKNOWN_DEVICE)


@pytest.mark.usefixtures("unharmed")
async def test_signature_for_another_coordinator_is_refused(desk: Desk, insider: Agent) -> None:
    """A relay: the right key over this challenge, but bound to another server's certificate."""
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.authenticate(insider.device_id, identity_key(insider), fingerprint=b"\x42" * 32)
        closed = await rogue.closed()
    assert_closed(closed, 4401, ErrorCode.BAD_SIGNATURE)
    assert not is_online(desk.client, insider.device_id)


@pytest.mark.usefixtures("unharmed")
async def test_replayed_authentication_is_refused(desk: Desk, insider: Agent) -> None:
    """An authenticate message captured on one connection, replayed on another: the
    signature covers the first connection's challenge only."""
    async with RogueAgent(desk.coordinator) as honest:
        await authenticated_insider(honest, insider)
        hello, authenticate = honest.sent[:2]
    async with RogueAgent(desk.coordinator) as replay:
        await replay.send(hello)
        await replay.recv()  # a welcome with a fresh challenge
        await replay.send(authenticate)
        closed = await replay.closed()
    assert_closed(closed, 4401, ErrorCode.BAD_SIGNATURE)


async def test_enrollment_with_a_forged_proof_of_key_is_refused(desk: Desk, victim: Agent) -> None:
    """Enroll with a valid token but a signature that is not the public key's own."""
    token = desk.coordinator.token()
    before = stored(desk.coordinator)
    async with RogueAgent(desk.coordinator) as rogue:
        await rogue.send(encode_message(Hello(versions=[1], software="rogue")))
        await rogue.recv()
        public_key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        await rogue.send(encode_message(Enroll(token, public_key, "rogue-host", b"\x00" * 64)))
        closed = await rogue.closed()
    assert_closed(closed, 4401, ErrorCode.BAD_SIGNATURE)
    # Nothing enrolled, and the token was not spent: an honest agent can still use it.
    assert_unharmed(desk, victim, before)


# --- authenticated, then hostile --------------------------------------------------------


async def expect_reject(rogue: RogueAgent, key: str) -> Reject:
    """The coordinator answers a delivery it will never accept with a reject for that
    key, and keeps the link up: a heartbeat is still answered afterwards."""
    message = decode_message(await rogue.recv())
    assert isinstance(message, Reject), message
    assert message.key == key and message.code == ErrorCode.INVALID_MESSAGE.value
    await rogue.send(encode_message(Heartbeat(seq=7, sent_at=time.time())))
    ack = decode_message(await rogue.recv())
    assert isinstance(ack, HeartbeatAck) and ack.seq == 7
    return message


@pytest.mark.usefixtures("unharmed")
async def test_deliver_of_an_unknown_kind_is_refused_and_not_stored(
    desk: Desk, insider: Agent
) -> None:
    key = uuid.uuid4().hex
    async with RogueAgent(desk.coordinator) as rogue:
        await authenticated_insider(rogue, insider)
        await rogue.send(encode_message(Deliver(key=key, kind="shell.exec", body={"cmd": "id"})))
        reject = await expect_reject(rogue, key)
    assert "shell.exec" in reject.message
    assert desk.coordinator.sql("select * from agent_messages where idempotency_key = ?", key) == []
    trail = desk.coordinator.sql(
        "select target, details from audit_log where action = 'delivery.refused'"
    )
    assert any(target == insider.device_id and "shell.exec" in str(d) for target, d in trail)


@pytest.mark.usefixtures("unharmed")
async def test_facts_with_too_many_fields_are_refused(desk: Desk, insider: Agent) -> None:
    body = {f"field{i}": i for i in range(1000)}
    key = uuid.uuid4().hex
    async with RogueAgent(desk.coordinator) as rogue:
        await authenticated_insider(rogue, insider)
        await rogue.send(encode_message(Deliver(key=key, kind="device.facts", body=body)))
        await expect_reject(rogue, key)
    [(facts,)] = desk.coordinator.sql("select facts from devices where id = ?", insider.device_id)
    assert facts is None  # the insider never delivered facts


@pytest.mark.usefixtures("unharmed")
async def test_ticket_request_without_its_fields_opens_no_ticket(
    desk: Desk, insider: Agent
) -> None:
    key = uuid.uuid4().hex
    before = desk.coordinator.sql("select count(*) from tickets")
    async with RogueAgent(desk.coordinator) as rogue:
        await authenticated_insider(rogue, insider)
        body = {"message": "<script>alert(1)</script>", "requester": "x", "request_id": "nope"}
        await rogue.send(encode_message(Deliver(key=key, kind="ticket.request", body=body)))
        reject = await expect_reject(rogue, key)
    assert "request_id" in reject.message
    assert desk.coordinator.sql("select count(*) from tickets") == before


@pytest.mark.usefixtures("unharmed")
async def test_enroll_after_authentication_is_unexpected(desk: Desk, insider: Agent) -> None:
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key().public_bytes_raw()
    async with RogueAgent(desk.coordinator) as rogue:
        await authenticated_insider(rogue, insider)
        await rogue.send(encode_message(Enroll("bdt_x", public_key, "again", b"\x00" * 64)))
        closed = await rogue.closed()
    assert_closed(closed, 1002, ErrorCode.UNEXPECTED_MESSAGE)


@pytest.mark.usefixtures("unharmed")
async def test_silent_authenticated_agent_is_dropped_after_missed_heartbeats(
    desk: Desk, insider: Agent
) -> None:
    """Heartbeat interval 1 s, three missed: the coordinator closes, the device goes offline."""
    async with RogueAgent(desk.coordinator) as rogue:
        await authenticated_insider(rogue, insider)
        assert is_online(desk.client, insider.device_id)
        closed = await rogue.closed(timeout=10)
    assert_closed(closed, 1008, ErrorCode.HEARTBEAT_TIMEOUT)
    assert 2.5 < closed.after < 8, closed
    assert not is_online(desk.client, insider.device_id)


# --- a slow client does not hold anyone up ----------------------------------------------


async def test_slow_clients_are_closed_after_the_handshake_timeout(
    desk: Desk, victim: Agent
) -> None:
    """Clients connect and never say hello, a new one every half second, while a new
    agent enrolls and comes online: it is served while slow clients hold connections."""
    coordinator = desk.coordinator
    before = stored(coordinator)
    token = coordinator.token()
    newcomer = desk.agent("newcomer")

    def enroll_and_start() -> float:
        newcomer.enroll(token)
        newcomer.start()
        wait_online(desk.client, newcomer.device_id)
        return time.monotonic()

    async def slow_client() -> Closed:
        async with RogueAgent(coordinator) as slow:
            return await slow.closed(timeout=10)

    online = asyncio.create_task(asyncio.to_thread(enroll_and_start))
    slow_clients = [asyncio.create_task(slow_client())]
    while not online.done():
        await asyncio.wait([online], timeout=0.5)
        slow_clients.append(asyncio.create_task(slow_client()))
    online_at = await online
    closed_all = await asyncio.gather(*slow_clients)
    for closed in closed_all:
        assert closed.code == 1008, closed
        assert closed.reason.startswith("handshake_timeout: "), closed
        assert 1.5 < closed.after < 6, closed  # the coordinator runs with --handshake-timeout 2
        assert [e.code for e in closed.errors] == ["handshake_timeout"]
    # The newcomer was served while a slow client held its connection.
    assert any(c.opened_at < online_at < c.opened_at + c.after for c in closed_all)

    assert coordinator.alive()
    assert is_online(desk.client, victim.device_id)
    after = stored(coordinator)
    assert set(before["devices"]) < set(after["devices"])
    new_devices = {row[0] for row in after["devices"]} - {row[0] for row in before["devices"]}
    assert new_devices == {newcomer.device_id}
    new_tokens = set(after["tokens"]) - set(before["tokens"])
    assert [row[4] for row in new_tokens] == [newcomer.device_id]
