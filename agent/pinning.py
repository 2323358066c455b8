"""Certificate pinning: trust the coordinator's certificate, and nothing else.

Enrollment fetches the certificate, compares its SHA-256 with the fingerprint the
administrator gave, and keeps it. Every later connection trusts only that certificate
(as its own trust anchor, so a self-signed one works and no public CA is involved), then
checks the fingerprint once more on the live connection.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from protocol import identity

from .errors import ConfigError, PinningError, Unreachable

CONNECT_TIMEOUT = 10.0


def parse_coordinator_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "wss") or not parts.hostname:
        raise ConfigError(f"coordinator URL must look like https://HOST:PORT, not {url!r}")
    try:
        port = parts.port or 443
    except ValueError:
        raise ConfigError(f"bad port in coordinator URL {url!r}") from None
    return parts.hostname, port


def websocket_url(url: str, path: str) -> str:
    host, port = parse_coordinator_url(url)
    host = f"[{host}]" if ":" in host else host
    return f"wss://{host}:{port}{path}"


async def fetch_certificate(host: str, port: int) -> bytes:
    """The DER certificate the server presents, without trusting it yet."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we verify by fingerprint right below
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach the coordinator at {host}:{port}: {reason}") from exc
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
    if not der:
        raise PinningError(f"{host}:{port} presented no certificate")
    return bytes(der)


def check_fingerprint(der: bytes, expected: bytes) -> None:
    actual = identity.certificate_fingerprint(der)
    if not identity.fingerprints_match(actual, expected):
        raise PinningError(
            "the coordinator's certificate fingerprint is "
            f"{identity.format_fingerprint(actual)}, not the "
            f"{identity.format_fingerprint(expected)} you gave: check it with your "
            "administrator (someone may be intercepting the connection)"
        )


def pinned_context(certificate_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=certificate_pem)
    # The pinned certificate is the trust anchor itself; the name in it does not matter.
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes:
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    if not der:
        raise PinningError("the coordinator presented no certificate")
    return bytes(der)
