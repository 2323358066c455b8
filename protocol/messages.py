"""Control messages: typed, versioned records carried as JSON in control frames.

Every message is a frozen dataclass. On the wire it is a JSON object with ``"type"`` (the
record's name), ``"v"`` (the record's schema version) and its fields; binary fields are
base64. Decoding is strict: unknown types, unknown or missing fields, wrong JSON types,
strings or lists over their limit and bad base64 are all refused with a
:class:`ProtocolError` that names the field.

To add a message: declare the dataclass with ``Annotated`` limits and register it in
``_REGISTRY`` (done by :func:`_message`). Every message has a round-trip test.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

from .errors import ErrorCode, ProtocolError
from .frames import Frame, FrameKind, decode_frame, encode_frame

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MaxLen:
    """Upper bound on a string's characters, a byte field's size, or a list's items."""

    limit: int


@dataclass(frozen=True, slots=True)
class ExactLen:
    """A byte field of a fixed size (keys, signatures, nonces)."""

    size: int


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float


# Depth and size of free-form JSON objects (outbox bodies).
MAX_JSON_DEPTH = 16


class Message:
    """Base of all control messages."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1


M = TypeVar("M", bound=type[Message])
_REGISTRY: dict[str, type[Message]] = {}


def _message(cls: M) -> M:
    _REGISTRY[cls.TYPE] = cls
    return cls


DeviceId = Annotated[str, MaxLen(64)]
Key32 = Annotated[bytes, ExactLen(32)]
Signature = Annotated[bytes, ExactLen(64)]
Timestamp = Annotated[float, Range(0, 1e11)]
Counter = Annotated[int, Range(0, 2**63 - 1)]


@_message
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First message of a connection, from the agent: which protocol versions it speaks."""

    TYPE = "hello"
    versions: Annotated[list[int], MaxLen(8)]
    software: Annotated[str, MaxLen(64)]


@_message
@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """The coordinator's answer to hello: chosen version and a fresh challenge to sign."""

    TYPE = "welcome"
    version: Annotated[int, Range(1, 255)]
    challenge: Key32
    server_time: Timestamp


@_message
@dataclass(frozen=True, slots=True)
class Enroll(Message):
    """Register a new identity key with a one-time token; signed to prove key possession."""

    TYPE = "enroll"
    token: Annotated[str, MaxLen(128)]
    public_key: Key32
    hostname: Annotated[str, MaxLen(253)]
    signature: Signature


@_message
@dataclass(frozen=True, slots=True)
class Enrolled(Message):
    TYPE = "enrolled"
    device_id: DeviceId


@_message
@dataclass(frozen=True, slots=True)
class Authenticate(Message):
    """Prove the agent's identity by signing the challenge (see identity.py)."""

    TYPE = "authenticate"
    device_id: DeviceId
    signature: Signature


@_message
@dataclass(frozen=True, slots=True)
class Authenticated(Message):
    TYPE = "authenticated"
    device_id: DeviceId
    heartbeat_interval: Annotated[float, Range(0.1, 3600)]


@_message
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    TYPE = "heartbeat"
    seq: Counter
    sent_at: Timestamp


@_message
@dataclass(frozen=True, slots=True)
class HeartbeatAck(Message):
    TYPE = "heartbeat_ack"
    seq: Counter
    server_time: Timestamp


@_message
@dataclass(frozen=True, slots=True)
class Deliver(Message):
    """A durable message from the agent's outbox; the key makes redelivery harmless."""

    TYPE = "deliver"
    key: Annotated[str, MaxLen(64)]
    kind: Annotated[str, MaxLen(64)]
    body: JSONObject


@_message
@dataclass(frozen=True, slots=True)
class Ack(Message):
    """The coordinator committed the delivery with this key (and what came of it, such as
    the reference of the ticket a Get-help request opened)."""

    TYPE = "ack"
    key: Annotated[str, MaxLen(64)]
    result: JSONObject | None = None


@_message
@dataclass(frozen=True, slots=True)
class Reject(Message):
    """The coordinator will never accept the delivery with this key (unknown kind, invalid
    body): the agent drops it instead of retrying forever. The link stays up."""

    TYPE = "reject"
    key: Annotated[str, MaxLen(64)]
    code: Annotated[str, MaxLen(64)]
    message: Annotated[str, MaxLen(500)]


@_message
@dataclass(frozen=True, slots=True)
class SessionOffer(Message):
    """A technician asks for a remote session (coordinator to agent). This grants
    nothing: the agent asks its user (or applies its own local policy), and only joins
    the relay at ``/ws/relay/<session_id>`` with the one-time ``relay_token``. See
    docs/remote-sessions.md."""

    TYPE = "session_offer"
    session_id: Annotated[str, MaxLen(64)]
    ticket: Annotated[str, MaxLen(32)]
    subject: Annotated[str, MaxLen(200)]
    technician: Annotated[str, MaxLen(100)]
    role: Annotated[str, MaxLen(16)]
    scope: Annotated[str, MaxLen(8)]
    relay_token: Key32
    expires_at: Timestamp


SESSION_SCOPES = ("view", "control")


@_message
@dataclass(frozen=True, slots=True)
class Error(Message):
    """Sent before closing, so the peer can show the reason to a person."""

    TYPE = "error"
    code: Annotated[str, MaxLen(64)]
    message: Annotated[str, MaxLen(500)]


def message_types() -> dict[str, type[Message]]:
    return dict(_REGISTRY)


