"""Binary framing: encode/decode, every refusal of decode_frame, the incremental reader."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import FAST, check_error

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_CONTROL_PAYLOAD,
    MAX_DATA_PAYLOAD,
    MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Frame,
    FrameKind,
    FrameReader,
    decode_frame,
    encode_frame,
)

LIMITS = {FrameKind.CONTROL: MAX_CONTROL_PAYLOAD, FrameKind.DATA: MAX_DATA_PAYLOAD}

channels = st.integers(min_value=0, max_value=2**32 - 1)
control_frames = st.builds(Frame, st.just(FrameKind.CONTROL), st.binary(max_size=2048))
data_frames = st.builds(Frame, st.just(FrameKind.DATA), st.binary(max_size=2048), channels)
frames = control_frames | data_frames


def header(
    *,
    magic: bytes = MAGIC,
    version: int = PROTOCOL_VERSION,
    kind: int = FrameKind.DATA,
    channel: int = 0,
    length: int = 0,
) -> bytes:
    return HEADER.pack(magic, version, kind, channel, length)


def refused(data: bytes) -> ProtocolError:
    result = decode_frame(data)
    assert isinstance(result, ProtocolError), result
    check_error(result)
    return result


# --- encode / decode ---------------------------------------------------------------------


@FAST
@given(frames)
def test_round_trip(frame: Frame) -> None:
    data = encode_frame(frame)
    assert len(data) == HEADER_SIZE + len(frame.payload)
    decoded = decode_frame(data)
    assert decoded == frame
    assert isinstance(decoded, Frame)
    assert decoded.payload == frame.payload
    assert decoded.channel == frame.channel
    assert decoded.kind is frame.kind
    assert decoded.version == PROTOCOL_VERSION


@FAST
@given(frames)
def test_wire_layout(frame: Frame) -> None:
    data = encode_frame(frame)
    assert data[:2] == MAGIC
    assert data[2] == PROTOCOL_VERSION
    assert data[3] == frame.kind.value
    assert int.from_bytes(data[4:8], "big") == frame.channel
    assert int.from_bytes(data[8:12], "big") == len(frame.payload)
    assert data[12:] == frame.payload


@pytest.mark.parametrize("kind", list(FrameKind))
def test_payload_at_the_limit_round_trips(kind: FrameKind) -> None:
    frame = Frame(kind, b"\xab" * LIMITS[kind], channel=0)
    assert decode_frame(encode_frame(frame)) == frame


def test_largest_data_frame_is_exactly_max_frame_size() -> None:
    data = encode_frame(Frame(FrameKind.DATA, bytes(MAX_DATA_PAYLOAD), channel=9))
    assert len(data) == MAX_FRAME_SIZE
    assert isinstance(decode_frame(data), Frame)


@pytest.mark.parametrize("kind", list(FrameKind))
def test_encode_refuses_oversize_payload(kind: FrameKind) -> None:
    with pytest.raises(ValueError, match="over limit"):
        encode_frame(Frame(kind, bytes(LIMITS[kind] + 1)))


@FAST
@given(st.integers(min_value=1, max_value=2**32 - 1))
def test_encode_refuses_control_frame_on_a_channel(channel: int) -> None:
    with pytest.raises(ValueError, match="channel 0"):
        encode_frame(Frame(FrameKind.CONTROL, b"{}", channel=channel))


def test_repr_never_shows_the_payload() -> None:
    frame = Frame(FrameKind.DATA, b"secret-token-value", channel=3)
    assert "secret" not in repr(frame)
    assert "18 bytes" in repr(frame)


# --- every refusal of decode_frame ------------------------------------------------------


@FAST
@given(st.binary(min_size=2, max_size=2).filter(lambda m: m != MAGIC), st.binary(max_size=16))
def test_bad_magic(magic: bytes, payload: bytes) -> None:
    error = refused(header(magic=magic, length=len(payload)) + payload)
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert "magic" in error.message


@FAST
@given(st.integers(min_value=0, max_value=255).filter(lambda v: v not in SUPPORTED_VERSIONS))
def test_unsupported_version_byte(version: int) -> None:
    error = refused(header(version=version, length=2) + b"{}")
    assert error.code is ErrorCode.UNSUPPORTED_VERSION
    assert str(version) in error.message


@FAST
@given(st.integers(min_value=0, max_value=255).filter(lambda k: k not in set(FrameKind)))
def test_unknown_kind(kind: int) -> None:
    error = refused(header(kind=kind, length=1) + b"x")
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert f"kind {kind}" in error.message


@FAST
@given(st.integers(min_value=1, max_value=2**32 - 1))
def test_control_frame_on_nonzero_channel(channel: int) -> None:
    error = refused(header(kind=FrameKind.CONTROL, channel=channel, length=2) + b"{}")
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert "channel" in error.message


@pytest.mark.parametrize("kind", list(FrameKind))
@pytest.mark.parametrize("excess", [1, 1000, 2**32 - 1])
def test_announced_length_over_the_kind_limit(kind: FrameKind, excess: int) -> None:
    length = min(LIMITS[kind] + excess, 2**32 - 1)
    # The header alone is enough to refuse: no need to send the bytes.
    error = refused(header(kind=kind, length=length))
    assert error.code is ErrorCode.FRAME_TOO_LARGE
    assert str(length) in error.message


def test_control_length_allowed_for_data_is_still_too_large_for_control() -> None:
    length = MAX_CONTROL_PAYLOAD + 1
    assert length <= MAX_DATA_PAYLOAD
    error = refused(header(kind=FrameKind.CONTROL, length=length) + bytes(length))
    assert error.code is ErrorCode.FRAME_TOO_LARGE


@pytest.mark.parametrize("size", range(HEADER_SIZE))
def test_shorter_than_a_header_is_truncated(size: int) -> None:
    data = encode_frame(Frame(FrameKind.DATA, b"payload", channel=1))[:size]
    error = refused(data)
    assert error.code is ErrorCode.TRUNCATED_FRAME


@FAST
@given(frames.filter(lambda f: len(f.payload) > 0), st.data())
def test_body_shorter_than_announced_is_truncated(frame: Frame, data: st.DataObject) -> None:
    encoded = encode_frame(frame)
    cut = data.draw(st.integers(min_value=HEADER_SIZE, max_value=len(encoded) - 1))
    error = refused(encoded[:cut])
    assert error.code is ErrorCode.TRUNCATED_FRAME
    assert str(len(frame.payload)) in error.message


@FAST
@given(frames, st.binary(min_size=1, max_size=64))
def test_body_longer_than_announced_is_malformed(frame: Frame, extra: bytes) -> None:
    error = refused(encode_frame(frame) + extra)
    assert error.code is ErrorCode.MALFORMED_FRAME
    assert str(len(frame.payload) + len(extra)) in error.message


@pytest.mark.parametrize("excess", [1, 100])
def test_whole_message_over_max_frame_size(excess: int) -> None:
    data = encode_frame(Frame(FrameKind.DATA, bytes(MAX_DATA_PAYLOAD))) + bytes(excess)
    error = refused(data)
    assert error.code is ErrorCode.FRAME_TOO_LARGE
    assert str(len(data)) in error.message


def test_oversize_message_is_refused_before_its_header_is_read() -> None:
    # Garbage of an absurd size is refused as too large, not parsed.
    error = refused(b"\x00" * (MAX_FRAME_SIZE + 1))
    assert error.code is ErrorCode.FRAME_TOO_LARGE


# --- FrameReader ------------------------------------------------------------------------


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@FAST
@given(st.lists(frames, max_size=8), st.lists(st.integers(min_value=0), max_size=20))
def test_reader_reassembles_any_chunking(sent: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    reader = FrameReader()
    received: list[Frame] = []
    for chunk in split(stream, cuts):
        reader.feed(chunk)
        received += reader.frames()
    reader.end_of_stream()
    assert reader.error is None
    assert received == sent
    assert reader.frames() == []


@FAST
@given(st.lists(frames, min_size=1, max_size=5))
def test_reader_byte_by_byte(sent: list[Frame]) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    reader = FrameReader()
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
    assert reader.frames() == sent
    reader.end_of_stream()
    assert reader.error is None


def test_reader_frames_drains() -> None:
    reader = FrameReader()
    frame = Frame(FrameKind.DATA, b"abc", channel=4)
    reader.feed(encode_frame(frame) * 2)
    assert reader.frames() == [frame, frame]
    assert reader.frames() == []


def test_reader_empty_feed_and_clean_end() -> None:
    reader = FrameReader()
    reader.feed(b"")
    reader.end_of_stream()
    assert reader.error is None
    assert reader.frames() == []


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (header(magic=b"XX", length=0), ErrorCode.MALFORMED_FRAME),
        (header(version=99, length=0), ErrorCode.UNSUPPORTED_VERSION),
        (header(kind=7, length=0), ErrorCode.MALFORMED_FRAME),
        (header(kind=FrameKind.CONTROL, channel=1, length=0), ErrorCode.MALFORMED_FRAME),
        (header(kind=FrameKind.DATA, length=MAX_DATA_PAYLOAD + 1), ErrorCode.FRAME_TOO_LARGE),
        (header(kind=FrameKind.CONTROL, length=MAX_CONTROL_PAYLOAD + 1), ErrorCode.FRAME_TOO_LARGE),
    ],
)
def test_reader_error_is_sticky(bad: bytes, code: ErrorCode) -> None:
    good = Frame(FrameKind.DATA, b"before", channel=2)
    reader = FrameReader()
    reader.feed(encode_frame(good) + bad)
    assert reader.error is not None
    assert reader.error.code is code
    check_error(reader.error)
    first_error = reader.error
    # Frames completed before the error are still handed out...
    assert reader.frames() == [good]
    # ...but nothing after it is parsed, and the first error stays.
    reader.feed(encode_frame(Frame(FrameKind.DATA, b"after", channel=2)))
    reader.end_of_stream()
    assert reader.frames() == []
    assert reader.error is first_error


def test_reader_refuses_oversize_announcement_without_waiting_for_the_body() -> None:
    reader = FrameReader()
    reader.feed(header(kind=FrameKind.DATA, length=MAX_DATA_PAYLOAD + 1))
    assert reader.error is not None
    assert reader.error.code is ErrorCode.FRAME_TOO_LARGE


@FAST
@given(frames, st.data())
def test_reader_end_of_stream_inside_a_frame_is_truncated(
    frame: Frame, data: st.DataObject
) -> None:
    encoded = encode_frame(frame)
    cut = data.draw(st.integers(min_value=1, max_value=len(encoded) - 1))
    reader = FrameReader()
    reader.feed(encoded[:cut])
    assert reader.error is None  # an incomplete frame is not an error yet
    assert reader.frames() == []
    reader.end_of_stream()
    assert reader.error is not None
    assert reader.error.code is ErrorCode.TRUNCATED_FRAME
    assert str(cut) in reader.error.message
    check_error(reader.error)
    reader.feed(encoded[cut:])
    assert reader.frames() == []


def test_reader_keeps_complete_frames_when_the_stream_ends_inside_the_next() -> None:
    frame = Frame(FrameKind.CONTROL, b"{}")
    reader = FrameReader()
    reader.feed(encode_frame(frame) + encode_frame(frame)[:5])
    reader.end_of_stream()
    assert reader.frames() == [frame]
    assert reader.error is not None
    assert reader.error.code is ErrorCode.TRUNCATED_FRAME
