"""The agent's config dir: its identity key, the pinned certificate, its outbox.

Everything secret is written owner-only; a key file that others can read is refused
rather than used, since whoever reads it can speak for this device.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import ConfigError, NotEnrolled


def default_config_dir() -> Path:
    if env := os.environ.get("BACKDESK_AGENT_DIR"):
        return Path(env)
    if os.name == "posix" and os.geteuid() == 0:
        return Path("/var/lib/backdesk-agent")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "backdesk-agent"


@dataclass(frozen=True)
class Enrollment:
    """What enrollment leaves behind (agent.json)."""

    coordinator: str
    fingerprint: str
    device_id: str
    hostname: str


def write_private(path: Path, data: bytes) -> None:
    """Write atomically, owner read/write only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AgentDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def key_path(self) -> Path:
        return self.root / "identity.key"

    @property
    def cert_path(self) -> Path:
        return self.root / "coordinator.pem"

    @property
    def enrollment_path(self) -> Path:
        return self.root / "agent.json"

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.db"

    def ensure(self) -> AgentDir:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create config dir {self.root}: {exc.strerror}") from exc
        return self

    # identity key

    def new_key(self) -> Ed25519PrivateKey:
        """A fresh identity, written to disk at once (see also ``save_key``)."""
        key = Ed25519PrivateKey.generate()
        self.save_key(key)
        return key

    def save_key(self, key: Ed25519PrivateKey) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(self.key_path, pem)

    def load_key(self) -> Ed25519PrivateKey:
        try:
            mode = self.key_path.stat().st_mode
        except FileNotFoundError:
            raise NotEnrolled(
                f"no identity in {self.root}: run `backdesk-agent enroll` first"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{self.key_path} is readable by other users: run `chmod 600 {self.key_path}`"
            )
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read identity key {self.key_path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{self.key_path} is not an Ed25519 key")
        return key

    # enrollment record

    def save_enrollment(
        self, enrollment: Enrollment, certificate_pem: str, key: Ed25519PrivateKey
    ) -> None:
        """Keep a completed enrollment: key, pinned certificate, then the record that
        says the other two are in use (written last, atomically)."""
        self.save_key(key)
        write_private(self.cert_path, certificate_pem.encode())
        write_private(self.enrollment_path, json.dumps(asdict(enrollment), indent=2).encode())

    def load_enrollment(self) -> Enrollment:
        try:
            data = json.loads(self.enrollment_path.read_text())
            return Enrollment(**data)
        except FileNotFoundError:
            raise NotEnrolled(
                f"this agent is not enrolled ({self.root}): run `backdesk-agent enroll` first"
            ) from None
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{self.enrollment_path} is damaged: {exc}; enroll again") from exc

    # clock: what the service last measured against the coordinator

    @property
    def clock_path(self) -> Path:
        return self.root / "clock.json"

    def save_clock_offset(self, offset: float, measured_at: float) -> None:
        write_private(
            self.clock_path, json.dumps({"offset": offset, "measured_at": measured_at}).encode()
        )

    def clock_offset(self, now: float, max_age: float = 86400) -> float | None:
        """Seconds the coordinator's clock is ahead of ours, if measured recently."""
        try:
            data = json.loads(self.clock_path.read_text())
            offset, at = float(data["offset"]), float(data["measured_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return offset if 0 <= now - at <= max_age else None

    def certificate_pem(self) -> str:
        try:
            return self.cert_path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read pinned certificate {self.cert_path}: {exc}") from exc
