"""Control messages: round trips for every registered type, and strict decoding."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import (
    EXAMPLES,
    FAST,
    MESSAGE_STRATEGIES,
    FieldSpec,
    all_field_specs,
    check_error,
    control,
    dumps,
    payload_of,
    sample,
    wire_object,
)

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import Frame, FrameKind, encode_frame
from protocol.messages import (
    MAX_JSON_DEPTH,
    Ack,
    Deliver,
    ExactLen,
    MaxLen,
    Message,
    Range,
    decode_message,
    encode_message,
    message_from_payload,
    message_types,
)

TYPES = sorted(message_types())
SPECS = all_field_specs()


def spec_id(spec: FieldSpec) -> str:
    return str(spec)


def decode_obj(obj: object) -> Message | ProtocolError:
    """Decode a JSON value through the whole stack (frame, then payload)."""
    return decode_message(control(dumps(obj)))


def refused(obj: object, code: ErrorCode = ErrorCode.INVALID_MESSAGE) -> ProtocolError:
    result = decode_obj(obj)
    assert isinstance(result, ProtocolError), f"accepted {obj!r:.200} as {result!r:.200}"
    assert result.code is code, result
    check_error(result)
    return result


def mentions(error: ProtocolError, name: str) -> bool:
    """The error names the field, quoted (``'sent_at'``, ``"versions[0]"``)."""
    return re.search(rf"['\"`]{re.escape(name)}['\"`\[]", error.message) is not None


def valid_object(spec: FieldSpec) -> dict[str, Any]:
    return wire_object(sample(spec.message))


# --- coverage of the registry -----------------------------------------------------------


def test_examples_cover_every_registered_type() -> None:
    assert set(EXAMPLES) == set(message_types())


def test_strategies_cover_every_registered_type() -> None:
    assert set(MESSAGE_STRATEGIES) == set(message_types())


def test_registry_is_keyed_by_type_name() -> None:
    for name, cls in message_types().items():
        assert cls.TYPE == name
        assert isinstance(cls.VERSION, int) and cls.VERSION >= 1


def test_examples_are_of_their_registered_type() -> None:
    types = message_types()
    for name, examples in EXAMPLES.items():
        assert examples, name
        for example in examples:
            assert type(example) is types[name]


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [m for name in TYPES for m in EXAMPLES[name]],
    ids=lambda m: m.TYPE,
)
def test_example_round_trip(message: Message) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize("name", TYPES)
@FAST
@given(data=st.data())
def test_generated_round_trip(name: str, data: st.DataObject) -> None:
    message = data.draw(MESSAGE_STRATEGIES[name])
    encoded = encode_message(message)
    assert decode_message(encoded) == message
    # The payload alone decodes the same way.
    assert message_from_payload(payload_of(message)) == message


@pytest.mark.parametrize("name", TYPES)
def test_wire_shape(name: str) -> None:
    message = sample(name)
    obj = wire_object(message)
    field_names = {spec.name for spec in SPECS if spec.message == name}
    assert obj["type"] == name
    assert obj["v"] == message.VERSION
    assert set(obj) == field_names | {"type", "v"}
    for spec in SPECS:
        if spec.message == name and spec.kind == "bytes":
            assert isinstance(obj[spec.name], str)  # base64 text, not a list of ints


def test_encoding_is_compact_ascii() -> None:
    """ASCII JSON: text with any code point (even a lone surrogate) always encodes."""
    message = Deliver(key="k", kind="note", body={"text": "écran"})
    payload = payload_of(message)
    assert payload.isascii()
    assert b"\\u00e9cran" in payload
    assert b" " not in payload
    assert decode_message(encode_message(message)) == message


# --- refusals of the envelope -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["nope", "", "Hello", "hello ", "x" * 1000])
def test_unknown_type(kind: str) -> None:
    error = refused({"type": kind, "v": 1}, ErrorCode.UNKNOWN_MESSAGE)
    assert kind[:10] in error.message


@pytest.mark.parametrize("kind", [None, 1, True, [], {}])
def test_type_must_be_a_string(kind: object) -> None:
    obj = wire_object(sample("hello"))
    obj["type"] = kind
    refused(obj)


def test_missing_type() -> None:
    obj = wire_object(sample("hello"))
    del obj["type"]
    refused(obj)


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("version", [0, 2, 99, -1, "1", None, True, [1], {"v": 1}, 1.5, "é" * 100])
def test_wrong_version(name: str, version: object) -> None:
    obj = wire_object(sample(name))
    obj["v"] = version
    error = refused(obj, ErrorCode.UNSUPPORTED_VERSION)
    assert name in error.message
    assert "version" in error.message


@pytest.mark.parametrize("name", TYPES)
def test_missing_version(name: str) -> None:
    obj = wire_object(sample(name))
    del obj["v"]
    refused(obj, ErrorCode.UNSUPPORTED_VERSION)


@pytest.mark.parametrize("version", ["\ud800", "x\udfff", ["\ud800"], {"\ud800": 1}])
def test_version_quoted_in_the_error_is_safe_text(version: object) -> None:
    # The refusal quotes the peer's "v": it must still make a close reason that encodes.
    obj = wire_object(sample("hello"))
    obj["v"] = version
    refused(obj, ErrorCode.UNSUPPORTED_VERSION)  # checks close_reason


def test_version_must_be_the_integer_not_an_equal_float() -> None:
    # true is refused although true == 1 in Python; 1.0 is the same kind of impostor.
    obj = wire_object(sample("hello"))
    obj["v"] = 1.0
    refused(obj, ErrorCode.UNSUPPORTED_VERSION)


@pytest.mark.parametrize("payload", [b"[]", b'"hello"', b"1", b"null", b"true", b"[{}]"])
def test_payload_must_be_an_object(payload: bytes) -> None:
    result = message_from_payload(payload)
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE
    assert "object" in result.message


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"{'type': 'hello'}", b'{"type":"hello",}', b"\xef\xbb\xbf{}", b"{}{}"],
)
def test_payload_must_be_json(payload: bytes) -> None:
    result = message_from_payload(payload)
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE
    check_error(result)


@pytest.mark.parametrize(
    "payload", [b"\xff", b'{"type":"\xc3"}', b'{"type":"hello\xed\xa0\x80"}', b"\x80{}"]
)
def test_invalid_utf8(payload: bytes) -> None:
    result = decode_message(control(payload))
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE
    check_error(result)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("name", ["heartbeat", "deliver"])
def test_nan_and_infinity_literals_are_not_json(token: str, name: str) -> None:
    obj = wire_object(sample(name))
    target = "sent_at" if name == "heartbeat" else "body"
    obj[target] = "__X__" if name == "heartbeat" else {"x": "__X__"}
    payload = dumps(obj).replace(b'"__X__"', token.encode())
    assert token.encode() in payload
    result = message_from_payload(payload)
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE


def test_data_frame_is_not_a_message() -> None:
    data = encode_frame(Frame(FrameKind.DATA, payload_of(sample("hello")), channel=1))
    result = decode_message(data)
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.UNEXPECTED_MESSAGE


def test_frame_errors_pass_through() -> None:
    result = decode_message(b"XX" + encode_message(sample("hello"))[2:])
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.MALFORMED_FRAME


# --- refusals of fields, derived from each message's declaration ------------------------


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("extra", ["extra", "Type", "V", "__class__", ""])
def test_unknown_field(name: str, extra: str) -> None:
    obj = wire_object(sample(name))
    obj[extra] = 1
    error = refused(obj)
    assert "unknown field" in error.message
    assert repr(extra) in error.message


@pytest.mark.parametrize("spec", [s for s in SPECS if s.required], ids=spec_id)
def test_missing_field(spec: FieldSpec) -> None:
    obj = valid_object(spec)
    del obj[spec.name]
    error = refused(obj)
    assert mentions(error, spec.name)
    assert "required" in error.message


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.required], ids=spec_id)
def test_missing_optional_field_takes_its_default(spec: FieldSpec) -> None:
    obj = valid_object(spec)
    del obj[spec.name]
    message = decode_obj(obj)
    assert isinstance(message, Message)
    assert getattr(message, spec.name) is None


WRONG_JSON_TYPES: dict[str, list[object]] = {
    "str": [1, 1.5, None, True, [], {}, ["x"]],
    "int": ["1", 1.5, 1.0, None, [], {}, [1]],
    "float": ["1.5", None, [], {}, [1.0]],
    "bytes": [1, None, True, [], {}, [0] * 32],
    "list": ["x", 1, None, {}, True],
    "dict": [[], "x", 1, 1.5, None, True, [{}]],
    "bool": [0, 1, "true", None],
}


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (spec, value)
        for spec in SPECS
        for value in WRONG_JSON_TYPES[spec.kind]
        if not (value is None and spec.optional)
    ],
    ids=lambda p: spec_id(p) if isinstance(p, FieldSpec) else json.dumps(p)[:12],
)
def test_wrong_json_type(spec: FieldSpec, value: object) -> None:
    obj = valid_object(spec)
    obj[spec.name] = value
    error = refused(obj)
    assert mentions(error, spec.name)


NUMERIC = [spec for spec in SPECS if spec.kind in ("int", "float")]


@pytest.mark.parametrize("spec", NUMERIC, ids=spec_id)
@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_number(spec: FieldSpec, value: bool) -> None:
    obj = valid_object(spec)
    obj[spec.name] = value
    error = refused(obj)
    assert mentions(error, spec.name)


def test_bool_is_not_an_int_inside_lists() -> None:
    obj = wire_object(sample("hello"))
    obj["versions"] = [1, True]
    error = refused(obj)
    assert "versions[1]" in error.message


def test_list_items_are_checked() -> None:
    obj = wire_object(sample("hello"))
    obj["versions"] = ["1"]
    error = refused(obj)
    assert "versions[0]" in error.message


STRINGS = [spec for spec in SPECS if spec.kind == "str" and spec.limit(MaxLen)]


@pytest.mark.parametrize("spec", STRINGS, ids=spec_id)
def test_string_limit(spec: FieldSpec) -> None:
    limit = spec.limit(MaxLen).limit
    obj = valid_object(spec)
    # The limit counts characters, not bytes.
    for ok in ("x" * limit, "é" * limit, "😀" * limit):
        obj[spec.name] = ok
        result = decode_obj(obj)
        assert not isinstance(result, ProtocolError), result
        assert getattr(result, spec.name) == ok
    obj[spec.name] = "x" * (limit + 1)
    error = refused(obj)
    assert mentions(error, spec.name)
    assert str(limit) in error.message


def test_every_string_field_has_a_limit() -> None:
    unlimited = [str(s) for s in SPECS if s.kind == "str" and not s.limit(MaxLen)]
    assert unlimited == []


LISTS = [spec for spec in SPECS if spec.kind == "list"]


@pytest.mark.parametrize("spec", LISTS, ids=spec_id)
def test_list_limit(spec: FieldSpec) -> None:
    limit = spec.limit(MaxLen).limit
    obj = valid_object(spec)
    obj[spec.name] = [1] * limit
    assert not isinstance(decode_obj(obj), ProtocolError)
    obj[spec.name] = [1] * (limit + 1)
    error = refused(obj)
    assert mentions(error, spec.name)


BYTES = [spec for spec in SPECS if spec.kind == "bytes"]


@pytest.mark.parametrize("spec", BYTES, ids=spec_id)
def test_byte_length(spec: FieldSpec) -> None:
    size = spec.limit(ExactLen).size
    obj = valid_object(spec)
    obj[spec.name] = base64.b64encode(b"\x01" * size).decode()
    result = decode_obj(obj)
    assert not isinstance(result, ProtocolError), result
    assert getattr(result, spec.name) == b"\x01" * size
    for wrong in (0, 1, size - 1, size + 1, 2 * size):
        obj[spec.name] = base64.b64encode(b"\x01" * wrong).decode()
        error = refused(obj)
        assert mentions(error, spec.name)
        assert str(size) in error.message


def test_every_bytes_field_has_a_size() -> None:
    assert all(s.limit(ExactLen) or s.limit(MaxLen) for s in BYTES)


BAD_BASE64 = [
    "not base64!",
    "AAA",  # bad padding
    "A===",
    "AAAA\n",
    " AAAA",
    "AA-_",  # urlsafe alphabet
    "éééé",  # not ASCII
    "AAAA====",
]


@pytest.mark.parametrize("spec", BYTES, ids=spec_id)
@pytest.mark.parametrize("text", BAD_BASE64)
def test_bad_base64(spec: FieldSpec, text: str) -> None:
    obj = valid_object(spec)
    obj[spec.name] = text
    error = refused(obj)
    assert mentions(error, spec.name)


RANGES = [spec for spec in SPECS if spec.limit(Range)]


def below(spec: FieldSpec) -> list[object]:
    low = spec.limit(Range).low
    if spec.kind == "int":
        return [math.ceil(low) - 1, -(2**64)]
    return [math.nextafter(low, -math.inf), low - 1, -1e300]


def above(spec: FieldSpec) -> list[object]:
    high = spec.limit(Range).high
    if spec.kind == "int":
        return [math.floor(high) + 1, 2**64, 2**200]
    return [math.nextafter(high, math.inf), high * 2, 1e300]


@pytest.mark.parametrize("spec", RANGES, ids=spec_id)
def test_range_bounds_are_inclusive(spec: FieldSpec) -> None:
    bounds = spec.limit(Range)
    obj = valid_object(spec)
    for value in (bounds.low, bounds.high):
        obj[spec.name] = int(value) if spec.kind == "int" else float(value)
        result = decode_obj(obj)
        assert not isinstance(result, ProtocolError), result
        assert getattr(result, spec.name) == value


@pytest.mark.parametrize("spec", RANGES, ids=spec_id)
def test_out_of_range(spec: FieldSpec) -> None:
    obj = valid_object(spec)
    for value in below(spec) + above(spec):
        obj[spec.name] = value
        error = refused(obj)
        assert mentions(error, spec.name), error


def with_raw_number(spec: FieldSpec, text: str) -> bytes:
    obj = valid_object(spec)
    obj[spec.name] = "__N__"
    return dumps(obj).replace(b'"__N__"', text.encode())


@pytest.mark.parametrize("spec", NUMERIC, ids=spec_id)
def test_huge_numbers_are_refused_not_raised(spec: FieldSpec) -> None:
    # JSON numbers have no size limit: 10**400 parses as a Python int, which a float
    # field cannot even convert. It must be refused, naming the field, never raise.
    for text in ("1" + "0" * 400, "-1" + "0" * 400, "1" + "0" * 4000):
        result = message_from_payload(with_raw_number(spec, text))
        assert isinstance(result, ProtocolError), result
        assert result.code is ErrorCode.INVALID_MESSAGE
        assert mentions(result, spec.name), result


@pytest.mark.parametrize("spec", NUMERIC, ids=spec_id)
def test_numbers_over_the_int_digit_limit_are_refused_not_raised(spec: FieldSpec) -> None:
    # Python refuses to parse ints of more than 4300 digits (ValueError).
    result = message_from_payload(with_raw_number(spec, "9" * 5000))
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("spec", [s for s in NUMERIC if s.kind == "float"], ids=spec_id)
@pytest.mark.parametrize("text", ["1e999", "-1e999"])
def test_float_overflowing_to_infinity_is_refused(spec: FieldSpec, text: str) -> None:
    result = message_from_payload(with_raw_number(spec, text))
    assert isinstance(result, ProtocolError)
    assert mentions(result, spec.name)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.kind == "float"], ids=spec_id)
def test_float_field_accepts_an_integer_and_yields_a_float(spec: FieldSpec) -> None:
    bounds = spec.limit(Range)
    value = math.ceil(bounds.low) if bounds else 1
    obj = valid_object(spec)
    obj[spec.name] = value
    result = decode_obj(obj)
    assert not isinstance(result, ProtocolError), result
    decoded = getattr(result, spec.name)
    assert type(decoded) is float
    assert decoded == value


# --- free-form bodies -------------------------------------------------------------------


def nested(depth: int, leaf: object) -> object:
    """``depth`` containers around ``leaf``, alternating objects and lists."""
    value = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def deliver_with(body: object) -> dict[str, Any]:
    obj = wire_object(sample("deliver"))
    obj["body"] = body
    return obj


@pytest.mark.parametrize("depth", [1, 5, MAX_JSON_DEPTH - 1])
def test_body_within_the_depth_limit(depth: int) -> None:
    body = {"k": nested(depth - 1, 1)}  # ``depth`` containers including the body itself
    result = decode_obj(deliver_with(body))
    assert isinstance(result, Deliver), result
    assert result.body == body


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 2, MAX_JSON_DEPTH + 10, 200])
def test_body_over_the_depth_limit(depth: int) -> None:
    error = refused(deliver_with({"k": nested(depth - 1, 1)}))
    assert mentions(error, "body")
    assert str(MAX_JSON_DEPTH) in error.message


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_absurdly_deep_payload_is_refused_not_raised(depth: int) -> None:
    payload = b'{"type":"deliver","v":1,"key":"k","kind":"k","body":' + b'{"a":' * depth
    payload += b"1" + b"}" * depth + b"}"
    if len(payload) > 256 * 1024:
        payload = b"[" * (256 * 1024 - 1)
    result = decode_message(control(payload))
    assert isinstance(result, ProtocolError)
    assert result.code is ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("depth", [100, 500, 900, 990, 995, 1000, 2000])
def test_deep_version_value_is_refused_not_raised(depth: int) -> None:
    payload = b'{"type":"hello","v":' + b"[" * depth + b"]" * depth + b"}"
    result = message_from_payload(payload)
    assert isinstance(result, ProtocolError)
    check_error(result)


# --- decoded messages can always be sent again ------------------------------------------


REENCODE_CASES = {
    "deliver body 1e999": b'{"type":"deliver","v":1,"key":"k","kind":"k","body":{"x":1e999}}',
    "deliver body -1e999 in list": (
        b'{"type":"deliver","v":1,"key":"k","kind":"k","body":{"x":[-1e999]}}'
    ),
    "error lone surrogate": b'{"type":"error","v":1,"code":"x","message":"\\ud800"}',
    "deliver key lone surrogate": b'{"type":"deliver","v":1,"key":"\\udfff","kind":"k","body":{}}',
    "deliver body key lone surrogate": (
        b'{"type":"deliver","v":1,"key":"k","kind":"k","body":{"\\ud83d":1}}'
    ),
    "enroll hostname lone surrogate": (
        b'{"type":"enroll","v":1,"token":"t","public_key":"' + b"A" * 43 + b'=",'
        b'"hostname":"pc\\ud800","signature":"' + b"A" * 86 + b'=="}'
    ),
}


@pytest.mark.parametrize("payload", REENCODE_CASES.values(), ids=REENCODE_CASES.keys())
def test_what_decodes_can_be_encoded_again(payload: bytes) -> None:
    """A decoded message must be a valid message: sendable again, equal after a trip.

    Either the decoder refuses the payload, or encode_message accepts what it produced
    (a coordinator acknowledges a delivery's key, forwards a body, logs a hostname).
    """
    result = message_from_payload(payload)
    if isinstance(result, ProtocolError):
        check_error(result)
        return
    assert decode_message(encode_message(result)) == result


def test_escaped_surrogate_pair_is_a_valid_character() -> None:
    payload = b'{"type":"ack","v":1,"key":"\\ud83d\\ude00"}'
    result = message_from_payload(payload)
    assert not isinstance(result, ProtocolError), result
    assert result == Ack(key="😀")
    assert decode_message(encode_message(result)) == result
