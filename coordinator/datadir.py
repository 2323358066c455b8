"""The coordinator's data directory: where its database, certificate and key live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DEFAULT_DATA_DIR = Path(os.environ.get("BACKDESK_DATA_DIR", "/var/lib/backdesk"))


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "backdesk.db"

    @property
    def tls_cert(self) -> Path:
        return self.root / "tls" / "cert.pem"

    @property
    def tls_key(self) -> Path:
        return self.root / "tls" / "key.pem"

    def default_db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}"

    def ensure(self) -> DataDir:
        """Create the directory (owner-only) or explain why it cannot be used."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.root / "tls").mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create data dir {self.root}: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK):
            raise ConfigError(f"data dir {self.root} is not writable by this user")
        return self
