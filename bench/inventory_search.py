"""Inventory search over many synthetic devices, on SQLite and PostgreSQL.

Inserts ``--devices`` devices (default 100,000) with their search rows straight into a
fresh database of each kind (about 75 search terms each: 60 software names), then times a mix of searches through
``coordinator.inventory.search`` (not HTTP). One JSON line per database and query kind,
and one overall: p50 and p95 in milliseconds. Target: p95 under 50 ms.

    .venv/bin/python -m bench.inventory_search [--devices 100000] [--rounds 20]
        [--pg postgresql://127.0.0.1:5432/test]   (the admin URL; a fresh database is made)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from coordinator import inventory
from coordinator.storage.engine import create_engine, migrate
from coordinator.storage.schema import device_search, device_terms, devices

BATCH = 2000
WORDS = [
    "office", "chrome", "firefox", "libreoffice", "python", "java", "zoom", "teams", "slack",
    "vlc", "gimp", "inkscape", "git", "docker", "node", "putty", "7zip", "acrobat", "outlook",
    "excel", "word", "powerpoint", "onedrive", "dropbox", "thunderbird", "notepad", "vscode",
    "postgres", "mysql", "openssl", "curl", "wget", "openssh", "nginx", "apache", "redis",
]  # fmt: skip
SOFTWARE = [f"{w}-{suffix}" for w in WORDS for suffix in ("core", "tools", "libs", "data", "x")]
MODELS = ["latitude 5420", "thinkpad t14", "elitebook 840", "xps 13 9350", "optiplex 7090"]
CPUS = ["intel(r) core(tm) i5-8250u", "intel(r) core(tm) i7-1165g7", "amd ryzen 5 5600u"]
OSES = ["windows 11 pro", "windows 10 pro", "ubuntu 22.04.4 lts", "macos 14.5", "fedora 40"]
USERS = [f"user{n:04d}" for n in range(3000)]
FINDINGS = ["disk.nearly_full", "battery.worn", "memory.pressure", "reboot.pending", "dns.fail"]


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def _rows(start: int, count: int, rng: random.Random) -> tuple[list, list, list]:
    from coordinator.clock import utcnow

    now = utcnow()
    devs, search, terms = [], [], []
    for i in range(start, start + count):
        device_id = f"{i:08x}" + uuid.UUID(int=rng.getrandbits(128)).hex[:24]
        hostname = f"ws-{i:06d}"
        devs.append(
            {
                "id": device_id,
                "hostname": hostname,
                "public_key": rng.getrandbits(256).to_bytes(32, "big"),
                "enrolled_at": now,
                "last_seen_at": now,
                "facts": {},
            }
        )
        software = rng.sample(SOFTWARE, 60)
        findings = rng.sample(FINDINGS, rng.choice((0, 0, 0, 1, 2)))
        row = {
            "device_id": device_id,
            "updated_at": now,
            "hostname": hostname,
            "user_name": rng.choice(USERS),
            "serial": f"sn{rng.getrandbits(40):010x}",
            "model": rng.choice(MODELS),
            "cpu": rng.choice(CPUS),
            "os": rng.choice(OSES),
            "memory_mb": rng.choice((2048, 4096, 8192, 8192, 16384, 16384, 32768)),
            "min_disk_free_mb": rng.randrange(100, 500_000),
            "max_battery_wear_pct": rng.choice((None, rng.randrange(0, 60))),
        }
        search.append(row)
        text = [row[k] for k in ("hostname", "user_name", "serial", "model", "cpu", "os")]
        found = {inventory._term(w) for v in text + software for w in inventory._words(v)}
        found |= {inventory._term(inventory._FINDING + f) for f in findings}
        terms.extend({"device_id": device_id, "term": t} for t in sorted(found))
    return devs, search, terms


async def _fill(engine: Any, total: int) -> list[str]:
    rng = random.Random(42)
    serials = []
    for start in range(0, total, BATCH):
        devs, search, terms = _rows(start, min(BATCH, total - start), rng)
        async with engine.begin() as conn:
            await conn.execute(insert(devices), devs)
            await conn.execute(insert(device_search), search)
            await conn.execute(insert(device_terms), terms)
        serials.extend(r["serial"] for r in search[:5])
    return serials


def _mix(total: int, serials: list[str], rng: random.Random) -> list[tuple[str, Any]]:
    F = inventory.Filters
    return [
        ("hostname", F(q=f"ws-{rng.randrange(total):06d}")),
        ("serial", F(q=rng.choice(serials).upper())),
        ("user", F(q=rng.choice(USERS))),
        ("software", F(q=rng.choice(SOFTWARE))),
        ("model", F(q=rng.choice(MODELS).split()[0])),
        ("no_match", F(q=f"zz{rng.getrandbits(32):x}")),
        ("ram_below", F(ram_below=rng.choice((4096, 8192)))),
        ("disk_free_below", F(disk_free_below=rng.randrange(1000, 20_000))),
        ("battery_wear_above", F(battery_wear_above=rng.randrange(20, 55))),
        ("finding", F(finding=rng.choice(FINDINGS))),
        ("software_and_ram", F(q=rng.choice(SOFTWARE), ram_below=8192)),
        ("list", F()),
    ]


async def _measure(name: str, url: str, total: int, rounds: int) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        started = time.perf_counter()
        # Loading is faster with the term index built once at the end (as a restore would).
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP INDEX ix_device_terms_term")
        serials = await _fill(engine, total)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "CREATE INDEX ix_device_terms_term ON device_terms (term, device_id)"
            )
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
        else:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        emit(database=name, devices=total, insert_seconds=round(time.perf_counter() - started, 1))
        rng = random.Random(7)
        times: dict[str, list[float]] = {}
        await inventory.search(engine, inventory.Filters(q="warm"), limit=50)  # warm up
        for _round in range(rounds):
            for kind, filters in _mix(total, serials, rng):
                t0 = time.perf_counter()
                await inventory.search(engine, filters, limit=50)
                times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        every = [t for ts in times.values() for t in ts]
        for kind, ts in times.items():
            emit(database=name, query=kind, **_percentiles(ts))
        emit(database=name, query="all", searches=len(every), **_percentiles(every))
    finally:
        await engine.dispose()


def _percentiles(ts: list[float]) -> dict[str, float]:
    ts = sorted(ts)
    return {
        "p50_ms": round(statistics.median(ts), 2),
        "p95_ms": round(ts[min(len(ts) - 1, int(len(ts) * 0.95))], 2),
        "max_ms": round(ts[-1], 2),
    }


async def _pg(admin_url: str, total: int, rounds: int) -> None:
    import asyncpg

    name = f"backdesk_bench_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(admin_url)
    except OSError as exc:
        emit(database="postgresql", skipped=f"not reachable at {admin_url}: {exc}")
        return
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        await _measure("postgresql", f"{admin_url.rsplit('/', 1)[0]}/{name}", total, rounds)
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--pg", default=os.environ.get("BACKDESK_TEST_PG", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    total = max(1, min(args.devices, 1_000_000))
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            await _measure("sqlite", url, total, args.rounds)
    if args.only != "sqlite":
        await _pg(args.pg, total, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
