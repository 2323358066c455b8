"""The durable outbox: messages that must reach the coordinator, kept on disk until
the coordinator acknowledges that it committed them.

SQLite with ``synchronous=FULL``: once :meth:`Outbox.put` returns, the message survives
a crash or a power cut. Several processes may use one outbox (``get-help`` writes while
``run`` sends); each message carries an idempotency key so a resend after a lost
acknowledgement is recognised by the coordinator instead of stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_BODY_BYTES = 192 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS receipts (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    acknowledged_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Item:
    key: str
    kind: str
    body: dict[str, Any]
    created_at: float


class Outbox:
    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(
                path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open outbox {path}: {exc}") from exc
        self._lock = threading.Lock()

    def put(self, kind: str, body: dict[str, Any], key: str | None = None) -> str:
        """Store a message durably and return its idempotency key."""
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        if len(text.encode()) > MAX_BODY_BYTES:
            raise ValueError(f"outbox message of {len(text)} bytes exceeds {MAX_BODY_BYTES}")
        key = key or uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, kind, body, created_at) VALUES (?, ?, ?, ?)",
                (key, kind, text, time.time()),
            )
        return key

    def pending(self, limit: int = 100, exclude: frozenset[str] = frozenset()) -> list[Item]:
        """Oldest first, so the coordinator sees messages in the order they were made."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, kind, body, created_at FROM outbox ORDER BY seq LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
        items = [Item(k, kind, json.loads(body), created) for k, kind, body, created in rows]
        return [item for item in items if item.key not in exclude][:limit]

    def mark_sent(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE key = ?", (key,))

    def remove(self, key: str, result: dict[str, Any] | None = None) -> None:
        """Forget a message: only once the coordinator acknowledged it. What the
        acknowledgement carried (a ticket reference) is kept as a receipt."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT kind FROM outbox WHERE key = ?", (key,)).fetchone()
                if row is not None and result:
                    self._db.execute(
                        "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?)",
                        (key, row[0], json.dumps(result), time.time()),
                    )
                self._db.execute("DELETE FROM outbox WHERE key = ?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def receipt(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM receipts WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def receipts(self, limit: int = 20) -> list[tuple[str, str, dict[str, Any], float]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, kind, result, acknowledged_at FROM receipts"
                " ORDER BY acknowledged_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [(k, kind, json.loads(r), at) for k, kind, r, at in rows]

    def contains(self, key: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone()
                is not None
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
