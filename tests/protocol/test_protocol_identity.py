"""Identities: certificate fingerprints, signed transcripts, verification that never raises."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from protocol_builders import FAST

from protocol import identity

KEY_A = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
KEY_B = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
FP = hashlib.sha256(b"certificate").digest()
HEX = FP.hex()

digests = st.binary(min_size=32, max_size=32)
challenges = st.binary(min_size=32, max_size=32)
device_ids = st.text(min_size=1, max_size=64)


# --- fingerprints -----------------------------------------------------------------------


def test_certificate_fingerprint_is_sha256_of_the_der() -> None:
    der = b"0\x82\x01\x0a fake der"
    assert identity.certificate_fingerprint(der) == hashlib.sha256(der).digest()
    assert len(identity.certificate_fingerprint(der)) == 32


def test_format_fingerprint() -> None:
    assert identity.format_fingerprint(FP) == "sha256:" + HEX


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + HEX,
        HEX,
        HEX.upper(),
        "SHA256:" + HEX.upper(),
        "Sha256:" + HEX,
        ":".join(HEX[i : i + 2] for i in range(0, 64, 2)),
        ":".join(HEX[i : i + 2] for i in range(0, 64, 2)).upper(),
        "sha256:" + ":".join(HEX[i : i + 2] for i in range(0, 64, 2)),
        "  sha256:" + HEX + "\n",
        "\t" + HEX + " ",
    ],
)
def test_parse_fingerprint_accepts(text: str) -> None:
    assert identity.parse_fingerprint(text) == FP


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:",
        HEX[:-1],  # 63 digits
        HEX + "0",  # 65 digits
        HEX[:-2],
        HEX + HEX,
        HEX[:-1] + "g",
        HEX[:-1] + "-",
        "sha1:" + HEX,
        "sha256:sha256:" + HEX,
        "sha256 " + HEX,
        HEX[:32] + " " + HEX[32:],
        "0x" + HEX[2:],
        "sha256:" + HEX[:40],  # a SHA-1 fingerprint
        "\uff10" * 64,  # fullwidth digits are not hex
    ],
)
def test_parse_fingerprint_rejects(text: str) -> None:
    assert identity.parse_fingerprint(text) is None


@FAST
@given(digests)
def test_fingerprint_round_trip(digest: bytes) -> None:
    text = identity.format_fingerprint(digest)
    assert text.startswith(identity.FINGERPRINT_PREFIX)
    assert identity.parse_fingerprint(text) == digest
    assert identity.parse_fingerprint(text.upper()) == digest
    assert identity.parse_fingerprint(digest.hex()) == digest


@FAST
@given(st.text(max_size=100))
def test_parse_fingerprint_never_raises(text: str) -> None:
    result = identity.parse_fingerprint(text)
    assert result is None or (isinstance(result, bytes) and len(result) == 32)


def test_fingerprints_match() -> None:
    assert identity.fingerprints_match(FP, bytes(FP))
    assert not identity.fingerprints_match(FP, FP[:-1] + bytes([FP[-1] ^ 1]))
    assert not identity.fingerprints_match(FP, FP[:-1])


# --- transcripts and signatures ---------------------------------------------------------


def test_public_key_bytes_is_raw_32_bytes() -> None:
    raw = identity.public_key_bytes(KEY_A)
    assert len(raw) == 32
    assert raw == KEY_A.public_key().public_bytes_raw()
    assert raw != identity.public_key_bytes(KEY_B)


@FAST
@given(challenges, digests, device_ids)
def test_sign_and_verify_authenticate(challenge: bytes, fp: bytes, device_id: str) -> None:
    transcript = identity.authenticate_transcript(challenge, fp, device_id)
    signature = identity.sign(KEY_A, transcript)
    assert len(signature) == 64
    assert identity.verify(identity.public_key_bytes(KEY_A), signature, transcript) is True
    # wrong key
    assert identity.verify(identity.public_key_bytes(KEY_B), signature, transcript) is False
    # wrong transcript
    assert identity.verify(identity.public_key_bytes(KEY_A), signature, transcript + b"x") is False


@FAST
@given(challenges, digests)
def test_sign_and_verify_enroll(challenge: bytes, fp: bytes) -> None:
    public_key = identity.public_key_bytes(KEY_A)
    transcript = identity.enroll_transcript(challenge, fp, public_key)
    signature = identity.sign(KEY_A, transcript)
    assert identity.verify(public_key, signature, transcript) is True
    assert identity.verify(identity.public_key_bytes(KEY_B), signature, transcript) is False


@FAST
@given(challenges, challenges, digests, digests, device_ids)
def test_signature_is_bound_to_challenge_and_fingerprint(
    challenge: bytes, other_challenge: bytes, fp: bytes, other_fp: bytes, device_id: str
) -> None:
    public_key = identity.public_key_bytes(KEY_A)
    transcript = identity.authenticate_transcript(challenge, fp, device_id)
    signature = identity.sign(KEY_A, transcript)
    if other_challenge != challenge:  # replay on another connection
        other = identity.authenticate_transcript(other_challenge, fp, device_id)
        assert identity.verify(public_key, signature, other) is False
    if other_fp != fp:  # relay to another coordinator
        other = identity.authenticate_transcript(challenge, other_fp, device_id)
        assert identity.verify(public_key, signature, other) is False
    other = identity.authenticate_transcript(challenge, fp, device_id + "x")
    assert identity.verify(public_key, signature, other) is False


@FAST
@given(challenges, digests)
def test_enroll_signature_is_bound_to_challenge_and_fingerprint(
    challenge: bytes, fp: bytes
) -> None:
    public_key = identity.public_key_bytes(KEY_A)
    signature = identity.sign(KEY_A, identity.enroll_transcript(challenge, fp, public_key))
    flipped_challenge = bytes([challenge[0] ^ 1]) + challenge[1:]
    flipped_fp = fp[:-1] + bytes([fp[-1] ^ 0x80])
    for other in (
        identity.enroll_transcript(flipped_challenge, fp, public_key),
        identity.enroll_transcript(challenge, flipped_fp, public_key),
    ):
        assert identity.verify(public_key, signature, other) is False


@FAST
@given(challenges, digests)
def test_domain_separation(challenge: bytes, fp: bytes) -> None:
    public_key = identity.public_key_bytes(KEY_A)
    # A device id spelled like the public key must not make the two transcripts equal.
    device_id = public_key.decode("latin-1")
    enroll = identity.enroll_transcript(challenge, fp, public_key)
    authenticate = identity.authenticate_transcript(challenge, fp, device_id)
    assert enroll != authenticate
    assert enroll.startswith(identity.ENROLL_LABEL)
    assert authenticate.startswith(identity.AUTHENTICATE_LABEL)
    assert not identity.ENROLL_LABEL.startswith(identity.AUTHENTICATE_LABEL)
    assert not identity.AUTHENTICATE_LABEL.startswith(identity.ENROLL_LABEL)
    # An enrollment signature is no authentication, and the reverse.
    enroll_sig = identity.sign(KEY_A, enroll)
    auth_sig = identity.sign(KEY_A, authenticate)
    assert identity.verify(public_key, enroll_sig, authenticate) is False
    assert identity.verify(public_key, auth_sig, enroll) is False


@FAST
@given(st.binary(max_size=80), st.binary(max_size=80), st.binary(max_size=80))
def test_verify_never_raises_on_garbage(key: bytes, signature: bytes, transcript: bytes) -> None:
    assert identity.verify(key, signature, transcript) is False


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_verify_garbage_key_length(size: int) -> None:
    transcript = b"t"
    signature = identity.sign(KEY_A, transcript)
    assert identity.verify(b"\x07" * size, signature, transcript) is False


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 63, b"\x00" * 64, b"\xff" * 64, b"\x00" * 65, b"\x01" * 128],
)
def test_verify_garbage_signature(signature: bytes) -> None:
    assert identity.verify(identity.public_key_bytes(KEY_A), signature, b"t") is False


def test_verify_rejects_a_truncated_or_extended_real_signature() -> None:
    public_key = identity.public_key_bytes(KEY_A)
    signature = identity.sign(KEY_A, b"t")
    assert identity.verify(public_key, signature, b"t") is True
    assert identity.verify(public_key, signature[:-1], b"t") is False
    assert identity.verify(public_key, signature + b"\x00", b"t") is False
    assert identity.verify(public_key, bytes([signature[0] ^ 1]) + signature[1:], b"t") is False


@pytest.mark.parametrize(
    "public_key",
    [
        b"\xff" * 32,  # not a valid encoding
        b"\xec" + b"\xff" * 30 + b"\x7f",  # y = p - 1
        b"\x00" * 32,
    ],
)
def test_verify_degenerate_public_keys(public_key: bytes) -> None:
    for signature in (b"\x00" * 64, identity.sign(KEY_A, b"t")):
        assert identity.verify(public_key, signature, b"t") is False


# The neutral point of the curve, encoded: a public key of order 1.
SMALL_ORDER_KEY = b"\x01" + b"\x00" * 31
# R = the neutral point, S = 0.
UNIVERSAL_SIGNATURE = b"\x01" + b"\x00" * 63


@pytest.mark.parametrize("transcript", [b"t", b"", identity.ENROLL_LABEL + bytes(96)])
def test_small_order_key_does_not_verify_every_transcript(transcript: bytes) -> None:
    """With A = the neutral point, ``[S]B == R + [k]A`` holds for R = neutral, S = 0,
    whatever k (whatever the message). A key no private key stands behind must never
    verify, or enrollment proves nothing and anyone can later sign as that device."""
    assert identity.verify(SMALL_ORDER_KEY, UNIVERSAL_SIGNATURE, transcript) is False
