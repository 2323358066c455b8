"""Builders shared by the protocol tests: valid messages, strategies, wire helpers.

Strategies are derived from the ``Annotated`` limits of each message's fields, so a new
message type is covered as soon as it is registered; the hand-written ``EXAMPLES`` sit at
the edges of those limits and must be extended by hand (a test checks they cover every
registered type).
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, get_args, get_origin

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from protocol.errors import MAX_REASON_BYTES, ProtocolError
from protocol.frames import Frame, FrameKind, decode_frame, encode_frame
from protocol.messages import (
    MAX_JSON_DEPTH,
    Ack,
    Authenticate,
    Authenticated,
    Deliver,
    Enroll,
    Enrolled,
    Error,
    ExactLen,
    Heartbeat,
    HeartbeatAck,
    Hello,
    MaxLen,
    Message,
    Range,
    Reject,
    SessionOffer,
    Welcome,
    encode_message,
    message_types,
)

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Close codes an endpoint may send (RFC 6455 7.4 and the IANA registry): 1004, 1005,
# 1006 and 1015 are reserved and must never appear in a close frame.
SENDABLE_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
) | frozenset(range(3000, 5000))


def check_error(error: ProtocolError) -> None:
    """What every ProtocolError must satisfy to be usable as a websocket close."""
    assert isinstance(error, ProtocolError)
    assert isinstance(error.message, str)
    assert isinstance(error.close_code, int)
    assert error.close_code in SENDABLE_CLOSE_CODES
    assert len(error.close_reason.encode()) <= MAX_REASON_BYTES


# --- wire helpers -----------------------------------------------------------------------


def control(payload: bytes) -> bytes:
    """Wrap a raw payload in a valid control frame."""
    return encode_frame(Frame(FrameKind.CONTROL, payload))


def payload_of(message: Message) -> bytes:
    frame = decode_frame(encode_message(message))
    assert isinstance(frame, Frame)
    return frame.payload


def wire_object(message: Message) -> dict[str, Any]:
    """The JSON object a message travels as."""
    obj = json.loads(payload_of(message))
    assert isinstance(obj, dict)
    return obj


def dumps(obj: object) -> bytes:
    """Encode test JSON as a peer might: NaN/Infinity allowed, every non-ASCII character
    escaped (so a lone surrogate travels as a valid ``\\udXXX`` escape)."""
    return json.dumps(obj, ensure_ascii=True).encode()


# --- field introspection ----------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    message: str  # the message TYPE
    name: str
    base: Any  # str, int, float, bytes, list[...], dict[...], or one of them | None
    meta: tuple[object, ...]
    required: bool = True

    @property
    def optional(self) -> bool:
        """Declared ``X | None``: null is a valid value."""
        return _unwrap_optional(self.base) is not self.base

    @property
    def kind(self) -> str:
        base = _unwrap_optional(self.base)
        origin = get_origin(base)
        if origin is list:
            return "list"
        if origin is dict:
            return "dict"
        return {str: "str", int: "int", float: "float", bytes: "bytes", bool: "bool"}[base]

    def limit(self, kind: type) -> Any:
        return next((m for m in self.meta if isinstance(m, kind)), None)

    def __str__(self) -> str:
        return f"{self.message}.{self.name}"


def field_specs(cls: type[Message]) -> list[FieldSpec]:
    hints = typing.get_type_hints(cls, include_extras=True)
    specs = []
    for f in fields(cls):  # type: ignore[arg-type]
        hint = hints[f.name]
        meta: tuple[object, ...] = ()
        if get_origin(hint) is Annotated:
            hint, *rest = get_args(hint)
            meta = tuple(rest)
        required = f.default is MISSING and f.default_factory is MISSING
        specs.append(FieldSpec(cls.TYPE, f.name, hint, meta, required))
    return specs


def all_field_specs() -> list[FieldSpec]:
    return [spec for cls in message_types().values() for spec in field_specs(cls)]


# --- strategies -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


def json_values(depth: int) -> st.SearchStrategy[Any]:
    """Finite JSON values nested at most ``depth`` containers deep."""
    if depth == 0:
        return json_scalars
    inner = json_values(depth - 1)
    return (
        json_scalars
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    )


def json_objects(depth: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    assert depth < MAX_JSON_DEPTH
    return st.dictionaries(st.text(max_size=10), json_values(depth - 1), max_size=5)


def _unwrap_optional(base: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(base) in (typing.Union, types.UnionType):
        (inner,) = (a for a in get_args(base) if a is not type(None))
        return inner
    return base


def _strategy_for(base: Any, meta: tuple[object, ...]) -> st.SearchStrategy[Any]:
    if _unwrap_optional(base) is not base:
        return st.none() | _strategy_for(_unwrap_optional(base), meta)
    max_len = next((m.limit for m in meta if isinstance(m, MaxLen)), None)
    exact = next((m.size for m in meta if isinstance(m, ExactLen)), None)
    bounds = next((m for m in meta if isinstance(m, Range)), None)
    origin = get_origin(base)
    if base is str:
        return st.text(max_size=max_len if max_len is not None else 50)
    if base is bytes:
        if exact is not None:
            return st.binary(min_size=exact, max_size=exact)
        return st.binary(max_size=max_len if max_len is not None else 50)
    if base is bool:
        return st.booleans()
    if base is int:
        if bounds is None:
            return st.integers(min_value=-(2**64), max_value=2**64)
        return st.integers(min_value=math.ceil(bounds.low), max_value=math.floor(bounds.high))
    if base is float:
        if bounds is None:
            return st.floats(allow_nan=False, allow_infinity=False)
        return st.floats(
            min_value=bounds.low, max_value=bounds.high, allow_nan=False, allow_infinity=False
        )
    if origin is list:
        (item,) = get_args(base)
        item_meta: tuple[object, ...] = ()
        if get_origin(item) is Annotated:
            item, *rest = get_args(item)
            item_meta = tuple(rest)
        return st.lists(
            _strategy_for(item, item_meta), max_size=max_len if max_len is not None else 8
        )
    if origin is dict:
        return json_objects()
    raise TypeError(f"no strategy for field type {base!r}: extend protocol_builders")


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    kwargs = {spec.name: _strategy_for(spec.base, spec.meta) for spec in field_specs(cls)}
    return st.builds(cls, **kwargs)


MESSAGE_STRATEGIES: dict[str, st.SearchStrategy[Message]] = {
    name: message_strategy(cls) for name, cls in message_types().items()
}

any_message = st.one_of(*MESSAGE_STRATEGIES.values())


# --- hand-written examples at the edges of the limits -----------------------------------

KEY = bytes(range(32))
SIG = bytes(range(64))

EXAMPLES: dict[str, list[Message]] = {
    "hello": [
        Hello(versions=[1], software="backdesk-agent/0.1.0"),
        Hello(versions=[1, 2, 3, 4, 5, 6, 7, 8], software="s" * 64),
        Hello(versions=[], software=""),
    ],
    "welcome": [
        Welcome(version=1, challenge=KEY, server_time=1_700_000_000.25),
        Welcome(version=255, challenge=b"\xff" * 32, server_time=1e11),
        Welcome(version=1, challenge=b"\x00" * 32, server_time=0.0),
    ],
    "enroll": [
        Enroll(token="tok-123", public_key=KEY, hostname="pc-accueil", signature=SIG),
        Enroll(token="t" * 128, public_key=KEY, hostname="é" * 253, signature=b"\0" * 64),
    ],
    "enrolled": [Enrolled(device_id="dev-1"), Enrolled(device_id="d" * 64)],
    "authenticate": [
        Authenticate(device_id="dev-1", signature=SIG),
        Authenticate(device_id="ü" * 64, signature=b"\xff" * 64),
    ],
    "authenticated": [
        Authenticated(device_id="dev-1", heartbeat_interval=30.0),
        Authenticated(device_id="d" * 64, heartbeat_interval=0.1),
        Authenticated(device_id="", heartbeat_interval=3600.0),
    ],
    "heartbeat": [
        Heartbeat(seq=0, sent_at=0.0),
        Heartbeat(seq=2**63 - 1, sent_at=1e11),
        Heartbeat(seq=7, sent_at=1_700_000_000.5),
    ],
    "heartbeat_ack": [
        HeartbeatAck(seq=0, server_time=0.0),
        HeartbeatAck(seq=2**63 - 1, server_time=1e11),
    ],
    "deliver": [
        Deliver(key="k-1", kind="ticket", body={}),
        Deliver(
            key="k" * 64,
            kind="n" * 64,
            body={
                "subject": "écran noir ☹",
                "tags": ["a", 1, 2.5, None, True, {"x": []}],
                "n": -(2**70),
            },
        ),
    ],
    "ack": [
        Ack(key="k-1"),
        Ack(key="k" * 64),
        Ack(key=""),
        Ack(key="k-2", result={"reference": "BD-000001"}),
    ],
    "reject": [
        Reject(key="k-1", code="invalid_message", message="unknown delivery kind 'x'"),
        Reject(key="k" * 64, code="c" * 64, message="m" * 500),
    ],
    "session_offer": [
        SessionOffer(
            session_id="s-1",
            ticket="BD-000001",
            subject="Écran noir",
            technician="Ada",
            role="l2",
            scope="control",
            relay_token=b"\x01" * 32,
            expires_at=1_700_000_000.0,
        ),
        SessionOffer(
            session_id="s" * 64,
            ticket="t" * 32,
            subject="x" * 200,
            technician="n" * 100,
            role="r" * 16,
            scope="view",
            relay_token=b"\xff" * 32,
            expires_at=1e11,
        ),
    ],
    "error": [
        Error(code="bad_token", message="token already used"),
        Error(code="c" * 64, message="m" * 500),
    ],
}


def sample(name: str) -> Message:
    """One valid instance of a registered message type."""
    return EXAMPLES[name][0]
