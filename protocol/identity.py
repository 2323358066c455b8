"""Identities and what they sign.

Agents hold an Ed25519 key made at enrollment; the coordinator holds a TLS certificate
that agents pin by its SHA-256 fingerprint. Every signature covers a domain-separation
label, the coordinator's fresh challenge and the pinned certificate's fingerprint, so a
signature cannot be replayed on another connection nor relayed to another coordinator.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_core_ed25519_is_valid_point

FINGERPRINT_PREFIX = "sha256:"
_FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")

ENROLL_LABEL = b"backdesk/1 enroll\x00"
AUTHENTICATE_LABEL = b"backdesk/1 authenticate\x00"


def certificate_fingerprint(der: bytes) -> bytes:
    """SHA-256 of a DER certificate: what agents pin."""
    return hashlib.sha256(der).digest()


def format_fingerprint(digest: bytes) -> str:
    return FINGERPRINT_PREFIX + digest.hex()


def parse_fingerprint(text: str) -> bytes | None:
    """Accept ``sha256:<64 hex>`` (or bare hex, or colon-separated pairs); None if invalid."""
    cleaned = text.strip().lower()
    if cleaned.startswith(FINGERPRINT_PREFIX):
        cleaned = cleaned[len(FINGERPRINT_PREFIX) :]
    cleaned = cleaned.replace(":", "")
    return bytes.fromhex(cleaned) if _FINGERPRINT_RE.fullmatch(cleaned) else None


def fingerprints_match(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def enroll_transcript(challenge: bytes, server_fingerprint: bytes, public_key: bytes) -> bytes:
    return ENROLL_LABEL + challenge + server_fingerprint + public_key


def authenticate_transcript(challenge: bytes, server_fingerprint: bytes, device_id: str) -> bytes:
    return AUTHENTICATE_LABEL + challenge + server_fingerprint + device_id.encode()


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def sign(private_key: Ed25519PrivateKey, transcript: bytes) -> bytes:
    return private_key.sign(transcript)


def valid_public_key(public_key: bytes) -> bool:
    """A canonical point of the prime-order subgroup.

    Small-order keys (the neutral point among them) "verify" signatures that nobody
    made: with such a key, R = neutral and S = 0 pass the verification equation. They
    must never be enrolled, nor used to check a signature.
    """
    return len(public_key) == 32 and bool(crypto_core_ed25519_is_valid_point(public_key))


def verify(public_key: bytes, signature: bytes, transcript: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s over ``transcript``. Never raises."""
    if not valid_public_key(public_key):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, transcript)
    except (InvalidSignature, ValueError):
        return False
    return True
