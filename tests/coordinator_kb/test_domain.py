"""The knowledge base's domain functions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from coordinator import audit, kb
from coordinator.clock import isoformat
from coordinator.errors import Conflict, NotFound
from coordinator.storage.schema import audit_log, kb_articles, kb_links, ticket_events

from .conftest import insert_ticket


async def audit_rows(engine: AsyncEngine, action: str) -> list[Any]:
    async with engine.connect() as conn:
        query = select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        return list((await conn.execute(query)).all())


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def events(engine: AsyncEngine, kind: str = "kb_link") -> list[Any]:
    async with engine.connect() as conn:
        query = select(ticket_events).where(ticket_events.c.kind == kind)
        return list((await conn.execute(query.order_by(ticket_events.c.id))).all())


async def ids(engine: AsyncEngine, q: str | None = None, tag: str | None = None) -> list[int]:
    found, total = await kb.search(engine, q, tag=tag)
    assert total == len(found)
    return [a["id"] for a in found]


async def test_create_get_update_round_trip(engine: AsyncEngine) -> None:
    created = await kb.create_article(
        engine, "ada", "  VPN drops every night ", "Renew the **lease**.", ["VPN", "vpn", " Net "]
    )
    assert created["title"] == "VPN drops every night"
    assert created["tags"] == ["vpn", "net"]  # trimmed, lowercased, no duplicates
    assert created["author"] == "ada"
    assert created["source_ticket"] is None
    assert "<strong>lease</strong>" in created["html"]
    assert await kb.get_article(engine, created["id"]) == created

    updated = await kb.update_article(engine, "grace", created["id"], body="Reboot the router.")
    assert updated["title"] == created["title"] and updated["tags"] == created["tags"]
    assert updated["body"] == "Reboot the router."
    assert updated["updated_at"] >= created["updated_at"]
    assert updated["created_at"] == created["created_at"]
    assert await kb.get_article(engine, created["id"]) == updated
    assert await ids(engine, "router") == [created["id"]]
    assert await ids(engine, "lease") == []  # the old body is no longer searched

    [made] = await audit_rows(engine, "kb.created")
    assert (made.actor, made.target) == ("ada", f"kb:{created['id']}")
    assert made.details["title"] == "VPN drops every night"
    [changed] = await audit_rows(engine, "kb.updated")
    assert (changed.actor, changed.details["fields"]) == ("grace", ["body"])
    assert (await audit.verify(engine)).ok


async def test_an_update_that_changes_nothing_is_not_audited(engine: AsyncEngine) -> None:
    article = await kb.create_article(engine, "ada", "Title", "Body", ["a"])
    same = await kb.update_article(engine, "ada", article["id"], title="Title", tags=["A"])
    assert same == article
    assert await audit_rows(engine, "kb.updated") == []


async def test_unknown_articles_are_not_found(engine: AsyncEngine) -> None:
    for article_id in (1, 0, -5, 2**31, 10**30):
        with pytest.raises(NotFound):
            await kb.get_article(engine, article_id)
        with pytest.raises(NotFound):
            await kb.update_article(engine, "ada", article_id, title="x")
    assert await audit_rows(engine, "kb.updated") == []


async def test_search_needs_every_term(engine: AsyncEngine) -> None:
    both = await kb.create_article(engine, "ada", "Outlook", "Outlook hangs on start; profile")
    one = await kb.create_article(engine, "ada", "Outlook search", "Index is rebuilt")
    assert await ids(engine, "outlook profile") == [both["id"]]
    assert await ids(engine, "OUTLOOK") == [one["id"], both["id"]]
    assert await ids(engine, "outlook nothing-like-this") == []
    assert sorted(await ids(engine)) == sorted([both["id"], one["id"]])
    assert sorted(await ids(engine, "   ")) == sorted([both["id"], one["id"]])


async def test_title_hits_come_first(engine: AsyncEngine) -> None:
    in_title = await kb.create_article(engine, "ada", "Printer jams", "Open tray 2.")
    in_both = await kb.create_article(engine, "ada", "Printer toner jams", "toner low")
    in_body = await kb.create_article(engine, "ada", "Floor 3", "The printer jams; toner")
    # The most recent article only mentions the words in its body: it still comes last.
    assert await ids(engine, "printer jams") == [in_both["id"], in_title["id"], in_body["id"]]
    # Two terms in the title beat one.
    assert await ids(engine, "printer toner") == [in_both["id"], in_body["id"]]


async def test_like_wildcards_in_queries_are_literal(engine: AsyncEngine) -> None:
    percent = await kb.create_article(engine, "ada", "Disk 100% full", "Clean temp")
    underscore = await kb.create_article(engine, "ada", "Env", "Set HTTP_PROXY first")
    backslash = await kb.create_article(engine, "ada", "Share", r"Map \\server\share")
    await kb.create_article(engine, "ada", "Disk 1000 full", "HTTPXPROXY and 100 things")
    assert await ids(engine, "100%") == [percent["id"]]
    assert await ids(engine, "%") == [percent["id"]]
    assert await ids(engine, "http_proxy") == [underscore["id"]]
    assert await ids(engine, "_") == [underscore["id"]]
    assert await ids(engine, r"\\server") == [backslash["id"]]


async def test_tag_filter(engine: AsyncEngine) -> None:
    vpn = await kb.create_article(engine, "ada", "VPN", "Reconnect", ["vpn", "network"])
    wifi = await kb.create_article(engine, "ada", "Wi-Fi", "Forget the network", ["wifi"])
    # Words in a body or title, even table cells like "|vpn|", are not tags.
    await kb.create_article(engine, "ada", "vpn table", "| vpn |\n|vpn|\n", ["tables"])
    await kb.create_article(engine, "ada", "Prefix", "x", ["vpn-legacy", "my-vpn"])
    assert await ids(engine, tag="vpn") == [vpn["id"]]
    assert await ids(engine, tag=" VPN ") == [vpn["id"]]
    assert await ids(engine, "reconnect", tag="network") == [vpn["id"]]
    assert await ids(engine, "forget", tag="network") == []
    assert await ids(engine, tag="wifi") == [wifi["id"]]
    assert await ids(engine, tag="nothing") == []
    assert await ids(engine, tag="%") == []
    assert sorted(await ids(engine, "network")) == sorted([vpn["id"], wifi["id"]])


async def test_pages_and_total(engine: AsyncEngine) -> None:
    made = [await kb.create_article(engine, "ada", f"Paging {i}", "pager body") for i in range(5)]
    newest_first = [a["id"] for a in reversed(made)]
    page, total = await kb.search(engine, "paging", limit=2, offset=0)
    assert total == 5 and [a["id"] for a in page] == newest_first[:2]
    page, total = await kb.search(engine, "paging", limit=2, offset=4)
    assert total == 5 and [a["id"] for a in page] == newest_first[4:]
    page, total = await kb.search(engine, "paging", limit=2, offset=50)
    assert (page, total) == ([], 5)


async def test_results_carry_a_plain_text_snippet(engine: AsyncEngine) -> None:
    body = "Intro " + "filler " * 60 + "the **needle** is here " + "tail " * 60
    await kb.create_article(engine, "ada", "Haystack", body, ["x"])
    [found], _ = await kb.search(engine, "needle")
    assert set(found) == {"id", "title", "tags", "updated_at", "snippet"}
    assert "needle" in found["snippet"]
    assert found["snippet"].startswith("…") and found["snippet"].endswith("…")
    assert len(found["snippet"]) <= kb.SNIPPET_CHARS + 2
    [found], _ = await kb.search(engine)
    assert found["snippet"].startswith("Intro filler")


async def test_link_is_idempotent_and_writes_one_event(engine: AsyncEngine) -> None:
    reference = await insert_ticket(engine)
    article = await kb.create_article(engine, "ada", "Blank pages", "Replace the drum.")
    assert await kb.link_article(engine, reference, article["id"], "bob") is True
    assert await kb.link_article(engine, reference, article["id"], "carol") is False
    assert await count(engine, kb_links) == 1
    [event] = await events(engine)
    assert event.actor == "bob"
    assert event.data == {"article_id": article["id"], "title": "Blank pages"}
    assert await kb.linked_articles(engine, reference) == [
        {"id": article["id"], "title": "Blank pages", "linked_at": isoformat(event.at)}
    ]


async def test_concurrent_links_make_one_link(engine: AsyncEngine) -> None:
    reference = await insert_ticket(engine)
    article = await kb.create_article(engine, "ada", "Race", "Body")
    results = await asyncio.gather(
        *(kb.link_article(engine, reference, article["id"], f"tech{i}") for i in range(6))
    )
    assert sorted(results) == [False] * 5 + [True]
    assert await count(engine, kb_links) == 1
    assert len(await events(engine)) == 1


async def test_linking_unknown_things_is_not_found(engine: AsyncEngine) -> None:
    reference = await insert_ticket(engine)
    article = await kb.create_article(engine, "ada", "Known", "Body")
    with pytest.raises(NotFound, match="BD-999999"):
        await kb.link_article(engine, "BD-999999", article["id"], "bob")
    with pytest.raises(NotFound, match="ticket"):
        await kb.link_article(engine, "x" * 300, article["id"], "bob")
    with pytest.raises(NotFound, match="article"):
        await kb.link_article(engine, reference, article["id"] + 1, "bob")
    assert await count(engine, kb_links) == 0
    assert await events(engine) == []


async def test_article_from_ticket_refuses_a_ticket_without_resolution(
    engine: AsyncEngine,
) -> None:
    for resolution in (None, "   "):
        reference = await insert_ticket(engine, resolution=resolution, status="in_progress")
        with pytest.raises(Conflict, match="no resolution"):
            await kb.article_from_ticket(engine, reference, "bob")
    assert await count(engine, kb_articles) == 0
    assert await count(engine, kb_links) == 0
    assert await audit_rows(engine, "kb.created") == []
    with pytest.raises(NotFound):
        await kb.article_from_ticket(engine, "BD-424242", "bob")


async def test_article_from_ticket(engine: AsyncEngine) -> None:
    reference = await insert_ticket(
        engine,
        subject="Blank pages from PRN-02",
        resolution="Replaced the <b>drum</b> unit.",
        status="resolved",
        category="Printing",
    )
    article = await kb.article_from_ticket(engine, reference, "bob")
    assert article["title"] == "Blank pages from PRN-02"
    assert article["tags"] == ["printing"]
    assert article["author"] == "bob"
    assert article["source_ticket"] == reference
    assert "Replaced the <b>drum</b> unit." in article["body"]
    assert reference in article["body"]
    assert "&lt;b&gt;drum&lt;/b&gt;" in article["html"]
    assert await ids(engine, "drum") == [article["id"]]
    [event] = await events(engine)
    assert event.data == {"article_id": article["id"], "title": article["title"]}
    [made] = await audit_rows(engine, "kb.created")
    assert made.actor == "bob" and made.details["id"] == article["id"]

    titled = await kb.article_from_ticket(engine, reference, "bob", title="Drum replacement")
    assert titled["title"] == "Drum replacement"
    assert [a["id"] for a in await kb.linked_articles(engine, reference)] == [
        article["id"],
        titled["id"],
    ]


async def test_create_with_a_source_ticket(engine: AsyncEngine) -> None:
    reference = await insert_ticket(engine)
    article = await kb.create_article(engine, "ada", "T", "B", source_ticket_reference=reference)
    assert article["source_ticket"] == reference
    with pytest.raises(NotFound):
        await kb.create_article(engine, "ada", "T", "B", source_ticket_reference="BD-000404")
    assert await count(engine, kb_articles) == 1
    assert len(await audit_rows(engine, "kb.created")) == 1
