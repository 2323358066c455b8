"""End-to-end encryption of remote sessions: handshake, verification code, sealed messages.

The viewer here is :class:`protocol.e2e.ViewerHandshake`; the browser's e2e.js is checked
against the same agent in test_protocol_e2e_browser.py.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import FAST, check_error

from protocol import e2e
from protocol.errors import ErrorCode, InvalidState, ProtocolError
from protocol.identity import public_key_bytes
from protocol.remote import MAX_PLAINTEXT

SESSION = "3f0c9a1e-5b2d-4c8e-9a77-0d1e2f3a4b5c"
DEVICE = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
DEVICE_KEY = public_key_bytes(DEVICE)
OTHER = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
OTHER_KEY = public_key_bytes(OTHER)


def handshake(session: str = SESSION) -> tuple[e2e.Channel, e2e.Channel]:
    """(viewer channel, agent channel) after a clean handshake."""
    viewer = e2e.ViewerHandshake(session, DEVICE_KEY)
    answer = e2e.agent_handshake(session, DEVICE, viewer.hello())
    assert not isinstance(answer, ProtocolError), answer
    agent_hello, agent = answer
    channel = viewer.finish(agent_hello)
    assert isinstance(channel, e2e.Channel), channel
    return channel, agent


def refused(result: object, *words: str) -> ProtocolError:
    assert isinstance(result, ProtocolError), result
    check_error(result)
    assert result.code is ErrorCode.SESSION_CRYPTO
    assert result.close_code == 1008
    for word in words:
        assert word in result.message, result.message
    return result


def hkdf(shared: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(shared)


# --- transcript -------------------------------------------------------------------------


def test_transcript_hash_is_the_documented_sha256() -> None:
    v, a = b"\x01" * 32, b"\x02" * 32
    expected = hashlib.sha256(
        b"backdesk-e2e-v1\x00" + SESSION.encode() + b"\x00" + DEVICE_KEY + v + a
    ).digest()
    assert e2e.transcript_hash(SESSION, DEVICE_KEY, v, a) == expected


@pytest.mark.parametrize(
    "args",
    [
        ("", DEVICE_KEY, b"\x01" * 32, b"\x02" * 32),
        ("séance", DEVICE_KEY, b"\x01" * 32, b"\x02" * 32),
        (SESSION, DEVICE_KEY[:31], b"\x01" * 32, b"\x02" * 32),
        (SESSION, DEVICE_KEY, b"\x01" * 33, b"\x02" * 32),
        (SESSION, DEVICE_KEY, b"\x01" * 32, b""),
    ],
)
def test_transcript_hash_refuses_bad_inputs(args: tuple[str, bytes, bytes, bytes]) -> None:
    with pytest.raises(ValueError):
        e2e.transcript_hash(*args)


def test_message_bytes() -> None:
    assert (e2e.VIEWER_HELLO, e2e.AGENT_HELLO, e2e.SEALED) == (0x01, 0x02, 0x03)


# --- handshake --------------------------------------------------------------------------


def test_both_ends_agree_on_keys_and_code() -> None:
    viewer, agent = handshake()
    assert viewer.code == agent.code
    assert len(viewer.code) == 6 and viewer.code.isdigit()
    assert (viewer.role, agent.role) == ("viewer", "agent")
    assert viewer.open(agent.seal(b"hello viewer")) == b"hello viewer"
    assert agent.open(viewer.seal(b"hello agent")) == b"hello agent"


def test_hello_layout_and_signature() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    hello = viewer.hello()
    assert len(hello) == 33 and hello[0] == 0x01
    assert viewer.hello() == hello  # the same ephemeral key until finished
    answer = e2e.agent_handshake(SESSION, DEVICE, hello)
    assert not isinstance(answer, ProtocolError)
    agent_hello, _ = answer
    assert len(agent_hello) == 97 and agent_hello[0] == 0x02
    transcript = e2e.transcript_hash(SESSION, DEVICE_KEY, hello[1:], agent_hello[1:33])
    DEVICE.public_key().verify(agent_hello[33:], transcript)  # raises if not


def test_keys_and_code_follow_the_document() -> None:
    """Recompute everything from the ephemeral private keys, as the spec writes it."""
    viewer_private = X25519PrivateKey.from_private_bytes(b"\x05" * 32)
    agent_private = X25519PrivateKey.from_private_bytes(b"\x06" * 32)
    v = viewer_private.public_key().public_bytes_raw()
    a = agent_private.public_key().public_bytes_raw()
    shared = viewer_private.exchange(agent_private.public_key())
    transcript = e2e.transcript_hash(SESSION, DEVICE_KEY, v, a)
    k_a2v = hkdf(shared, transcript, b"backdesk-e2e-v1 agent-to-viewer", 32)
    k_v2a = hkdf(shared, transcript, b"backdesk-e2e-v1 viewer-to-agent", 32)
    number = int.from_bytes(hkdf(shared, transcript, b"backdesk-e2e-v1 code", 4), "big")

    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    viewer._private = viewer_private  # fixed ephemeral keys, to compare with the formulas
    viewer._public = v
    signature = DEVICE.sign(transcript)
    channel = viewer.finish(b"\x02" + a + signature)
    assert isinstance(channel, e2e.Channel)
    assert channel.code == f"{number % 1_000_000:06d}"

    sealed = channel.seal(b"to the agent")
    assert sealed[:5] == b"\x03\x00\x00\x00\x00"
    assert AESGCM(k_v2a).decrypt(b"\x00" * 12, sealed[5:], None) == b"to the agent"
    second = channel.seal(b"again")
    assert second[:5] == b"\x03\x00\x00\x00\x01"
    assert AESGCM(k_v2a).decrypt(b"\x00" * 11 + b"\x01", second[5:], None) == b"again"
    from_agent = b"\x03\x00\x00\x00\x00" + AESGCM(k_a2v).encrypt(b"\x00" * 12, b"hi", None)
    assert channel.open(from_agent) == b"hi"


def derive_code(transcript: bytes, shared: bytes = b"\x42" * 32) -> str:
    return e2e._derive("viewer", shared, transcript).code


def code_for(
    session: str = SESSION,
    device: bytes = DEVICE_KEY,
    viewer: bytes = b"\x01" * 32,
    agent: bytes = b"\x02" * 32,
    shared: bytes = b"\x42" * 32,
) -> str:
    return derive_code(e2e.transcript_hash(session, device, viewer, agent), shared)


@pytest.mark.parametrize("which", ["session", "device", "viewer", "agent", "shared"])
def test_code_differs_when_any_input_differs(which: str) -> None:
    reference = code_for()
    codes = set()
    for n in range(1, 6):
        if which == "session":
            codes.add(code_for(session=SESSION + str(n)))
        elif which == "device":
            other = Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)
            codes.add(code_for(device=public_key_bytes(other)))
        elif which == "viewer":
            codes.add(code_for(viewer=bytes([0x10 + n]) * 32))
        elif which == "agent":
            codes.add(code_for(agent=bytes([0x10 + n]) * 32))
        else:
            codes.add(code_for(shared=bytes([0x42 + n]) * 32))
    assert reference not in codes
    assert len(codes) == 5


def test_codes_are_six_digits_with_leading_zeros() -> None:
    codes = {derive_code(hashlib.sha256(n.to_bytes(2, "big")).digest()) for n in range(300)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 290
    assert any(c.startswith("0") for c in codes)


def test_fresh_handshakes_give_fresh_codes_and_keys() -> None:
    viewer1, agent1 = handshake()
    viewer2, agent2 = handshake()
    assert viewer1.code == agent1.code and viewer2.code == agent2.code
    refused(viewer2.open(agent1.seal(b"x")), "forged")


def test_signature_by_another_key_is_refused() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, OTHER, viewer.hello())
    assert not isinstance(answer, ProtocolError)
    refused(viewer.finish(answer[0]), "not signed by the device")


def test_signature_for_another_session_is_refused() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION + "-other", DEVICE, viewer.hello())
    assert not isinstance(answer, ProtocolError)
    refused(viewer.finish(answer[0]), "not signed")


def test_man_in_the_middle_substituting_the_viewer_key_fails_the_signature() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    mallory = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, DEVICE, mallory.hello())  # relay swapped the hello
    assert not isinstance(answer, ProtocolError)
    refused(viewer.finish(answer[0]), "not signed")


def test_man_in_the_middle_substituting_the_agent_key_fails_the_signature() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, DEVICE, viewer.hello())
    assert not isinstance(answer, ProtocolError)
    agent_hello = answer[0]
    mallory_eph = X25519PrivateKey.generate().public_key().public_bytes_raw()
    refused(viewer.finish(b"\x02" + mallory_eph + agent_hello[33:]), "not signed")


def test_man_in_the_middle_with_a_substituted_device_key_shows_different_codes() -> None:
    """A coordinator that lies about the device key can run two handshakes, one with each
    end, but it cannot make them agree on the code the user and technician compare."""
    mallory = Ed25519PrivateKey.generate()
    viewer = e2e.ViewerHandshake(SESSION, public_key_bytes(mallory))  # the lie
    fake_agent = e2e.agent_handshake(SESSION, mallory, viewer.hello())
    assert not isinstance(fake_agent, ProtocolError)
    viewer_channel = viewer.finish(fake_agent[0])
    assert isinstance(viewer_channel, e2e.Channel)

    fake_viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    real_agent = e2e.agent_handshake(SESSION, DEVICE, fake_viewer.hello())
    assert not isinstance(real_agent, ProtocolError)
    assert real_agent[1].code != viewer_channel.code
    # ...and the real agent's messages are unreadable to the viewer.
    refused(viewer_channel.open(real_agent[1].seal(b"screen")), "forged")


@pytest.mark.parametrize(
    ("hello", "words"),
    [
        (b"", "empty"),
        (b"\x02" + b"\x01" * 32, "0x02"),
        (b"\x03" + b"\x01" * 32, "0x03"),
        (b"\x01" + b"\x01" * 31, "33"),
        (b"\x01" + b"\x01" * 33, "33"),
        (b"\x01", "33"),
    ],
)
def test_agent_refuses_bad_viewer_hellos(hello: bytes, words: str) -> None:
    refused(e2e.agent_handshake(SESSION, DEVICE, hello), words)


@pytest.mark.parametrize(
    "point",
    [
        b"\x00" * 32,  # zero
        b"\x01" + b"\x00" * 31,  # one
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        b"\xec" + b"\xff" * 30 + b"\x7f",  # p - 1
    ],
)
def test_small_order_ephemeral_keys_are_refused(point: bytes) -> None:
    refused(e2e.agent_handshake(SESSION, DEVICE, b"\x01" + point), "small-order")
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    transcript = e2e.transcript_hash(SESSION, DEVICE_KEY, viewer.hello()[1:], point)
    refused(viewer.finish(b"\x02" + point + DEVICE.sign(transcript)), "small-order")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda h: b"", "empty"),
        (lambda h: b"\x01" + h[1:], "0x01"),
        (lambda h: b"\x03" + h[1:], "0x03"),
        (lambda h: h[:-1], "96"),
        (lambda h: h + b"\x00", "98"),
        (lambda h: h[:33], "33"),
        (lambda h: h[:40] + bytes([h[40] ^ 1]) + h[41:], "not signed"),
        (lambda h: h[:10] + bytes([h[10] ^ 0x80]) + h[11:], "not signed"),
    ],
)
def test_viewer_refuses_bad_agent_hellos(mutate: object, words: str) -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, DEVICE, viewer.hello())
    assert not isinstance(answer, ProtocolError)
    refused(viewer.finish(mutate(answer[0])), words)  # type: ignore[operator]


def test_finish_works_once() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, DEVICE, viewer.hello())
    assert not isinstance(answer, ProtocolError)
    assert isinstance(viewer.finish(answer[0]), e2e.Channel)
    with pytest.raises(InvalidState):
        viewer.finish(answer[0])


def test_failed_finish_cannot_be_retried() -> None:
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    refused(viewer.finish(b"\x02"))
    with pytest.raises(InvalidState):
        viewer.finish(b"\x02")


@pytest.mark.parametrize(
    "key", [b"", b"\x01" * 31, b"\x00" * 32, b"\x01" + b"\x00" * 31, b"\xff" * 32]
)
def test_viewer_refuses_invalid_device_keys(key: bytes) -> None:
    with pytest.raises(ValueError):
        e2e.ViewerHandshake(SESSION, key)


def test_session_id_must_be_ascii() -> None:
    with pytest.raises(ValueError):
        e2e.ViewerHandshake("sé", DEVICE_KEY)
    with pytest.raises(ValueError):
        e2e.agent_handshake("", DEVICE, b"\x01" + b"\x09" * 32)


@given(st.binary(max_size=200))
@FAST
def test_handshakes_never_raise_on_arbitrary_bytes(data: bytes) -> None:
    result = e2e.agent_handshake(SESSION, DEVICE, data)
    if isinstance(result, ProtocolError):
        check_error(result)
    viewer = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    refused(viewer.finish(data))  # nobody can forge the device's signature


# --- sealed messages --------------------------------------------------------------------


def test_round_trips_in_both_directions() -> None:
    viewer, agent = handshake()
    for n in range(50):
        down = bytes([n]) * n + b"frame"
        up = b"input" * n
        sealed = agent.seal(down)
        assert sealed[0] == 0x03
        assert struct.unpack(">I", sealed[1:5])[0] == n
        assert len(sealed) == len(down) + e2e.SEALED_OVERHEAD
        assert viewer.open(sealed) == down
        assert agent.open(viewer.seal(up)) == up
    assert (agent.sent, agent.received, viewer.sent, viewer.received) == (50, 50, 50, 50)
    assert viewer.failed is None and agent.failed is None


def test_empty_and_largest_plaintexts() -> None:
    viewer, agent = handshake()
    assert viewer.open(agent.seal(b"")) == b""
    big = b"\xab" * MAX_PLAINTEXT
    assert viewer.open(agent.seal(big)) == big
    with pytest.raises(ValueError):
        agent.seal(big + b"!")


def test_same_plaintext_seals_differently() -> None:
    _, agent = handshake()
    assert agent.seal(b"same")[5:] != agent.seal(b"same")[5:]


def assert_stays_failed(channel: e2e.Channel, sender: e2e.Channel, first: ProtocolError) -> None:
    assert channel.failed == first
    # Every later message is refused, even perfectly valid ones.
    for _ in range(3):
        refused(channel.open(sender.seal(b"valid")), "already failed")
    assert channel.failed == first


def test_replayed_message_is_refused_and_the_channel_stays_failed() -> None:
    viewer, agent = handshake()
    first = agent.seal(b"one")
    assert viewer.open(first) == b"one"
    error = refused(viewer.open(first), "replayed, reordered or forged", "counter 0, expected 1")
    assert_stays_failed(viewer, agent, error)


def test_reordered_messages_are_refused() -> None:
    viewer, agent = handshake()
    one, two = agent.seal(b"one"), agent.seal(b"two")
    error = refused(viewer.open(two), "counter 1, expected 0")
    refused(viewer.open(one), "already failed")
    assert viewer.failed == error


def test_skipped_message_is_refused() -> None:
    viewer, agent = handshake()
    for _ in range(5):
        assert viewer.open(agent.seal(b"x")) == b"x"
    agent.seal(b"lost")
    agent.seal(b"lost too")
    error = refused(viewer.open(agent.seal(b"late")), "counter 7, expected 5")
    assert_stays_failed(viewer, agent, error)


@pytest.mark.parametrize("cut", [0, 1, 4, 5, 20, 21, 22, -1])
def test_truncated_message_is_refused(cut: int) -> None:
    viewer, agent = handshake()
    sealed = agent.seal(b"some screen data")
    error = refused(viewer.open(sealed[:cut]))
    assert_stays_failed(viewer, agent, error)


@pytest.mark.parametrize("position", [0, 1, 4, 5, 12, -17, -1])
def test_bit_flips_are_refused(position: int) -> None:
    viewer, agent = handshake()
    sealed = bytearray(agent.seal(b"some screen data"))
    sealed[position] ^= 0x01
    error = refused(viewer.open(bytes(sealed)))
    assert_stays_failed(viewer, agent, error)


def test_appended_bytes_are_refused() -> None:
    viewer, agent = handshake()
    refused(viewer.open(agent.seal(b"data") + b"\x00"), "forged")


@pytest.mark.parametrize("kind", [0x00, 0x01, 0x02, 0x04, 0x10, 0x13, 0xFF])
def test_wrong_type_byte_is_refused(kind: int) -> None:
    viewer, agent = handshake()
    sealed = agent.seal(b"data")
    refused(viewer.open(bytes([kind]) + sealed[1:]), f"0x{kind:02x}")


def test_plaintext_is_never_accepted() -> None:
    viewer, _ = handshake()
    refused(viewer.open(b"\x13hello, plain chat"), "expected a sealed message")


def test_wrong_direction_is_refused() -> None:
    viewer, agent = handshake()
    refused(agent.open(agent.seal(b"reflected")), "forged")
    refused(viewer.open(viewer.seal(b"reflected")), "forged")


def test_directions_count_separately() -> None:
    viewer, agent = handshake()
    for _ in range(3):
        agent.seal(b"unsent")
    # The viewer's first message is still counter 0 to the agent.
    assert agent.open(viewer.seal(b"first")) == b"first"


def test_counter_exhaustion() -> None:
    viewer, agent = handshake()
    agent._send_counter = e2e.COUNTER_LIMIT - 1
    viewer._receive_counter = e2e.COUNTER_LIMIT - 1
    last = agent.seal(b"last")
    assert last[1:5] == b"\xff\xff\xff\xff"
    assert viewer.open(last) == b"last"
    with pytest.raises(InvalidState):
        agent.seal(b"one too many")
    # Nothing the sender can produce is the next counter any more.
    refused(viewer.open(b"\x03\x00\x00\x00\x00" + b"\x00" * 16), "expected 4294967296")


def test_oversized_message_is_refused() -> None:
    viewer, _ = handshake()
    refused(viewer.open(b"\x03" + b"\x00" * (e2e.MAX_SEALED + 1)), "too large")


def test_repr_shows_no_keys() -> None:
    viewer, agent = handshake()
    text = repr(agent)
    assert "agent" in text and "open" in text
    viewer.open(b"")
    assert "failed" in repr(viewer)


@given(st.lists(st.binary(max_size=120), max_size=5))
@FAST
def test_open_never_raises_on_arbitrary_bytes(messages: list[bytes]) -> None:
    viewer, agent = handshake()
    for message in messages:
        refused(viewer.open(message))  # nothing made without the key authenticates
    if messages:
        refused(viewer.open(agent.seal(b"ok")), "already failed")
    else:
        assert viewer.open(agent.seal(b"ok")) == b"ok"


@given(
    st.binary(max_size=64),
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=4,
    ),
)
@FAST
def test_any_change_to_a_sealed_message_is_refused(
    plaintext: bytes, changes: list[tuple[int, int]]
) -> None:
    viewer, agent = handshake()
    sealed = bytearray(agent.seal(plaintext))
    original = bytes(sealed)
    for at, value in changes:
        sealed[at % len(sealed)] = value
    if bytes(sealed) == original:
        assert viewer.open(original) == plaintext
    else:
        refused(viewer.open(bytes(sealed)))
