"""Signatures receivers can check, and the retry schedule: pure functions, no server."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from coordinator.webhooks import BACKOFF_CAP, backoff, new_secret, sign, verify_signature

SECRET = "whsec_" + "k" * 40
BODY = b'{"id":1,"type":"ticket.created","at":"2026-01-01T00:00:00Z","data":{}}'


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    timestamp = 1_767_225_600
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, timestamp, BODY) == f"sha256={expected}"


def test_a_fresh_signature_verifies_with_the_secret() -> None:
    now = int(time.time())
    signature = sign(SECRET, now, BODY)
    assert verify_signature(SECRET, str(now), BODY, signature)
    assert verify_signature(SECRET.encode(), now, BODY, signature)
    assert verify_signature(SECRET, now, BODY, signature.upper().replace("SHA256=", "sha256="))


def test_another_secret_a_changed_body_or_timestamp_fail() -> None:
    now = int(time.time())
    signature = sign(SECRET, now, BODY)
    assert not verify_signature("whsec_" + "x" * 40, now, BODY, signature)
    assert not verify_signature(SECRET, now, BODY + b" ", signature)
    assert not verify_signature(SECRET, now - 1, BODY, signature)


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_old_or_future_timestamps_are_refused_even_when_correctly_signed(age: int) -> None:
    now = time.time()
    sent = int(now) - age
    signature = sign(SECRET, sent, BODY)
    assert not verify_signature(SECRET, sent, BODY, signature, now=now)
    assert verify_signature(SECRET, sent, BODY, signature, tolerance=abs(age) + 5, now=now)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("", "sha256=00"),
        ("soon", "sha256=00"),
        ("1.5", "sha256=00"),
        (None, "sha256=00"),
        ("NOW", ""),
        ("NOW", "sha256="),
        ("NOW", "sha1=abcd"),
        ("NOW", "abcdef"),
    ],
)
def test_malformed_headers_are_refused(timestamp: str | None, signature: str) -> None:
    now = str(int(time.time()))
    value = now if timestamp == "NOW" else timestamp
    assert not verify_signature(SECRET, value, BODY, signature)  # type: ignore[arg-type]


def test_generated_secrets_are_long_and_distinct() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) >= 32 for s in secrets)


def test_backoff_doubles_with_jitter_between_one_second_and_five_minutes() -> None:
    for attempts in range(1, 40):
        nominal = min(BACKOFF_CAP, 2.0 ** (attempts - 1))
        for _ in range(20):
            delay = backoff(attempts)
            assert 1.0 <= delay <= BACKOFF_CAP
            assert nominal / 2 <= delay <= max(1.0, nominal)
    assert backoff(1) <= 1.0 < backoff(4)
    assert min(backoff(100) for _ in range(50)) >= BACKOFF_CAP / 2
