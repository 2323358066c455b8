"""Decoding, comparing and indexing inventories, without a server."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from agent import inventory_upload
from coordinator import inventory

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "glpi" / "glpi-example-computer_1.json"
DEVICE = "d" * 32


def example() -> dict:
    document = json.loads(EXAMPLE.read_text())
    document["deviceid"] = DEVICE
    return document


def test_a_full_body_decodes_to_the_document() -> None:
    body = inventory_upload.full_body(example())
    upload = inventory.decode(body, DEVICE)
    assert upload.document == example()
    assert upload.sha256 == inventory.sha256(example())


def test_a_diff_applies_to_its_base() -> None:
    old, new = example(), example()
    del new["content"]["memories"][1]
    del new["content"]["printers"]
    body = inventory_upload.diff_body(old, new)
    assert body is not None and body["base_sha256"] == inventory.sha256(old)
    upload = inventory.decode(body, DEVICE)
    assert upload.diff is not None
    assert inventory.apply_diff(old, upload.diff) == new
    assert inventory.sha256(inventory.apply_diff(old, upload.diff)) == body["sha256"]


def _refused(body: dict, match: str) -> None:
    with pytest.raises(inventory.Refused, match=match):
        inventory.decode(body, DEVICE)


def test_a_gzip_bomb_stops_at_the_bound() -> None:
    raw = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(raw) < inventory.MAX_COMPRESSED
    body = {
        "format": "glpi",
        "encoding": "gzip+base64",
        "data": base64.b64encode(raw).decode(),
        "sha256": "0" * 64,
    }
    _refused(body, "exceeds 20971520 bytes once decompressed")


def test_bad_bodies_are_refused_with_a_reason() -> None:
    good = inventory_upload.full_body(example())
    _refused({**good, "sha256": "0" * 64}, "sha256 does not match")
    _refused({**good, "data": "!!!"}, "not valid base64")
    _refused({**good, "data": base64.b64encode(b"not gzip").decode()}, "not valid gzip")
    truncated = base64.b64decode(good["data"])[:-20]
    _refused({**good, "data": base64.b64encode(truncated).decode()}, "gzip")
    big = base64.b64encode(b"\0" * (inventory.MAX_COMPRESSED + 1)).decode()
    _refused({**good, "data": big}, "compressed data exceeds")
    other = example()
    other["deviceid"] = "someone-else"
    _refused(inventory_upload.full_body(other), "an agent uploads only its own inventory")
    invalid = example()
    invalid["content"]["memories"][0]["capacity"] = "lots"
    _refused(inventory_upload.full_body(invalid), "content/memories/0/capacity")
    text = b"[1, 2"
    _refused(
        {
            "format": "glpi",
            "encoding": "gzip+base64",
            "data": base64.b64encode(gzip.compress(text)).decode(),
            "sha256": hashlib.sha256(text).hexdigest(),
        },
        "not JSON",
    )


def test_changes_are_item_by_item() -> None:
    old, new = example(), copy.deepcopy(example())
    del new["content"]["memories"][1]
    new["content"]["softwares"].append({"name": "htop", "arch": "x86_64", "version": "3"})
    new["content"]["storages"][0]["firmware"] = "NEW"
    new["content"]["drives"][0]["free"] = 1  # moves by itself: not news
    changes = inventory.compare(old, new)
    summary = {(s, k, c["item"]) for s, k, c in changes}
    assert summary == {
        ("memories", "removed", "memory slot 2"),
        ("softwares", "added", "software htop / x86_64"),
        ("storages", "changed", "disk PM951 NVMe SAMSUNG 256GB"),
    }
    changed = next(c for s, k, c in changes if k == "changed")
    assert changed["fields"] == {"firmware": ["BXV77D0Q", "NEW"]}


def test_the_search_row() -> None:
    row, terms = inventory.search_row(example())
    assert row["hostname"] == "glpixps"
    assert row["user_name"] == "trasher"
    assert row["serial"] == "640hp72"
    assert row["model"] == "xps 13 9350"
    assert row["cpu"].startswith("intel(r) core(tm) i5-6200u")
    assert row["os"] == "fedora 31 (workstation edition)"
    assert row["memory_mb"] == 7800
    assert row["min_disk_free_mb"] == min(d["free"] for d in example()["content"]["drives"])
    assert row["max_battery_wear_pct"] == 12
    words = {bytes.fromhex(t).decode() for t in terms}
    assert {"gitg", "glpixps", "trasher", "640hp72", "xps", "9350", "i5-6200u", "6200u"} <= words


def test_the_agent_sends_a_diff_only_when_the_base_is_known(tmp_path: Path) -> None:
    from agent.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox.db")
    try:
        doc = example()
        first = inventory_upload.queue(doc, DEVICE, tmp_path, outbox)
        assert outbox.pending()[0].body["format"] == "glpi"
        assert inventory_upload.queue(doc, DEVICE, tmp_path, outbox) == first  # unchanged
        del doc["content"]["memories"][1]
        second = inventory_upload.queue(doc, DEVICE, tmp_path, outbox)
        assert outbox.pending()[1].body["format"] == "glpi-diff"  # first still queued
        outbox.remove(first, {"inventory": "x"})
        outbox.remove(second, {"refused": "invalid_message", "message": "no"})
        del doc["content"]["printers"]
        inventory_upload.queue(doc, DEVICE, tmp_path, outbox)
        assert outbox.pending()[0].body["format"] == "glpi"  # the diff was refused
    finally:
        outbox.close()


async def test_common_and_rare_words_find_the_same_devices(tmp_path: Path, monkeypatch) -> None:
    """Both query plans (probe in hostname order, or the list of a rare word's devices)."""
    from sqlalchemy import insert

    from coordinator.clock import utcnow
    from coordinator.storage.engine import create_engine, migrate
    from coordinator.storage.schema import devices

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await migrate(engine)
        for n in range(6):
            device_id = f"dev{n}"
            doc = example()
            doc["deviceid"] = device_id
            doc["content"]["hardware"]["name"] = f"ws-{n:04d}"
            if n % 2:
                doc["content"]["softwares"].append({"name": "odd-tool", "arch": "x86_64"})
                doc["content"]["findings"] = [{"id": "battery.worn"}]
            async with engine.begin() as conn:
                await conn.execute(
                    insert(devices).values(
                        id=device_id,
                        hostname=f"WS-{n:04d}",
                        public_key=bytes([n]) * 32,
                        enrolled_at=utcnow(),
                    )
                )
                await inventory.store(conn, device_id, inventory.Upload(f"{n:064x}", doc))
        queries = [
            inventory.Filters(q="odd"),
            inventory.Filters(q="ODD-TOOL gitg"),
            inventory.Filters(q="0003"),
            inventory.Filters(finding="battery.worn"),
            inventory.Filters(finding="battery"),  # findings match whole ids only
            inventory.Filters(q="odd", ram_below=8000, battery_wear_above=10),
        ]
        rare = [[d["id"] for d in await inventory.search(engine, f)] for f in queries]
        monkeypatch.setattr(inventory, "COMMON", 1)
        common = [[d["id"] for d in await inventory.search(engine, f)] for f in queries]
        assert rare == common
        odd = ["dev1", "dev3", "dev5"]
        assert rare == [odd, odd, ["dev3"], odd, [], odd]
        page = await inventory.search(engine, inventory.Filters(q="odd"), limit=2, offset=1)
        assert [d["id"] for d in page] == ["dev3", "dev5"]
    finally:
        await engine.dispose()
