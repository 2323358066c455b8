"""ProtocolError: close codes and reasons that fit a websocket close frame."""

from __future__ import annotations

import pytest
from protocol_builders import SENDABLE_CLOSE_CODES, check_error

from protocol.errors import (
    CREDENTIAL_ERRORS,
    MAX_REASON_BYTES,
    BackdeskProtocolError,
    ErrorCode,
    InvalidState,
    ProtocolError,
)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_sendable_close_code(code: ErrorCode) -> None:
    error = ProtocolError(code, "why")
    assert error.close_code in SENDABLE_CLOSE_CODES
    assert error.close_reason == f"{code.value}: why"


def test_credential_errors_use_the_application_close_code() -> None:
    # An agent tells "fix your enrollment" (4401) from "retry later" by the close code.
    for code in ErrorCode:
        error = ProtocolError(code, "x")
        assert (error.close_code == 4401) == (code in CREDENTIAL_ERRORS)


def test_error_codes_are_distinct_wire_strings() -> None:
    values = [code.value for code in ErrorCode]
    assert len(set(values)) == len(values)
    assert all(v == v.lower() and " " not in v for v in values)


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
@pytest.mark.parametrize("length", [0, 50, 100, 101, 102, 103, 104, 200, 1000])
def test_reason_is_cut_on_a_character_boundary(char: str, length: int) -> None:
    error = ProtocolError(ErrorCode.SERVER_ERROR, char * length)
    check_error(error)
    reason = error.close_reason
    encoded = reason.encode()
    assert len(encoded) <= MAX_REASON_BYTES
    full = f"{ErrorCode.SERVER_ERROR.value}: {char * length}"
    if len(full.encode()) <= MAX_REASON_BYTES:
        assert reason == full
    else:
        assert reason.endswith("...")
        assert full.startswith(reason[:-3])
        # Only the bytes of a character cut in half are given up.
        assert len(encoded) >= MAX_REASON_BYTES - len(char.encode()) + 1


def test_exception_tree() -> None:
    assert issubclass(InvalidState, BackdeskProtocolError)
    assert issubclass(BackdeskProtocolError, Exception)
    assert not issubclass(ProtocolError, BaseException)  # a value, never raised
