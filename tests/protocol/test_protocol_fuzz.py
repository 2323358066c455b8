"""Decoders never raise: arbitrary bytes and mutated valid encodings give a value or an error.

Whatever a decoder accepts must also be a valid value: a decoded frame re-encodes to the
very same bytes, a decoded message can be encoded again and decodes back equal.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import (
    FAST,
    MESSAGE_STRATEGIES,
    any_message,
    check_error,
    control,
    json_values,
    payload_of,
)

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import (
    HEADER,
    MAGIC,
    PROTOCOL_VERSION,
    Frame,
    FrameReader,
    decode_frame,
    encode_frame,
)
from protocol.messages import (
    Message,
    decode_message,
    encode_message,
    message_from_payload,
    message_types,
)

# --- checks on whatever a decoder returns -----------------------------------------------


def check_frame_result(data: bytes, result: object) -> None:
    if isinstance(result, ProtocolError):
        check_error(result)
        return
    assert isinstance(result, Frame)
    assert encode_frame(result) == data


def check_message_result(result: object) -> None:
    if isinstance(result, ProtocolError):
        check_error(result)
        return
    assert isinstance(result, Message)
    assert type(result) is message_types()[result.TYPE]
    again = decode_message(encode_message(result))
    assert again == result


# --- mutations --------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip, insert, delete, overwrite or truncate a few bytes of ``original``."""
    data = bytearray(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "set", "truncate", "dup"]))
        at = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(min_value=1, max_value=4))]
        elif op == "set" and data:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "truncate":
            del data[at:]
        elif op == "dup" and data:
            data[at:at] = data[at : at + draw(st.integers(min_value=1, max_value=8))]
    return bytes(data)


@st.composite
def mutated_encoding(draw: st.DrawFn) -> bytes:
    return draw(mutated(encode_message(draw(any_message))))


@st.composite
def mutated_payload(draw: st.DrawFn) -> bytes:
    return draw(mutated(payload_of(draw(any_message))))


# Headers that pass or nearly pass validation, so the body checks get exercised too.
near_headers = st.builds(
    HEADER.pack,
    st.sampled_from([MAGIC, b"BE", b"\x00\x00"]),
    st.sampled_from([PROTOCOL_VERSION, 0, 2, 255]),
    st.sampled_from([1, 2, 0, 3, 255]),
    st.sampled_from([0, 1, 2**32 - 1]),
    st.integers(min_value=0, max_value=64) | st.sampled_from([2**18, 2**18 + 1, 2**32 - 1]),
)


# --- frames -----------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=256))
def test_decode_frame_arbitrary_bytes(data: bytes) -> None:
    check_frame_result(data, decode_frame(data))


@FAST
@given(near_headers, st.binary(max_size=80))
def test_decode_frame_plausible_headers(header: bytes, body: bytes) -> None:
    data = header + body
    check_frame_result(data, decode_frame(data))


@FAST
@given(mutated_encoding())
def test_decode_frame_mutated(data: bytes) -> None:
    check_frame_result(data, decode_frame(data))


@FAST
@given(st.lists(st.binary(max_size=64) | near_headers, max_size=10))
def test_frame_reader_arbitrary_chunks(chunks: list[bytes]) -> None:
    reader = FrameReader()
    got: list[Frame] = []
    for chunk in chunks:
        reader.feed(chunk)
        got += reader.frames()
    reader.end_of_stream()
    got += reader.frames()
    assert all(isinstance(f, Frame) for f in got)
    if reader.error is not None:
        check_error(reader.error)
    # What the reader accepted is exactly a prefix of the stream.
    stream = b"".join(chunks)
    prefix = b"".join(encode_frame(f) for f in got)
    assert stream.startswith(prefix)
    if reader.error is None:
        assert stream == prefix


@FAST
@given(st.lists(any_message, max_size=4), st.data())
def test_frame_reader_mutated_stream(messages: list[Message], data: st.DataObject) -> None:
    stream = data.draw(mutated(b"".join(encode_message(m) for m in messages)))
    reader = FrameReader()
    reader.feed(stream)
    reader.end_of_stream()
    got = reader.frames()
    assert stream.startswith(b"".join(encode_frame(f) for f in got))
    if reader.error is not None:
        check_error(reader.error)


# --- messages ---------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=256))
def test_decode_message_arbitrary_bytes(data: bytes) -> None:
    check_message_result(decode_message(data))


@FAST
@given(st.binary(max_size=256))
def test_message_from_payload_arbitrary_bytes(payload: bytes) -> None:
    check_message_result(message_from_payload(payload))


@FAST
@given(st.text(max_size=200))
def test_message_from_payload_arbitrary_text(text: str) -> None:
    check_message_result(message_from_payload(text.encode()))


@FAST
@given(mutated_encoding())
def test_decode_message_mutated(data: bytes) -> None:
    check_message_result(decode_message(data))


@FAST
@given(mutated_payload())
def test_message_from_payload_mutated(payload: bytes) -> None:
    check_message_result(message_from_payload(payload))
    check_message_result(decode_message(control(payload)))


# What JSON allows but Python handles badly: numbers of any size (JSON puts no bound on
# them) and strings holding lone surrogate escapes.
hostile_json = st.integers(min_value=-(10**400), max_value=10**400) | st.sampled_from(
    [10**400, -(10**309), 2**1024, "\ud800", "x\udfff", {"\udc80": 1}, ["\ud800"]]
)


@st.composite
def wild_json(draw: st.DrawFn) -> object:
    """Any JSON value; hostile ones half of the time."""
    if draw(st.booleans()):
        return draw(hostile_json)
    return draw(json_values(3))


@FAST
@given(
    st.sampled_from(sorted(MESSAGE_STRATEGIES)),
    st.data(),
)
def test_message_from_payload_fields_replaced_by_any_json(name: str, data: st.DataObject) -> None:
    """Keep the envelope valid and put arbitrary JSON in the fields."""
    obj = json.loads(payload_of(data.draw(MESSAGE_STRATEGIES[name])))
    keys = data.draw(st.lists(st.sampled_from(sorted(obj)), max_size=3, unique=True))
    for key in keys:
        obj[key] = data.draw(wild_json())
    if data.draw(st.booleans()):
        obj[data.draw(st.text(max_size=8))] = data.draw(wild_json())
    payload = json.dumps(obj).encode()
    check_message_result(message_from_payload(payload))


@FAST
@given(st.dictionaries(st.text(max_size=10), json_values(2), max_size=6), st.data())
def test_message_from_payload_any_object_with_a_known_type(
    obj: dict[str, object], data: st.DataObject
) -> None:
    obj["type"] = data.draw(st.sampled_from(sorted(message_types())))
    obj["v"] = data.draw(st.sampled_from([1, 1, 1, 0, 2, "1", None]))
    result = message_from_payload(json.dumps(obj).encode())
    check_message_result(result)


# --- errors -----------------------------------------------------------------------------


@FAST
@given(st.sampled_from(list(ErrorCode)), st.text(max_size=600))
def test_any_error_fits_a_close_frame(code: ErrorCode, message: str) -> None:
    error = ProtocolError(code, message or "x")
    check_error(error)
    reason = error.close_reason
    full = f"{code}: {message or 'x'}"
    if len(full.encode()) <= 123:
        assert reason == full
    else:
        assert reason.endswith("...")
        assert full.startswith(reason[:-3])
