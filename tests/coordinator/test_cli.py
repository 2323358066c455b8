"""The ``backdesk-coordinator`` command line, run as the real binary.

Scripts depend on these contracts: what is printed on success (the result alone, or
JSON with ``--json``), exit codes, and one clear sentence on stderr on failure.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import COORDINATOR, PG_ADMIN_URL, Coordinator, run_cli

FINGERPRINT_RE = re.compile(r"sha256:[0-9a-f]{64}")
TOKEN_RE = re.compile(r"bdt_[A-Za-z0-9_-]{20,}")
API_KEY_RE = re.compile(r"bdk_[A-Za-z0-9_-]{40,}")
PASSWORD = "correct horse battery"


def cli(data_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(COORDINATOR, *args, "--data-dir", str(data_dir), input=input, check=False)


def ok(data_dir: Path, *args: str, input: str | None = None) -> str:
    result = cli(data_dir, *args, input=input)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def assert_one_sentence_failure(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 1, one error line on stderr naming ``words``, no traceback (README)."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # Log lines (timestamped) may precede it; the error itself is a single line.
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word.lower() in errors[0].lower(), (word, result.stderr)
    return errors[0]


def db_rows(data_dir: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "backdesk.db") as conn:
        return conn.execute(query).fetchall()


def cert_sha256(data_dir: Path) -> str:
    cert = x509.load_pem_x509_certificate((data_dir / "tls" / "cert.pem").read_bytes())
    return "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def add_user(data_dir: Path, name: str, role: str = "l1", *extra: str) -> str:
    return ok(
        data_dir,
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        *extra,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data dir made once by ``migrate --json`` (and what it printed), copied per test."""
    template = tmp_path_factory.mktemp("template") / "data"
    return template, ok(template, "migrate", "--json")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data dir that does not exist yet."""
    return tmp_path / "data"


@pytest.fixture
def migrated(tmp_path: Path, migrated_template: tuple[Path, str]) -> Path:
    """A data dir already migrated (and holding a certificate), private to the test."""
    copy = tmp_path / "migrated"
    shutil.copytree(migrated_template[0], copy)
    return copy


# --- fingerprint, TLS identity, data dir ------------------------------------------------


def test_fingerprint_is_the_certificate_sha256_and_what_serve_prints(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"  # created with its parents on first use
    out = ok(data_dir, "fingerprint")
    assert FINGERPRINT_RE.fullmatch(out.rstrip("\n")), repr(out)
    assert out.count("\n") == 1  # the fingerprint alone, on one line
    assert out.strip() == cert_sha256(data_dir)

    # Owner-only data dir; the private key readable by its owner alone, and it is
    # really the certificate's key.
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "tls").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "tls" / "key.pem").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(
        (data_dir / "tls" / "key.pem").read_bytes(), password=None
    )
    cert = x509.load_pem_x509_certificate((data_dir / "tls" / "cert.pem").read_bytes())
    assert key.public_key() == cert.public_key()

    assert json.loads(ok(data_dir, "fingerprint", "--json"))["fingerprint"] == out.strip()

    coordinator = Coordinator(data_dir)
    coordinator.start()
    try:
        assert coordinator.fingerprint == out.strip()
    finally:
        coordinator.stop()


def test_key_and_fingerprint_stay_the_same_across_restarts(data_dir: Path) -> None:
    coordinator = Coordinator(data_dir)
    coordinator.start()
    try:
        first = coordinator.fingerprint
        key = (data_dir / "tls" / "key.pem").read_bytes()
        coordinator.kill()
        coordinator.start()
        assert coordinator.fingerprint == first
        assert (data_dir / "tls" / "key.pem").read_bytes() == key
    finally:
        coordinator.stop()
    assert first == cert_sha256(data_dir)


def test_unusable_data_dir_fails_clearly(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert_one_sentence_failure(cli(not_a_dir, "fingerprint"), "data dir")


# --- tokens -----------------------------------------------------------------------------


def test_token_create_prints_the_token_alone_and_stores_only_its_hash(migrated: Path) -> None:
    out = ok(migrated, "token", "create")
    token = out.rstrip("\n")
    assert out.count("\n") == 1 and TOKEN_RE.fullmatch(token), repr(out)
    rows = db_rows(
        migrated, "SELECT token_hash, created_at, expires_at, used_at FROM enrollment_tokens"
    )
    assert len(rows) == 1
    token_hash, created_at, expires_at, used_at = rows[0]
    assert bytes(token_hash) == hashlib.sha256(token.encode()).digest()
    assert used_at is None
    lifetime = datetime.fromisoformat(expires_at) - datetime.fromisoformat(created_at)
    assert lifetime == timedelta(hours=24)  # the documented default
    for path in migrated.glob("backdesk.db*"):
        assert token.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("expires", "lifetime"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
    ],
)
def test_token_create_json_with_expires(migrated: Path, expires: str, lifetime: timedelta) -> None:
    before = datetime.now(UTC)
    result = json.loads(ok(migrated, "token", "create", "--expires", expires, "--json"))
    after = datetime.now(UTC)
    assert set(result) >= {"token", "expires_at"}
    assert TOKEN_RE.fullmatch(result["token"])
    expires_at = datetime.fromisoformat(result["expires_at"])
    assert expires_at.tzinfo is not None
    assert before + lifetime <= expires_at <= after + lifetime


@pytest.mark.parametrize(
    "expires",
    [
        "abc",
        "0s",
        "400d",
        # Absurdly large: must be refused like 400d, not crash with an OverflowError.
        "99999999999999999999d",
    ],
)
def test_token_create_refuses_bad_lifetimes(migrated: Path, expires: str) -> None:
    result = cli(migrated, "token", "create", "--expires", expires)
    assert_one_sentence_failure(result)
    assert db_rows(migrated, "SELECT count(*) FROM enrollment_tokens") == [(0,)]


# --- users and API keys -----------------------------------------------------------------


def test_user_add_with_password_and_confirmation_on_stdin(migrated: Path) -> None:
    out = add_user(migrated, "alice", "admin")
    assert "alice" in out and "admin" in out
    listed = json.loads(ok(migrated, "user", "list", "--json"))["users"]
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [("alice", "admin", False)]
    ((password_hash,),) = db_rows(migrated, "SELECT password_hash FROM users")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_user_add_json(migrated: Path) -> None:
    result = json.loads(add_user(migrated, "bob.smith@desk", "onsite", "--json"))
    assert set(result) >= {"id", "name", "role"}
    assert result["name"] == "bob.smith@desk" and result["role"] == "onsite"
    assert isinstance(result["id"], int)
    assert db_rows(migrated, "SELECT id, name, role FROM users") == [
        (result["id"], "bob.smith@desk", "onsite")
    ]


@pytest.mark.parametrize(
    ("name", "stdin", "words"),
    [
        ("carol", f"{PASSWORD}\n{PASSWORD}x\n", ["differ"]),
        ("carol", "short\nshort\n", ["at least 10"]),
        ("carol", "", ["password"]),
        (".carol", f"{PASSWORD}\n{PASSWORD}\n", ["name"]),
        ("c" * 65, f"{PASSWORD}\n{PASSWORD}\n", ["name"]),
    ],
    ids=[
        "mismatch",
        "short",
        "no-password",
        "leading-dot",
        "too-long",
    ],
)
def test_user_add_refuses_bad_input(
    migrated: Path, name: str, stdin: str, words: list[str]
) -> None:
    result = cli(migrated, "user", "add", name, "--role", "l1", "--password-stdin", input=stdin)
    assert_one_sentence_failure(result, *words)
    assert db_rows(migrated, "SELECT count(*) FROM users") == [(0,)]


def test_user_add_refuses_an_invalid_role(migrated: Path) -> None:
    result = cli(
        migrated,
        "user",
        "add",
        "dave",
        "--role",
        "superuser",
        "--password-stdin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    # README: "Every command exits 0 on success and 1 with one sentence on standard error".
    assert_one_sentence_failure(result, "role", "superuser", "admin")
    assert db_rows(migrated, "SELECT count(*) FROM users") == [(0,)]


def test_user_add_refuses_a_duplicate_name(migrated: Path) -> None:
    add_user(migrated, "erin", "l2")
    result = cli(
        migrated,
        "user",
        "add",
        "erin",
        "--role",
        "admin",
        "--password-stdin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert_one_sentence_failure(result, "erin", "already exists")
    assert db_rows(migrated, "SELECT name, role FROM users") == [("erin", "l2")]


def test_apikey_create_prints_the_key_alone_and_json(migrated: Path) -> None:
    add_user(migrated, "frank", "l3")
    out = ok(migrated, "apikey", "create", "--user", "frank")
    key = out.rstrip("\n")
    assert out.count("\n") == 1 and API_KEY_RE.fullmatch(key), repr(out)
    result = json.loads(ok(migrated, "apikey", "create", "--user", "frank", "--json"))
    assert set(result) >= {"key", "user"}
    assert result["user"] == "frank" and API_KEY_RE.fullmatch(result["key"])
    assert result["key"] != key
    stored = db_rows(migrated, "SELECT key_hash FROM api_keys ORDER BY id")
    assert [bytes(h) for (h,) in stored] == [
        hashlib.sha256(k.encode()).digest() for k in (key, result["key"])
    ]


def test_apikey_create_for_an_unknown_user_fails_clearly(migrated: Path) -> None:
    result = cli(migrated, "apikey", "create", "--user", "nobody")
    assert_one_sentence_failure(result, "nobody")
    assert db_rows(migrated, "SELECT count(*) FROM api_keys") == [(0,)]


# --- migrate and serve ------------------------------------------------------------------


def test_migrate_is_idempotent_and_keeps_data(
    migrated: Path, migrated_template: tuple[Path, str]
) -> None:
    assert json.loads(migrated_template[1]) == {"status": "ok"}
    schema = db_rows(migrated, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    version = db_rows(migrated, "SELECT version_num FROM alembic_version")
    assert len(version) == 1
    add_user(migrated, "grace", "admin")
    assert ok(migrated, "migrate").strip()
    assert db_rows(migrated, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert db_rows(migrated, "SELECT version_num FROM alembic_version") == version
    assert db_rows(migrated, "SELECT name FROM users") == [("grace",)]


@pytest.mark.parametrize(
    ("command", "db"),
    [
        ("migrate", PG_ADMIN_URL.rsplit("/", 1)[0] + "/backdesk_no_such_database"),
        ("serve", "sqlite:////nonexistent-backdesk-dir/backdesk.db"),
    ],
    ids=["migrate-postgresql-missing-database", "serve-sqlite-missing-directory"],
)
def test_an_unusable_database_fails_clearly(data_dir: Path, command: str, db: str) -> None:
    extra = ["--port", "0"] if command == "serve" else []
    result = run_cli(
        COORDINATOR, command, "--data-dir", str(data_dir), "--db", db, *extra, check=False
    )
    assert_one_sentence_failure(result, "database")


def test_migrate_on_an_unreachable_database_fails_clearly(data_dir: Path) -> None:
    result = run_cli(
        COORDINATOR,
        "migrate",
        "--data-dir",
        str(data_dir),
        "--db",
        "postgresql://127.0.0.1:1/nothing",
        check=False,
    )
    assert_one_sentence_failure(result, "database")


def test_serve_on_a_port_in_use_fails_clearly(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen(
            [COORDINATOR, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError("serve kept running on a port already in use") from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert_one_sentence_failure(result, "cannot listen", str(port))
