"""Binary framing shared by every Backdesk connection.

Each websocket message carries exactly one frame::

    offset  size  field
    0       2     magic  b"BD"
    2       1     protocol version (1)
    3       1     kind: 1 = control (UTF-8 JSON), 2 = data (opaque bytes)
    4       4     channel, big-endian; 0 for control frames
    8       4     payload length, big-endian
    12      n     payload

The length field is redundant with the websocket's own framing on purpose: it lets the
same format run over a plain byte stream (the agent's local socket) and makes a
truncated or padded frame detectable instead of silently accepted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .errors import ErrorCode, ProtocolError

MAGIC = b"BD"
PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

HEADER = struct.Struct(">2sBBII")
HEADER_SIZE = HEADER.size

# Control messages are small records; data frames carry screen tiles and the like.
MAX_CONTROL_PAYLOAD = 256 * 1024
MAX_DATA_PAYLOAD = 1024 * 1024
MAX_FRAME_SIZE = HEADER_SIZE + MAX_DATA_PAYLOAD


class FrameKind(IntEnum):
    CONTROL = 1
    DATA = 2


_LIMITS = {FrameKind.CONTROL: MAX_CONTROL_PAYLOAD, FrameKind.DATA: MAX_DATA_PAYLOAD}


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    payload: bytes
    channel: int = 0
    version: int = PROTOCOL_VERSION

    def __repr__(self) -> str:
        # Never print payloads: they may hold tokens or screen content.
        return f"Frame({self.kind.name}, channel={self.channel}, {len(self.payload)} bytes)"


def encode_frame(frame: Frame) -> bytes:
    """Serialize a frame. Raises ValueError for a frame this side should never build."""
    if len(frame.payload) > _LIMITS[frame.kind]:
        raise ValueError(f"{frame.kind.name} payload of {len(frame.payload)} bytes is over limit")
    if frame.kind is FrameKind.CONTROL and frame.channel != 0:
        raise ValueError("control frames use channel 0")
    if not 0 <= frame.channel <= 0xFFFFFFFF or not 0 <= frame.version <= 0xFF:
        raise ValueError("channel or version out of range")
    header = HEADER.pack(MAGIC, frame.version, frame.kind, frame.channel, len(frame.payload))
    return header + frame.payload


def _parse_header(data: bytes) -> tuple[FrameKind, int, int, int] | ProtocolError:
    magic, version, kind, channel, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        return ProtocolError(ErrorCode.MALFORMED_FRAME, "not a Backdesk frame (bad magic)")
    if version not in SUPPORTED_VERSIONS:
        return ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"frame version {version} is not supported (this side speaks "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))})",
        )
    try:
        frame_kind = FrameKind(kind)
    except ValueError:
        return ProtocolError(ErrorCode.MALFORMED_FRAME, f"unknown frame kind {kind}")
    if frame_kind is FrameKind.CONTROL and channel != 0:
        return ProtocolError(ErrorCode.MALFORMED_FRAME, "control frame on a data channel")
    if length > _LIMITS[frame_kind]:
        return ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"{frame_kind.name.lower()} frame of {length} bytes exceeds {_LIMITS[frame_kind]}",
        )
    return frame_kind, version, channel, length


def decode_frame(data: bytes) -> Frame | ProtocolError:
    """Parse one complete frame (one websocket message). Never raises."""
    if len(data) > MAX_FRAME_SIZE:
        return ProtocolError(
            ErrorCode.FRAME_TOO_LARGE, f"message of {len(data)} bytes is too large"
        )
    if len(data) < HEADER_SIZE:
        return ProtocolError(
            ErrorCode.TRUNCATED_FRAME, f"{len(data)} bytes is shorter than a header"
        )
    header = _parse_header(data)
    if isinstance(header, ProtocolError):
        return header
    kind, version, channel, length = header
    body = data[HEADER_SIZE:]
    if len(body) < length:
        return ProtocolError(
            ErrorCode.TRUNCATED_FRAME, f"frame announces {length} bytes but carries {len(body)}"
        )
    if len(body) > length:
        return ProtocolError(
            ErrorCode.MALFORMED_FRAME, f"frame announces {length} bytes but carries {len(body)}"
        )
    return Frame(kind, bytes(body), channel, version)


class FrameReader:
    """Incremental decoder for frames over a byte stream (e.g. a local socket).

    Feed bytes with :meth:`feed`; :meth:`frames` returns the complete frames so far. After
    the first error the reader keeps :attr:`error` and discards further input, as
    `websockets` does, so one bad peer cannot make the caller parse garbage.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frames: list[Frame] = []
        self.error: ProtocolError | None = None

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        self._buffer += data
        while len(self._buffer) >= HEADER_SIZE:
            header = _parse_header(bytes(self._buffer[:HEADER_SIZE]))
            if isinstance(header, ProtocolError):
                self._fail(header)
                return
            kind, version, channel, length = header
            end = HEADER_SIZE + length
            if len(self._buffer) < end:
                return
            self._frames.append(Frame(kind, bytes(self._buffer[HEADER_SIZE:end]), channel, version))
            del self._buffer[:end]

    def end_of_stream(self) -> None:
        """The peer closed: bytes still buffered are a truncated frame."""
        if self.error is None and self._buffer:
            self._fail(
                ProtocolError(
                    ErrorCode.TRUNCATED_FRAME,
                    f"stream ended inside a frame ({len(self._buffer)} bytes)",
                )
            )

    def frames(self) -> list[Frame]:
        frames, self._frames = self._frames, []
        return frames

    def _fail(self, error: ProtocolError) -> None:
        self.error = error
        self._buffer.clear()
