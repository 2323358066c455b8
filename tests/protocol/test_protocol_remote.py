"""Plaintext of remote sessions: every message type round-trips, hostile input is refused.

``decode`` never raises: whatever the other end sends, the answer is a message or a
ProtocolError naming the problem.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import FAST, check_error

from protocol import remote
from protocol.errors import ErrorCode, ProtocolError
from protocol.remote import (
    Chat,
    Cursor,
    Encoding,
    Frame,
    FrameAck,
    Key,
    Monitor,
    PointerButton,
    PointerMove,
    Rect,
    Screens,
    SelectMonitor,
    Wheel,
    copy_data,
    decode,
    encode,
    fill_data,
)

JPEG = b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n not really a png"

EXAMPLES: list[remote.RemoteMessage] = [
    Frame(0, 0, 1, 1, ()),
    Frame(
        2**32 - 1,
        3,
        1920,
        1080,
        (
            Rect(0, 100, 1920, 900, Encoding.COPY, copy_data(0, 0)),
            Rect(0, 0, 64, 64, Encoding.FILL, fill_data(255, 0, 128)),
            Rect(64, 0, 128, 64, Encoding.JPEG, JPEG),
            Rect(1856, 1016, 64, 64, Encoding.PNG, PNG),
        ),
    ),
    Frame(7, 0, remote.MAX_DIMENSION, remote.MAX_DIMENSION, ()),
    Cursor(0, 0),
    Cursor(65535, 65535),
    Cursor(10, 20, 3, 4, PNG),
    Screens((Monitor(0, 0, 0, 3840, 1080), Monitor(1, 0, 0, 1920, 1080)), 1),
    Screens((Monitor(1, -1920, -200, 1920, 1080),), 1),
    Chat(""),
    Chat("Bonjour, je prends la main 👋"),
    Chat("é" * 1000),  # 2000 bytes exactly
    FrameAck(0),
    FrameAck(2**32 - 1),
    PointerMove(0, 0),
    PointerMove(remote.MAX_DIMENSION * 4, 12),
    PointerButton(1, True),
    PointerButton(3, False),
    Wheel(-100, 100),
    Wheel(0, -3),
    Key("KeyA", True),
    Key("ShiftLeft", False),
    Key("F12", True),
    SelectMonitor(0),
    SelectMonitor(remote.MAX_MONITORS),
]


def bad(data: bytes, *words: str) -> ProtocolError:
    result = decode(data)
    assert isinstance(result, ProtocolError), result
    check_error(result)
    assert result.code is ErrorCode.INVALID_MESSAGE
    for word in words:
        assert word in result.message, result.message
    return result


def frame_bytes(width: int, height: int, *rects: tuple[int, int, int, int, int, bytes]) -> bytes:
    head = struct.pack(">BIBHHH", 0x10, 1, 0, width, height, len(rects))
    body = b"".join(
        struct.pack(">HHHHBI", x, y, w, h, enc, len(data)) + data for x, y, w, h, enc, data in rects
    )
    return head + body


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: remote.RemoteMessage) -> None:
    data = encode(message)
    assert decode(data) == message
    assert encode(decode(data)) == data  # type: ignore[arg-type]


def test_examples_cover_every_type() -> None:
    kinds = {type(m) for m in EXAMPLES}
    assert kinds == {
        Frame,
        Cursor,
        Screens,
        Chat,
        FrameAck,
        PointerMove,
        PointerButton,
        Wheel,
        Key,
        SelectMonitor,
    }
    first_bytes = {encode(m)[0] for m in EXAMPLES}
    assert first_bytes == {k.value for k in remote.Kind}


def test_wire_layouts() -> None:
    assert encode(FrameAck(258)) == b"\x20\x00\x00\x01\x02"
    assert encode(SelectMonitor(2)) == b"\x22\x02"
    assert encode(Chat("hé")) == b"\x13h\xc3\xa9"
    assert encode(Cursor(1, 2)) == b"\x11\x00\x01\x00\x02"
    assert encode(Cursor(1, 2, 3, 4, b"P")) == b"\x11\x00\x01\x00\x02\x00\x03\x00\x04P"
    assert encode(PointerMove(5, 6)) == b'\x21{"t":"move","x":5,"y":6}'
    assert encode(PointerButton(2, True)) == b'\x21{"t":"button","b":2,"down":true}'
    assert encode(Wheel(0, -1)) == b'\x21{"t":"wheel","dx":0,"dy":-1}'
    assert encode(Key("Enter", False)) == b'\x21{"t":"key","code":"Enter","down":false}'
    frame = Frame(9, 1, 4, 3, (Rect(1, 1, 2, 2, Encoding.FILL, b"\x01\x02\x03"),))
    assert encode(frame) == (
        b"\x10\x00\x00\x00\x09\x01\x00\x04\x00\x03\x00\x01"
        b"\x00\x01\x00\x01\x00\x02\x00\x02\x04\x00\x00\x00\x03\x01\x02\x03"
    )
    screens = Screens((Monitor(1, 0, 0, 800, 600),), 1)
    assert json.loads(encode(screens)[1:]) == {
        "monitors": [{"index": 1, "left": 0, "top": 0, "width": 800, "height": 600}],
        "current": 1,
    }


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError):
        encode("chat")  # type: ignore[arg-type]


# --- strategies -------------------------------------------------------------------------

u16 = st.integers(min_value=0, max_value=65535)
u32 = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    width = draw(st.integers(min_value=1, max_value=remote.MAX_DIMENSION))
    height = draw(st.integers(min_value=1, max_value=remote.MAX_DIMENSION))
    rects = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        w = draw(st.integers(min_value=1, max_value=width))
        h = draw(st.integers(min_value=1, max_value=height))
        x = draw(st.integers(min_value=0, max_value=width - w))
        y = draw(st.integers(min_value=0, max_value=height - h))
        encoding = draw(st.sampled_from(Encoding))
        if encoding is Encoding.COPY:
            data = copy_data(
                draw(st.integers(min_value=0, max_value=width - w)),
                draw(st.integers(min_value=0, max_value=height - h)),
            )
        elif encoding is Encoding.FILL:
            data = draw(st.binary(min_size=3, max_size=3))
        else:
            data = draw(st.binary(min_size=1, max_size=40))
        rects.append(Rect(x, y, w, h, encoding, data))
    return Frame(draw(u32), draw(st.integers(0, 255)), width, height, tuple(rects))


monitors = st.builds(
    Monitor,
    st.integers(0, remote.MAX_MONITORS),
    st.integers(-remote.MAX_DIMENSION, remote.MAX_DIMENSION),
    st.integers(-remote.MAX_DIMENSION, remote.MAX_DIMENSION),
    st.integers(1, remote.MAX_DIMENSION),
    st.integers(1, remote.MAX_DIMENSION),
)

messages: st.SearchStrategy[remote.RemoteMessage] = st.one_of(
    frames(),
    st.builds(Cursor, u16, u16),
    st.builds(Cursor, u16, u16, u16, u16, st.binary(min_size=1, max_size=40)),
    st.builds(
        Screens,
        st.lists(monitors, min_size=1, max_size=4).map(tuple),
        st.integers(0, remote.MAX_MONITORS),
    ),
    st.text(max_size=500)
    .filter(lambda t: len(t.encode("utf-8", "surrogatepass")) <= 2000)
    .filter(lambda t: not any(0xD800 <= ord(c) <= 0xDFFF for c in t))
    .map(Chat),
    st.builds(FrameAck, u32),
    st.builds(
        PointerMove,
        st.integers(0, remote.MAX_DIMENSION * 4),
        st.integers(0, remote.MAX_DIMENSION * 4),
    ),
    st.builds(PointerButton, st.sampled_from([1, 2, 3]), st.booleans()),
    st.builds(Wheel, st.integers(-100, 100), st.integers(-100, 100)),
    st.builds(
        Key,
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            min_size=1,
            max_size=32,
        ),
        st.booleans(),
    ),
    st.builds(SelectMonitor, st.integers(0, remote.MAX_MONITORS)),
)


@given(messages)
@FAST
def test_every_valid_message_round_trips(message: remote.RemoteMessage) -> None:
    data = encode(message)
    assert decode(data) == message


def check_decoded(data: bytes) -> None:
    result = decode(data)
    if isinstance(result, ProtocolError):
        check_error(result)
        return
    # Whatever is accepted is a valid message that encodes again and decodes equal.
    again = decode(encode(result))
    assert again == result


@given(st.binary(max_size=300))
@FAST
def test_decode_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    check_decoded(data)


@given(st.sampled_from(sorted(k.value for k in remote.Kind)), st.binary(max_size=300))
@FAST
def test_decode_never_raises_on_arbitrary_bodies(kind: int, body: bytes) -> None:
    check_decoded(bytes([kind]) + body)


@given(messages, st.data())
@FAST
def test_decode_never_raises_on_mutated_messages(
    message: remote.RemoteMessage, data: st.DataObject
) -> None:
    raw = bytearray(encode(message))
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "truncate":
            del raw[at:]
        elif op == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and raw:
            del raw[at]
    check_decoded(bytes(raw))


@given(
    st.dictionaries(
        st.sampled_from(["t", "x", "y", "b", "down", "dx", "dy", "code"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=40),
            st.sampled_from(["move", "button", "wheel", "key"]),
        ),
    )
)
@FAST
def test_decode_never_raises_on_input_like_json(doc: dict[str, object]) -> None:
    check_decoded(b"\x21" + json.dumps(doc).encode())


# --- hostile decodes --------------------------------------------------------------------


def test_empty_and_unknown() -> None:
    bad(b"", "empty")
    bad(b"\x00", "unknown type 0x00")
    bad(b"\x14hello", "unknown type 0x14")
    bad(b"\x03sealed?", "unknown type 0x03")
    bad(b"\x13" + b"x" * remote.MAX_PLAINTEXT, "too large")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x10", "truncated frame"),
        (frame_bytes(1, 1)[:-1], "truncated frame"),
        (frame_bytes(0, 10), "frame size"),
        (frame_bytes(10, 0), "frame size"),
        (frame_bytes(remote.MAX_DIMENSION + 1, 10), "frame size"),
        (frame_bytes(10, 10) + b"\x00", "trailing bytes"),
        (frame_bytes(10, 10, (0, 0, 10, 10, 4, b"\x01\x02\x03")) + b"\x00", "trailing bytes"),
        (struct.pack(">BIBHHH", 0x10, 1, 0, 10, 10, 1), "truncated rect"),
        (struct.pack(">BIBHHH", 0x10, 1, 0, 10, 10, 1) + b"\x00" * 12, "truncated rect"),
        (
            struct.pack(">BIBHHH", 0x10, 1, 0, 10, 10, 1)
            + struct.pack(">HHHHBI", 0, 0, 1, 1, 4, 3)
            + b"\x01\x02",
            "past the end",
        ),
        (
            struct.pack(">BIBHHH", 0x10, 1, 0, 10, 10, 1)
            + struct.pack(">HHHHBI", 0, 0, 1, 1, 1, 2**32 - 1),
            "past the end",
        ),
        (frame_bytes(10, 10, (5, 0, 6, 1, 4, b"\x01\x02\x03")), "outside the frame"),
        (frame_bytes(10, 10, (0, 9, 1, 2, 4, b"\x01\x02\x03")), "outside the frame"),
        (frame_bytes(10, 10, (0, 0, 0, 1, 4, b"\x01\x02\x03")), "outside the frame"),
        (frame_bytes(10, 10, (0, 0, 1, 0, 4, b"\x01\x02\x03")), "outside the frame"),
        (frame_bytes(10, 10, (65535, 0, 2, 1, 4, b"\x01\x02\x03")), "outside the frame"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 0, b"x")), "unknown encoding 0"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 5, b"x")), "unknown encoding 5"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 1, b"")), "empty image"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 2, b"")), "empty image"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 4, b"\x01\x02")), "fill rect of the wrong size"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 4, b"\x01\x02\x03\x04")), "fill rect"),
        (frame_bytes(10, 10, (0, 0, 1, 1, 3, b"\x00\x00\x00")), "copy rect of the wrong size"),
        (frame_bytes(10, 10, (0, 0, 2, 2, 3, copy_data(9, 0))), "copy source outside"),
        (frame_bytes(10, 10, (0, 0, 2, 2, 3, copy_data(0, 9))), "copy source outside"),
        (frame_bytes(10, 10, (0, 0, 2, 2, 3, copy_data(65535, 65535))), "copy source outside"),
    ],
)
def test_hostile_frames(data: bytes, words: str) -> None:
    bad(data, words)


def test_frame_edges_are_accepted() -> None:
    data = frame_bytes(
        10,
        10,
        (0, 0, 10, 10, 3, copy_data(0, 0)),
        (9, 9, 1, 1, 3, copy_data(9, 9)),
        (0, 0, 10, 10, 4, b"\x00\x00\x00"),
    )
    result = decode(data)
    assert isinstance(result, Frame)
    assert [r.encoding for r in result.rects] == [Encoding.COPY, Encoding.COPY, Encoding.FILL]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x11", "truncated cursor"),
        (b"\x11\x00\x01\x00", "truncated cursor"),
        (b"\x11\x00\x01\x00\x02\x00", "truncated cursor shape"),
        (b"\x11\x00\x01\x00\x02\x00\x03\x00\x04", "truncated cursor shape"),
    ],
)
def test_hostile_cursors(data: bytes, words: str) -> None:
    bad(data, words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "screens"),
        (b"not json", "screens"),
        (b"[]", "expected"),
        (b'{"monitors": {}, "current": 0}', "expected"),
        (b'{"monitors": [], "current": 0}', "number of monitors"),
        (b'{"monitors": [1], "current": 0}', "must be an object"),
        (
            b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 0, "height": 1}], "current": 0}',
            "width",
        ),
        (
            b'{"monitors": [{"index": 17, "left": 0, "top": 0, "width": 1, "height": 1}], "current": 0}',
            "index",
        ),
        (
            b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}], "current": true}',
            "current",
        ),
        (
            b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1.0, "height": 1}], "current": 0}',
            "width",
        ),
        (b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}]}', "current"),
        (b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1}], "current": 0}', "height"),
        (
            b'{"monitors": [{"index": 0, "left": -16385, "top": 0, "width": 1, "height": 1}], "current": 0}',
            "left",
        ),
        (
            b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": NaN}], "current": 0}',
            "height",
        ),
        (
            b'{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}], "current": 0}\xff',
            "screens",
        ),
        (
            b'{"monitors": ['
            + b'{"index":0,"left":0,"top":0,"width":1,"height":1},' * 17
            + b'{"index":0,"left":0,"top":0,"width":1,"height":1}], "current": 0}',
            "number of monitors",
        ),
        (b" " * (remote.MAX_SCREENS_BYTES + 1), "too large"),
    ],
)
def test_hostile_screens(body: bytes, words: str) -> None:
    bad(b"\x12" + body, words)


def test_deeply_nested_screens_json_is_refused() -> None:
    bad(b"\x12" + b"[" * remote.MAX_SCREENS_BYTES, "screens")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "input"),
        (b"{", "input"),
        (b"[]", "is an object"),
        (b'"move"', "is an object"),
        (b'{"t": "move", "x": 1}', "unknown input event"),
        (b'{"t": "move", "x": 1, "y": 2, "z": 3}', "unknown input event"),
        (b'{"t": "move", "x": -1, "y": 2}', "x must be"),
        (b'{"t": "move", "x": 1.5, "y": 2}', "x must be"),
        (b'{"t": "move", "x": true, "y": 2}', "x must be"),
        (b'{"t": "move", "x": "1", "y": 2}', "x must be"),
        (b'{"t": "move", "x": 65537, "y": 2}', "x must be"),
        (b'{"t": "button", "b": 4, "down": true}', "b must be"),
        (b'{"t": "button", "b": 0, "down": true}', "b must be"),
        (b'{"t": "button", "b": 1, "down": 1}', "down must be"),
        (b'{"t": "wheel", "dx": 101, "dy": 0}', "dx must be"),
        (b'{"t": "wheel", "dx": 0, "dy": -101}', "dy must be"),
        (b'{"t": "key", "code": "", "down": true}', "KeyboardEvent.code"),
        (b'{"t": "key", "code": "Key A", "down": true}', "KeyboardEvent.code"),
        (b'{"t": "key", "code": "' + b"A" * 33 + b'", "down": true}', "KeyboardEvent.code"),
        (b'{"t": "key", "code": 65, "down": true}', "KeyboardEvent.code"),
        (b'{"t": "key", "code": "KeyA", "down": null}', "down must be"),
        (b'{"t": "type", "text": "rm -rf /"}', "unknown input event"),
        (b'{"t": "move", "x": 1, "y": 2}\xff', "input"),
        (b'{"t": "move", "x": 1, "y": 2, "pad": "' + b"x" * 250 + b'"}', "too large"),
    ],
)
def test_hostile_input(body: bytes, words: str) -> None:
    bad(b"\x21" + body, words)


def test_hostile_chat_ack_and_monitor() -> None:
    bad(b"\x13" + "é".encode() * 1000 + b"x", "over 2000 bytes")
    bad(b"\x13" + b"x" * 2001, "over 2000 bytes")
    bad(b"\x13\xff\xfe", "decode")
    bad(b"\x13\xc3", "decode")
    bad(b"\x13\xed\xa0\x80", "decode")  # an encoded surrogate is not UTF-8
    bad(b"\x20\x00\x00\x00", "ack of the wrong size")
    bad(b"\x20\x00\x00\x00\x00\x00", "ack of the wrong size")
    bad(b"\x22", "monitor choice of the wrong size")
    bad(b"\x22\x00\x00", "monitor choice of the wrong size")
    bad(b"\x22\x11", "no such monitor")
    bad(b"\x22\xff", "no such monitor")
    assert decode(b"\x13" + b"x" * 2000) == Chat("x" * 2000)
