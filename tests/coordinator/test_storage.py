"""Migrations create exactly the declared schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator.enrollment import create_token
from coordinator.storage.engine import create_engine, migrate
from coordinator.storage.schema import metadata


def _describe(conn: Connection) -> dict[str, Any]:
    """Tables, columns (with nullability), unique constraints and foreign keys."""
    inspector = inspect(conn)
    described: dict[str, Any] = {}
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        unique |= {
            tuple(i["column_names"]) for i in inspector.get_indexes(table) if i.get("unique")
        }
        described[table] = {
            "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(table)},
            "primary_key": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            "unique": unique,
            "foreign_keys": {
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            },
        }
    return described


def _declared() -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        unique = {
            tuple(c.name for c in constraint.columns)
            for constraint in table.constraints
            if constraint.__class__.__name__ == "UniqueConstraint"
        }
        unique |= {(c.name,) for c in table.columns if c.unique}
        declared[table.name] = {
            "columns": {c.name: bool(c.nullable) for c in table.columns},
            "primary_key": tuple(c.name for c in table.primary_key.columns),
            "unique": unique,
            "foreign_keys": {
                ((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys
            },
        }
    return declared


async def _schema(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_describe)


async def test_migrations_create_exactly_the_declared_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await _schema(engine) == {}  # really a fresh database
        await migrate(engine)
        migrated = await _schema(engine)
        assert set(migrated) == set(metadata.tables)
        assert migrated == _declared()
    finally:
        await engine.dispose()


async def test_migrate_twice_is_harmless(engine: AsyncEngine) -> None:
    await create_token(engine)
    async with engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    before = await _schema(engine)
    await migrate(engine)
    await migrate(engine)
    assert await _schema(engine) == before
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT version_num FROM alembic_version"))
        ).all() == version
        assert (await conn.execute(text("SELECT count(*) FROM enrollment_tokens"))).scalar() == 1
    assert len(version) == 1
