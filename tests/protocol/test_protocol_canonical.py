"""Canonical JSON: both ends must produce the same bytes for the same value."""

import math

import pytest

from protocol.canonical import document_bytes, receipt_bytes


def test_receipts_are_sorted_compact_ascii() -> None:
    assert receipt_bytes({"b": "é", "a": [1, {"d": 2, "c": None}]}) == (
        b'{"a":[1,{"c":null,"d":2}],"b":"\\u00e9"}'
    )


def test_documents_are_sorted_compact_utf8() -> None:
    assert document_bytes({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'.encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_json_cannot_carry_are_refused(value: float) -> None:
    with pytest.raises(ValueError):
        receipt_bytes({"at": value})
    with pytest.raises(ValueError):
        document_bytes({"at": value})
