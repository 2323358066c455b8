"""The async engine and schema migrations.

SQLite (aiosqlite) is the embedded default; ``postgresql://`` URLs use asyncpg. The code
above this module is the same for both: SQLAlchemy Core only, no dialect tricks.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import ConfigError

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def normalize_url(url: str) -> str:
    """Map plain ``sqlite://`` and ``postgresql://`` URLs to their async drivers."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")
    return parsed.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI write (tokens, users) while the server runs; busy_timeout makes
    # the writers wait for each other instead of failing with "database is locked".
    # The driver's own BEGIN is turned off so that _sqlite_begin below decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # SQLITE_BUSY_SNAPSHOT when another writer committed in between; BEGIN IMMEDIATE
    # takes the write lock up front, so writers queue (busy_timeout) instead.
    # (SQLAlchemy's documented recipe for pysqlite/aiosqlite transactions.)
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _check_sqlite_path(url: str) -> None:
    # Say so before the driver tries: aiosqlite's failure leaves a worker thread that
    # complains after the event loop has closed.
    database = make_url(url).database
    if database and database != ":memory:" and not Path(database).parent.is_dir():
        raise ConfigError(f"cannot use the database: no directory {Path(database).parent}")


def create_engine(url: str) -> AsyncEngine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        _check_sqlite_path(url)
    engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("coordinator.storage") / "migrations"))
    return config


def _upgrade(connection: Connection) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; safe on every start)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
