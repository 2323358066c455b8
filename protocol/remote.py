"""What travels inside a remote session's sealed messages (docs/remote-sessions.md).

Pure encoders and strict decoders of the plaintext the agent and the viewer exchange once
the end-to-end handshake is done (``protocol.e2e`` seals it). Decoders return a
:class:`ProtocolError` for anything malformed and never raise: a bad message from the
other end ends that session, nothing else.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from .errors import ErrorCode, ProtocolError

# Sealed plaintexts stay below the relay's message limit with room for the envelope.
MAX_PLAINTEXT = 1024 * 1024 - 64
MAX_CHAT_BYTES = 2000
MAX_INPUT_BYTES = 256
MAX_SCREENS_BYTES = 4096
MAX_DIMENSION = 16384
MAX_MONITORS = 16


class Kind(IntEnum):
    FRAME = 0x10
    CURSOR = 0x11
    SCREENS = 0x12
    CHAT = 0x13
    ACK = 0x20
    INPUT = 0x21
    MONITOR = 0x22


class Encoding(IntEnum):
    JPEG = 1
    PNG = 2
    COPY = 3  # data: src_x u16, src_y u16
    FILL = 4  # data: r, g, b


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int
    encoding: Encoding
    data: bytes


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    monitor: int
    width: int
    height: int
    rects: tuple[Rect, ...]


@dataclass(frozen=True, slots=True)
class Cursor:
    x: int
    y: int
    # Optional shape: hot spot and a PNG image.
    hot_x: int = 0
    hot_y: int = 0
    png: bytes = b""


@dataclass(frozen=True, slots=True)
class Monitor:
    index: int
    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Screens:
    monitors: tuple[Monitor, ...]
    current: int


@dataclass(frozen=True, slots=True)
class Chat:
    text: str


@dataclass(frozen=True, slots=True)
class FrameAck:
    seq: int


@dataclass(frozen=True, slots=True)
class PointerMove:
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PointerButton:
    button: Literal[1, 2, 3]
    down: bool


@dataclass(frozen=True, slots=True)
class Wheel:
    dx: int
    dy: int


@dataclass(frozen=True, slots=True)
class Key:
    code: str  # KeyboardEvent.code: layout-independent physical key
    down: bool


Input = PointerMove | PointerButton | Wheel | Key


@dataclass(frozen=True, slots=True)
class SelectMonitor:
    index: int


RemoteMessage = Frame | Cursor | Screens | Chat | FrameAck | Input | SelectMonitor

_FRAME_HEAD = struct.Struct(">BIBHHH")
_RECT_HEAD = struct.Struct(">HHHHBI")
_CURSOR = struct.Struct(">BHH")
_SHAPE = struct.Struct(">HH")
_U32 = struct.Struct(">BI")
_U8 = struct.Struct(">BB")
_COPY = struct.Struct(">HH")


# --- encoding ---------------------------------------------------------------------------


def encode(message: RemoteMessage) -> bytes:
    match message:
        case Frame():
            return encode_frame(message)
        case Cursor(x=x, y=y, hot_x=hot_x, hot_y=hot_y, png=png):
            shape = _SHAPE.pack(hot_x, hot_y) + png if png else b""
            return _CURSOR.pack(Kind.CURSOR, x, y) + shape
        case Screens(monitors=monitors, current=current):
            doc = {
                "monitors": [
                    {
                        "index": m.index,
                        "left": m.left,
                        "top": m.top,
                        "width": m.width,
                        "height": m.height,
                    }
                    for m in monitors
                ],
                "current": current,
            }
            return bytes([Kind.SCREENS]) + json.dumps(doc, separators=(",", ":")).encode()
        case Chat(text=text):
            return bytes([Kind.CHAT]) + text.encode()
        case FrameAck(seq=seq):
            return _U32.pack(Kind.ACK, seq)
        case SelectMonitor(index=index):
            return _U8.pack(Kind.MONITOR, index)
        case PointerMove(x=x, y=y):
            return _input({"t": "move", "x": x, "y": y})
        case PointerButton(button=button, down=down):
            return _input({"t": "button", "b": button, "down": down})
        case Wheel(dx=dx, dy=dy):
            return _input({"t": "wheel", "dx": dx, "dy": dy})
        case Key(code=code, down=down):
            return _input({"t": "key", "code": code, "down": down})
    raise TypeError(f"not a remote message: {message!r}")


def _input(doc: dict[str, object]) -> bytes:
    return bytes([Kind.INPUT]) + json.dumps(doc, separators=(",", ":")).encode()


def encode_frame(frame: Frame) -> bytes:
    parts = [
        _FRAME_HEAD.pack(
            Kind.FRAME, frame.seq, frame.monitor, frame.width, frame.height, len(frame.rects)
        )
    ]
    for rect in frame.rects:
        parts.append(_RECT_HEAD.pack(rect.x, rect.y, rect.w, rect.h, rect.encoding, len(rect.data)))
        parts.append(rect.data)
    return b"".join(parts)


def copy_data(src_x: int, src_y: int) -> bytes:
    return _COPY.pack(src_x, src_y)


def fill_data(r: int, g: int, b: int) -> bytes:
    return bytes((r, g, b))


# --- decoding ---------------------------------------------------------------------------


def _bad(why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_MESSAGE, f"session message: {why}")


def decode(data: bytes) -> RemoteMessage | ProtocolError:
    """Decode one plaintext; anything malformed is a ProtocolError naming the problem."""
    if not data:
        return _bad("empty")
    if len(data) > MAX_PLAINTEXT:
        return _bad("too large")
    kind = data[0]
    body = data[1:]
    try:
        match kind:
            case Kind.FRAME:
                return _decode_frame(data)
            case Kind.CURSOR:
                return _decode_cursor(data)
            case Kind.SCREENS:
                return _decode_screens(body)
            case Kind.CHAT:
                if len(body) > MAX_CHAT_BYTES:
                    return _bad("chat message over 2000 bytes")
                return Chat(body.decode())
            case Kind.ACK:
                if len(data) != _U32.size:
                    return _bad("ack of the wrong size")
                return FrameAck(_U32.unpack(data)[1])
            case Kind.MONITOR:
                if len(data) != _U8.size:
                    return _bad("monitor choice of the wrong size")
                index = data[1]
                if index > MAX_MONITORS:
                    return _bad("no such monitor")
                return SelectMonitor(index)
            case Kind.INPUT:
                if len(body) > MAX_INPUT_BYTES:
                    return _bad("input event too large")
                return _decode_input(body)
    except (UnicodeDecodeError, struct.error) as exc:
        return _bad(str(exc))
    return _bad(f"unknown type 0x{kind:02x}")


def _decode_frame(data: bytes) -> Frame | ProtocolError:
    if len(data) < _FRAME_HEAD.size:
        return _bad("truncated frame")
    _, seq, monitor, width, height, count = _FRAME_HEAD.unpack_from(data)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        return _bad("frame size out of range")
    offset = _FRAME_HEAD.size
    rects: list[Rect] = []
    for _ in range(count):
        if len(data) - offset < _RECT_HEAD.size:
            return _bad("truncated rect")
        x, y, w, h, encoding, length = _RECT_HEAD.unpack_from(data, offset)
        offset += _RECT_HEAD.size
        if length > len(data) - offset:
            return _bad("rect data past the end")
        if w == 0 or h == 0 or x + w > width or y + h > height:
            return _bad("rect outside the frame")
        payload = data[offset : offset + length]
        offset += length
        try:
            kind = Encoding(encoding)
        except ValueError:
            return _bad(f"unknown encoding {encoding}")
        if kind is Encoding.COPY:
            if length != _COPY.size:
                return _bad("copy rect of the wrong size")
            sx, sy = _COPY.unpack(payload)
            if sx + w > width or sy + h > height:
                return _bad("copy source outside the frame")
        elif kind is Encoding.FILL and length != 3:
            return _bad("fill rect of the wrong size")
        elif kind in (Encoding.JPEG, Encoding.PNG) and length == 0:
            return _bad("empty image")
        rects.append(Rect(x, y, w, h, kind, payload))
    if offset != len(data):
        return _bad("trailing bytes after the last rect")
    return Frame(seq, monitor, width, height, tuple(rects))


def _decode_cursor(data: bytes) -> Cursor | ProtocolError:
    if len(data) < _CURSOR.size:
        return _bad("truncated cursor")
    _, x, y = _CURSOR.unpack_from(data)
    rest = data[_CURSOR.size :]
    if not rest:
        return Cursor(x, y)
    if len(rest) <= _SHAPE.size:
        return _bad("truncated cursor shape")
    hot_x, hot_y = _SHAPE.unpack_from(rest)
    return Cursor(x, y, hot_x, hot_y, rest[_SHAPE.size :])


def _int(doc: dict[str, object], name: str, low: int, high: int) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def _decode_screens(body: bytes) -> Screens | ProtocolError:
    if len(body) > MAX_SCREENS_BYTES:
        return _bad("screen list too large")
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("monitors"), list):
            raise ValueError("expected {monitors: [...], current}")
        items = doc["monitors"]
        if not 0 < len(items) <= MAX_MONITORS + 1:
            raise ValueError("bad number of monitors")
        monitors = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("a monitor must be an object")
            monitors.append(
                Monitor(
                    _int(item, "index", 0, MAX_MONITORS),
                    _int(item, "left", -MAX_DIMENSION, MAX_DIMENSION),
                    _int(item, "top", -MAX_DIMENSION, MAX_DIMENSION),
                    _int(item, "width", 1, MAX_DIMENSION),
                    _int(item, "height", 1, MAX_DIMENSION),
                )
            )
        return Screens(tuple(monitors), _int(doc, "current", 0, MAX_MONITORS))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; JSON nested too deep
        return _bad(f"screens: {exc}")


_KEY_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _decode_input(body: bytes) -> Input | ProtocolError:
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("an input event is an object")
        kind = doc.get("t")
        if kind == "move" and set(doc) == {"t", "x", "y"}:
            return PointerMove(
                _int(doc, "x", 0, MAX_DIMENSION * 4), _int(doc, "y", 0, MAX_DIMENSION * 4)
            )
        if kind == "button" and set(doc) == {"t", "b", "down"}:
            button = _int(doc, "b", 1, 3)
            if not isinstance(doc["down"], bool):
                raise ValueError("down must be true or false")
            return PointerButton(button, doc["down"])  # type: ignore[arg-type]
        if kind == "wheel" and set(doc) == {"t", "dx", "dy"}:
            return Wheel(_int(doc, "dx", -100, 100), _int(doc, "dy", -100, 100))
        if kind == "key" and set(doc) == {"t", "code", "down"}:
            code = doc["code"]
            if (
                not isinstance(code, str)
                or not 0 < len(code) <= 32
                or not set(code) <= _KEY_CODE_CHARS
            ):
                raise ValueError("code must be a KeyboardEvent.code")
            if not isinstance(doc["down"], bool):
                raise ValueError("down must be true or false")
            return Key(code, doc["down"])
        raise ValueError("unknown input event")
    except (ValueError, RecursionError) as exc:
        return _bad(f"input: {exc}")
