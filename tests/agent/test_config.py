"""The agent's config dir: owner-only secrets, clear errors when something is off."""

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import AgentDir, Enrollment
from agent.errors import ConfigError, NotEnrolled
from agent.pinning import parse_coordinator_url, pinned_context, websocket_url


def test_new_key_is_owner_only_and_loads_back(tmp_path):
    d = AgentDir(tmp_path / "agent").ensure()
    key = d.new_key()
    assert stat.S_IMODE(d.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.root.stat().st_mode) == 0o700
    loaded = d.load_key()
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_key_readable_by_others_is_refused(tmp_path, mode):
    d = AgentDir(tmp_path / "agent").ensure()
    d.new_key()
    os.chmod(d.key_path, mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        d.load_key()


def test_missing_key_says_to_enroll(tmp_path):
    with pytest.raises(NotEnrolled, match="enroll"):
        AgentDir(tmp_path / "none").load_key()


def test_garbage_key_file_is_a_clear_error(tmp_path):
    d = AgentDir(tmp_path / "agent").ensure()
    d.key_path.write_bytes(b"not a key")
    os.chmod(d.key_path, 0o600)
    with pytest.raises(ConfigError, match="cannot read identity key"):
        d.load_key()


def test_enrollment_round_trip_and_damage(tmp_path):
    d = AgentDir(tmp_path / "agent").ensure()
    e = Enrollment("https://127.0.0.1:8443", "sha256:" + "ab" * 32, "dev-1", "host")
    key = Ed25519PrivateKey.generate()
    d.save_enrollment(e, "-----BEGIN CERTIFICATE-----\n", key)
    assert d.load_key().public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert d.load_enrollment() == e
    assert stat.S_IMODE(d.enrollment_path.stat().st_mode) == 0o600
    d.enrollment_path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        d.load_enrollment()
    d.enrollment_path.write_text('{"unexpected": 1}')
    with pytest.raises(ConfigError, match="damaged"):
        d.load_enrollment()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("https://desk.example.org", ("desk.example.org", 443)),
        ("wss://[::1]:9000", ("::1", 9000)),
    ],
)
def test_coordinator_urls(url, expected):
    assert parse_coordinator_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8443", "127.0.0.1:8443", "https://", "https://h:99999", "ftp://x"]
)
def test_bad_coordinator_urls_are_refused(url):
    with pytest.raises(ConfigError, match=r"coordinator URL|port"):
        parse_coordinator_url(url)


def test_websocket_url_keeps_host_and_port():
    assert websocket_url("https://[::1]:9000", "/ws/agent") == "wss://[::1]:9000/ws/agent"


def test_pinned_context_rejects_a_non_certificate():
    import ssl

    with pytest.raises(ssl.SSLError):
        pinned_context("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_clock_offset_is_kept_and_expires(tmp_path):
    d = AgentDir(tmp_path / "agent").ensure()
    assert d.clock_offset(now=1000.0) is None
    d.save_clock_offset(-130.5, measured_at=1000.0)
    assert stat.S_IMODE(d.clock_path.stat().st_mode) == 0o600
    assert d.clock_offset(now=1010.0) == -130.5
    assert d.clock_offset(now=1000.0 + 86401) is None  # too old to trust
    d.clock_path.write_text("garbage")
    assert d.clock_offset(now=1010.0) is None
