"""Backdesk's wire protocol, sans-I/O: frames, typed messages, identities, link states.

Nothing here opens a socket, starts a task or reads a clock; both the agent and the
coordinator import it, and it imports neither.
"""

from .errors import ErrorCode, ProtocolError
from .frames import PROTOCOL_VERSION, SUPPORTED_VERSIONS, Frame, FrameKind

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "ErrorCode",
    "Frame",
    "FrameKind",
    "ProtocolError",
]