# --- encoding ---------------------------------------------------------------------------


def _to_json(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def encode_message(message: Message) -> bytes:
    """Serialize a message into a complete control frame."""
    obj: dict[str, object] = {"type": message.TYPE, "v": message.VERSION}
    for f in fields(message):  # type: ignore[arg-type]
        obj[f.name] = _to_json(getattr(message, f.name))
    # ASCII output: whatever text a message holds, its encoding cannot fail.
    payload = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return encode_frame(Frame(FrameKind.CONTROL, payload.encode()))


# --- decoding ---------------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: a field failed validation. Never escapes this module."""


def _invalid(name: str, why: str) -> _Invalid:
    return _Invalid(f"field {name!r} {why}")


def _check_limits(name: str, value: object, size: int | None, meta: tuple[object, ...]) -> None:
    for m in meta:
        if isinstance(m, MaxLen) and size is not None and size > m.limit:
            raise _invalid(name, f"is longer than {m.limit}")
        if isinstance(m, ExactLen) and size != m.size:
            raise _invalid(name, f"must be {m.size} bytes")
        if isinstance(m, Range) and isinstance(value, int | float):
            if not m.low <= value <= m.high:
                raise _invalid(name, f"must be between {m.low:g} and {m.high:g}")


def _is_text(value: str) -> bool:
    """False for strings with lone surrogates (JSON's \\ud800), which cannot be UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _json_problem(value: object, depth: int = 0) -> str | None:
    """Why a free-form JSON value cannot be accepted (and sent on again), or None."""
    if isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            return f"is nested deeper than {MAX_JSON_DEPTH}"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and not _is_text(key):
                return "has a key that is not valid Unicode text"
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, str) and not _is_text(value):
        return "holds text that is not valid Unicode"
    if isinstance(value, float) and not math.isfinite(value):
        return "holds a number that is not finite"
    return None


def _convert(name: str, hint: object, value: object) -> object:
    meta: tuple[object, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *rest = get_args(hint)
        meta = tuple(rest)
    origin = get_origin(hint)
    if hint is str:
        if not isinstance(value, str):
            raise _invalid(name, "must be a string")
        if not _is_text(value):
            raise _invalid(name, "is not valid Unicode text")
        _check_limits(name, value, len(value), meta)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _invalid(name, "must be true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _invalid(name, "must be an integer")
        _check_limits(name, value, None, meta)
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _invalid(name, "must be a number")
        if not _finite(value):
            raise _invalid(name, "must be a finite number")
        _check_limits(name, value, None, meta)
        return float(value)
    if hint is bytes:
        if not isinstance(value, str):
            raise _invalid(name, "must be base64 text")
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _invalid(name, "is not valid base64") from None
        if base64.b64encode(raw).decode("ascii") != value:
            raise _invalid(name, "is not canonical base64")
        _check_limits(name, raw, len(raw), meta)
        return raw
    if origin is list:
        (item_hint,) = get_args(hint)
        if not isinstance(value, list):
            raise _invalid(name, "must be a list")
        _check_limits(name, value, len(value), meta)
        return [_convert(f"{name}[{i}]", item_hint, v) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _invalid(name, "must be an object")
        problem = _json_problem(value)
        if problem:
            raise _invalid(name, problem)
        return value
    if origin in (Union, types.UnionType) and type(None) in get_args(hint):
        if value is None:
            return None
        (inner,) = (a for a in get_args(hint) if a is not type(None))
        return _convert(name, inner, value)
    raise TypeError(f"unsupported field type {hint!r}")  # a bug in a message declaration


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


def message_from_payload(payload: bytes) -> Message | ProtocolError:
    """Validate a control frame's payload into a typed message. Never raises."""
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return ProtocolError(ErrorCode.INVALID_MESSAGE, f"control payload is not JSON: {exc}")
    if not isinstance(obj, dict):
        return ProtocolError(ErrorCode.INVALID_MESSAGE, "control payload must be a JSON object")
    kind = obj.pop("type", None)
    version = obj.pop("v", None)
    if not isinstance(kind, str):
        return ProtocolError(ErrorCode.INVALID_MESSAGE, "message has no 'type'")
    cls = _REGISTRY.get(kind)
    if cls is None:
        return ProtocolError(ErrorCode.UNKNOWN_MESSAGE, f"unknown message type {kind[:40]!a}")
    if type(version) is not int or version != cls.VERSION:
        return ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"{kind} version {ascii(version)[:20]} is not supported (expected {cls.VERSION})",
        )
    hints = typing.get_type_hints(cls, include_extras=True)
    declared = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(obj) - set(declared))
    if unknown:
        return ProtocolError(
            ErrorCode.INVALID_MESSAGE, f"{kind}: unknown field {unknown[0][:40]!a}"
        )
    values: dict[str, object] = {}
    try:
        for name, f in declared.items():
            if name not in obj:
                if f.default is MISSING:
                    raise _invalid(name, "is required")
                continue
            values[name] = _convert(name, hints[name], obj[name])
    except _Invalid as exc:
        return ProtocolError(ErrorCode.INVALID_MESSAGE, f"{kind}: {exc}")
    return cls(**values)


def decode_message(data: bytes) -> Message | ProtocolError:
    """Decode one websocket message holding a control frame. Never raises."""
    frame = decode_frame(data)
    if isinstance(frame, ProtocolError):
        return frame
    if frame.kind is not FrameKind.CONTROL:
        return ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, "expected a control frame")
    return message_from_payload(frame.payload)
