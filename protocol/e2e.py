"""End-to-end encryption of remote sessions (docs/remote-sessions.md, "Binary messages").

The viewer (a technician's browser) and the agent agree on keys through the relay, which
only ever sees ephemeral public keys, a signature and sealed messages:

* the viewer sends ``0x01 ‖ viewer_eph``;
* the agent answers ``0x02 ‖ agent_eph ‖ Ed25519 signature`` over the transcript hash,
  with the device identity key the viewer got from the coordinator;
* both derive one AES-256-GCM key per direction and a 6-digit verification code that the
  agent's user compares with the one the technician reads out;
* after that every binary message is ``0x03 ‖ counter u32 ‖ ciphertext ‖ tag``, and a
  receiver accepts only the next counter.

There is no unencrypted mode. Everything here is sans-I/O: bytes in, bytes (or a
:class:`ProtocolError`) out. Wire input never raises; an exception means a caller bug.
The browser's side of the same protocol is ``coordinator/web/static/e2e.js``.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ErrorCode, InvalidState, ProtocolError
from .identity import public_key_bytes, sign, valid_public_key, verify
from .remote import MAX_PLAINTEXT

VIEWER_HELLO: Final = 0x01
AGENT_HELLO: Final = 0x02
SEALED: Final = 0x03

KEY_SIZE: Final = 32  # X25519 and Ed25519 public keys
SIGNATURE_SIZE: Final = 64
TAG_SIZE: Final = 16
VIEWER_HELLO_SIZE: Final = 1 + KEY_SIZE
AGENT_HELLO_SIZE: Final = 1 + KEY_SIZE + SIGNATURE_SIZE
SEALED_HEADER_SIZE: Final = 1 + 4
SEALED_OVERHEAD: Final = SEALED_HEADER_SIZE + TAG_SIZE
MAX_SEALED: Final = SEALED_OVERHEAD + MAX_PLAINTEXT
COUNTER_LIMIT: Final = 2**32  # counters are u32: at most this many messages per direction

TRANSCRIPT_LABEL: Final = b"backdesk-e2e-v1\x00"
INFO_A2V: Final = b"backdesk-e2e-v1 agent-to-viewer"
INFO_V2A: Final = b"backdesk-e2e-v1 viewer-to-agent"
INFO_CODE: Final = b"backdesk-e2e-v1 code"

Role = Literal["agent", "viewer"]

_HEADER = struct.Struct(">BI")
_NONCE_PREFIX = b"\x00" * 8


def _error(why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.SESSION_CRYPTO, why)


def _check_session_id(session_id: str) -> bytes:
    if not session_id or not session_id.isascii():
        raise ValueError("a session id is non-empty ASCII")
    return session_id.encode("ascii")


def transcript_hash(
    session_id: str, device_key: bytes, viewer_eph: bytes, agent_eph: bytes
) -> bytes:
    """SHA-256 of everything both ends must agree on; what the agent signs."""
    sid = _check_session_id(session_id)
    for name, key in (
        ("device key", device_key),
        ("viewer key", viewer_eph),
        ("agent key", agent_eph),
    ):
        if len(key) != KEY_SIZE:
            raise ValueError(f"the {name} is {KEY_SIZE} bytes")
    return hashlib.sha256(
        TRANSCRIPT_LABEL + sid + b"\x00" + device_key + viewer_eph + agent_eph
    ).digest()


def _hkdf(shared: bytes, transcript: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=transcript, info=info).derive(shared)


def _shared_secret(own: X25519PrivateKey, peer: bytes) -> bytes | ProtocolError:
    try:
        return own.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:  # a small-order point: the "shared" secret would be all zeros
        return _error("key agreement failed (small-order ephemeral key)")


def _derive(role: Role, shared: bytes, transcript: bytes) -> Channel:
    a2v = _hkdf(shared, transcript, INFO_A2V, 32)
    v2a = _hkdf(shared, transcript, INFO_V2A, 32)
    number = int.from_bytes(_hkdf(shared, transcript, INFO_CODE, 4), "big") % 1_000_000
    code = f"{number:06d}"
    if role == "agent":
        return Channel(role, send_key=a2v, receive_key=v2a, code=code)
    return Channel(role, send_key=v2a, receive_key=a2v, code=code)


class Channel:
    """One end's sealing state once the handshake is done.

    The agent seals with k_a2v and opens with k_v2a, the viewer the other way round; each
    direction counts its messages from 0. :meth:`open` accepts only the next counter, and
    after one refused message every later one is refused too: the session is over.
    """

    __slots__ = (
        "_failure",
        "_receive",
        "_receive_counter",
        "_send",
        "_send_counter",
        "code",
        "role",
    )

    def __init__(self, role: Role, *, send_key: bytes, receive_key: bytes, code: str) -> None:
        if len(send_key) != 32 or len(receive_key) != 32 or send_key == receive_key:
            raise ValueError("a channel needs two distinct 32-byte keys")
        self.role: Final[Role] = role
        self.code: Final[str] = code
        self._send = AESGCM(send_key)
        self._receive = AESGCM(receive_key)
        self._send_counter = 0
        self._receive_counter = 0
        self._failure: ProtocolError | None = None

    def __repr__(self) -> str:  # never the keys
        state = "failed" if self._failure else "open"
        return (
            f"<Channel {self.role} {state} sent={self._send_counter} "
            f"received={self._receive_counter}>"
        )

    @property
    def failed(self) -> ProtocolError | None:
        """Why the channel refused a message, if it did (then it refuses everything)."""
        return self._failure

    @property
    def sent(self) -> int:
        return self._send_counter

    @property
    def received(self) -> int:
        return self._receive_counter

    def seal(self, plaintext: bytes) -> bytes:
        """``0x03 ‖ counter ‖ AES-GCM(plaintext)`` with the next counter of this direction.

        Raises InvalidState once 2**32 messages were sealed (the session must be ended
        long before) and ValueError for a plaintext over the relay's limit.
        """
        if len(plaintext) > MAX_PLAINTEXT:
            raise ValueError(f"plaintext of {len(plaintext)} bytes is over {MAX_PLAINTEXT}")
        counter = self._send_counter
        if counter >= COUNTER_LIMIT:
            raise InvalidState("message counter exhausted: end the session")
        self._send_counter = counter + 1
        nonce = _NONCE_PREFIX + counter.to_bytes(4, "big")
        return _HEADER.pack(SEALED, counter) + self._send.encrypt(nonce, plaintext, None)

    def open(self, message: bytes) -> bytes | ProtocolError:
        """The plaintext of the next sealed message, or why the session must end."""
        if self._failure is not None:
            return _error(f"channel already failed ({self._failure.message})")
        failure = self._check(message)
        if isinstance(failure, ProtocolError):
            self._failure = failure
            return failure
        counter = self._receive_counter
        nonce = _NONCE_PREFIX + counter.to_bytes(4, "big")
        try:
            plaintext = self._receive.decrypt(nonce, bytes(message[_HEADER.size :]), None)
        except InvalidTag:
            self._failure = _error(
                f"replayed, reordered or forged frame (counter {counter} does not authenticate)"
            )
            return self._failure
        self._receive_counter = counter + 1
        return plaintext

    def _check(self, message: bytes) -> ProtocolError | None:
        if not message:
            return _error("empty binary message")
        if message[0] != SEALED:
            return _error(f"expected a sealed message (0x03), got 0x{message[0]:02x}")
        if len(message) < SEALED_OVERHEAD:
            return _error(f"truncated sealed message ({len(message)} bytes)")
        if len(message) > MAX_SEALED:
            return _error(f"sealed message too large ({len(message)} bytes)")
        _, counter = _HEADER.unpack_from(message)
        if counter != self._receive_counter:
            return _error(
                f"replayed, reordered or forged frame "
                f"(counter {counter}, expected {self._receive_counter})"
            )
        return None


class ViewerHandshake:
    """The viewer's half of the handshake (the browser runs e2e.js; tests and the bench
    use this one)."""

    def __init__(self, session_id: str, device_public_key: bytes) -> None:
        _check_session_id(session_id)
        if not valid_public_key(device_public_key):
            raise ValueError("not a valid Ed25519 device public key")
        self.session_id: Final = session_id
        self.device_public_key: Final = bytes(device_public_key)
        self._private: X25519PrivateKey | None = X25519PrivateKey.generate()
        self._public = self._private.public_key().public_bytes_raw()

    def hello(self) -> bytes:
        """``0x01 ‖ viewer_eph``: the first binary message the viewer sends."""
        return bytes([VIEWER_HELLO]) + self._public

    def finish(self, agent_hello: bytes) -> Channel | ProtocolError:
        """Check the agent's hello (its signature first) and derive the channel.

        Works once: the ephemeral private key is forgotten whatever the outcome.
        """
        private = self._private
        if private is None:
            raise InvalidState("the handshake is already finished")
        self._private = None
        if not agent_hello or agent_hello[0] != AGENT_HELLO:
            got = f"0x{agent_hello[0]:02x}" if agent_hello else "an empty message"
            return _error(f"expected the agent hello (0x02), got {got}")
        if len(agent_hello) != AGENT_HELLO_SIZE:
            return _error(f"agent hello of {len(agent_hello)} bytes, expected {AGENT_HELLO_SIZE}")
        agent_eph = bytes(agent_hello[1 : 1 + KEY_SIZE])
        signature = bytes(agent_hello[1 + KEY_SIZE :])
        transcript = transcript_hash(
            self.session_id, self.device_public_key, self._public, agent_eph
        )
        if not verify(self.device_public_key, signature, transcript):
            return _error("the agent hello is not signed by the device's key")
        shared = _shared_secret(private, agent_eph)
        if isinstance(shared, ProtocolError):
            return shared
        return _derive("viewer", shared, transcript)


def agent_handshake(
    session_id: str, identity: Ed25519PrivateKey, viewer_hello: bytes
) -> tuple[bytes, Channel] | ProtocolError:
    """Answer a viewer hello: the agent hello to send back and the agent's channel."""
    _check_session_id(session_id)
    if not viewer_hello or viewer_hello[0] != VIEWER_HELLO:
        got = f"0x{viewer_hello[0]:02x}" if viewer_hello else "an empty message"
        return _error(f"expected the viewer hello (0x01), got {got}")
    if len(viewer_hello) != VIEWER_HELLO_SIZE:
        return _error(f"viewer hello of {len(viewer_hello)} bytes, expected {VIEWER_HELLO_SIZE}")
    viewer_eph = bytes(viewer_hello[1:])
    private = X25519PrivateKey.generate()
    agent_eph = private.public_key().public_bytes_raw()
    shared = _shared_secret(private, viewer_eph)
    if isinstance(shared, ProtocolError):
        return shared
    device_key = public_key_bytes(identity)
    transcript = transcript_hash(session_id, device_key, viewer_eph, agent_eph)
    signature = sign(identity, transcript)
    hello = bytes([AGENT_HELLO]) + agent_eph + signature
    return hello, _derive("agent", shared, transcript)
