"""Protocol errors: what can go wrong on the wire, as values rather than exceptions.

Decoders in this package never raise into the I/O layer (see CONVENTIONS.md, 3): they
return a :class:`ProtocolError`, and the adapter closes that one connection with the
error's close code and reason. Exceptions remain only for programming errors (calling a
state machine method in a state where it makes no sense), which are bugs, not input.

Exception tree::

    BackdeskProtocolError          root of everything this package raises
    └── InvalidState               a method was called in a state that does not allow it
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Every reason a connection can be refused or closed. Values travel on the wire."""

    MALFORMED_FRAME = "malformed_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    TRUNCATED_FRAME = "truncated_frame"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_MESSAGE = "unknown_message"
    INVALID_MESSAGE = "invalid_message"
    UNEXPECTED_MESSAGE = "unexpected_message"
    BAD_TOKEN = "bad_token"
    TOKEN_USED = "token_used"
    TOKEN_EXPIRED = "token_expired"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_DEVICE = "unknown_device"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
    SERVER_ERROR = "server_error"
    GOING_AWAY = "going_away"
    SESSION_CRYPTO = "session_crypto"


# Websocket close codes (RFC 6455, 7.4.1): 1002 protocol error, 1008 policy violation,
# 1009 message too big, 1011 server error, 1001 going away. Credentials refused use 4401,
# in the application range, so an agent can tell "fix your enrollment" from "retry later".
_CLOSE_CODES: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED_FRAME: 1002,
    ErrorCode.TRUNCATED_FRAME: 1002,
    ErrorCode.UNSUPPORTED_VERSION: 1002,
    ErrorCode.UNKNOWN_MESSAGE: 1002,
    ErrorCode.INVALID_MESSAGE: 1002,
    ErrorCode.UNEXPECTED_MESSAGE: 1002,
    ErrorCode.FRAME_TOO_LARGE: 1009,
    ErrorCode.BAD_TOKEN: 4401,
    ErrorCode.TOKEN_USED: 4401,
    ErrorCode.TOKEN_EXPIRED: 4401,
    ErrorCode.BAD_SIGNATURE: 4401,
    ErrorCode.UNKNOWN_DEVICE: 4401,
    ErrorCode.HANDSHAKE_TIMEOUT: 1008,
    ErrorCode.HEARTBEAT_TIMEOUT: 1008,
    ErrorCode.SERVER_ERROR: 1011,
    ErrorCode.GOING_AWAY: 1001,
    ErrorCode.SESSION_CRYPTO: 1008,
}

# Errors after which retrying with the same credentials cannot succeed.
CREDENTIAL_ERRORS = frozenset(
    {
        ErrorCode.BAD_TOKEN,
        ErrorCode.TOKEN_USED,
        ErrorCode.TOKEN_EXPIRED,
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.UNKNOWN_DEVICE,
    }
)

# Close reasons must fit a websocket close frame (125 bytes minus the 2-byte code).
MAX_REASON_BYTES = 123


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A typed, human-readable reason to refuse input or close a connection."""

    code: ErrorCode
    message: str

    @property
    def close_code(self) -> int:
        return _CLOSE_CODES[self.code]

    @property
    def close_reason(self) -> str:
        """The message, shortened to fit a websocket close frame."""
        data = f"{self.code}: {self.message}".encode(errors="replace")
        if len(data) <= MAX_REASON_BYTES:
            return data.decode()
        return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


class BackdeskProtocolError(Exception):
    """Root of the exceptions raised by :mod:`protocol` (programming errors only)."""


class InvalidState(BackdeskProtocolError):
    """A state machine method was called in a state that does not allow it."""
