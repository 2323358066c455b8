"""Fixtures for the knowledge base tests: migrated engines on both databases, tickets
written straight into a database, and one running coordinator per database for the
REST checks (with an API key for every role)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator import accounts
from coordinator.clock import utcnow
from coordinator.storage.engine import create_engine, migrate
from coordinator.storage.schema import tickets
from tests.conftest import ApiClient, Coordinator, _create_pg_database, _drop_pg_database

ROLES = ("l1", "l2", "l3", "onsite", "admin")
PASSWORD = "correct horse battery"


def database_url(coordinator: Coordinator) -> str:
    return coordinator.db or f"sqlite:///{coordinator.data_dir / 'backdesk.db'}"


async def insert_ticket(
    engine: AsyncEngine,
    subject: str = "Printer on floor 2 prints blank pages",
    resolution: str | None = None,
    status: str = "new",
    category: str | None = None,
) -> str:
    """A ticket row with every NOT NULL column filled; returns its reference."""
    now = utcnow()
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(tickets)
            .values(
                created_at=now,
                updated_at=now,
                channel="phone",
                requester="Ada Lovelace",
                category=category,
                subject=subject,
                description="It says it printed, the page is white.",
                impact=2,
                urgency=2,
                priority=3,
                level=1,
                status=status,
                group_name="l1",
                own_due_at=now + timedelta(hours=1),
                resolve_due_at=now + timedelta(hours=8),
                resolved_at=now if resolution else None,
                resolution=resolution,
                external_refs={},
                search_text=subject.lower(),
            )
            .returning(tickets.c.id)
        )
        ticket_id = int(result.scalar_one())
        reference = f"BD-{ticket_id:06d}"
        await conn.execute(
            update(tickets).where(tickets.c.id == ticket_id).values(reference=reference)
        )
    return reference


@pytest.fixture
async def engine(tmp_path: Path, database: str | None) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh database (SQLite file, or a new PostgreSQL database)."""
    eng = create_engine(database or f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}")
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@dataclass
class Served:
    """A running coordinator shared by a module, with a user and API key per role."""

    coordinator: Coordinator
    names: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, role: str = "l1") -> ApiClient:
        return ApiClient(self.coordinator, self.keys[role])

    def ticket(self, **values: str | None) -> str:
        """A ticket written straight into the coordinator's database."""

        async def make() -> str:
            eng = create_engine(database_url(self.coordinator))
            try:
                return await insert_ticket(eng, **values)  # type: ignore[arg-type]
            finally:
                await eng.dispose()

        return asyncio.run(make())


async def _make_accounts(served: Served) -> None:
    eng = create_engine(database_url(served.coordinator))
    try:
        for role in ROLES:
            name = f"kb-{role}-{uuid.uuid4().hex[:8]}"
            await accounts.add_user(eng, name, role, PASSWORD)
            served.names[role] = name
            served.keys[role] = await accounts.create_api_key(eng, name)
    finally:
        await eng.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A real ``backdesk-coordinator serve``, once on SQLite and once on PostgreSQL."""
    db = None if request.param == "sqlite" else _create_pg_database()
    coordinator = Coordinator(tmp_path_factory.mktemp(f"kb-{request.param}") / "data", db=db)
    coordinator.start()
    try:
        served = Served(coordinator)
        # Accounts through the coordinator's own code: a CLI run per role costs seconds.
        asyncio.run(_make_accounts(served))
        yield served
    finally:
        coordinator.stop()
        if db is not None:
            _drop_pg_database(db)
