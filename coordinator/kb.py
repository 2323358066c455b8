"""The knowledge base: articles, their search, safe rendering, and links to tickets.

Articles are Markdown. They are searched without any dialect-specific feature, so the
same code runs on SQLite and PostgreSQL: each article keeps a lowercased ``search_text``
(title, body and tags) and a query matches when every whitespace-separated term occurs
in it (``LIKE '%term%'``, with ``%``, ``_`` and the escape character escaped). Articles
whose title holds more of the terms come first.

Tags are stored lowercased, without duplicates, and written into ``search_text`` between
unit separators (``\\x1f``) that nothing else in it may contain, so that a tag filter is
one more ``LIKE`` that cannot be fooled by text in a body.

Rendering never lets raw HTML through (it is escaped), and links and images may only
point to ``http``, ``https`` or ``mailto`` URLs; anything else stays as plain text.

Every change is recorded in the audit log in the same transaction (``kb.created``,
``kb.updated``); linking an article to a ticket adds a ``kb_link`` event to the
ticket's timeline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from sqlalchemy import ColumnElement, and_, case, func, insert, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import audit
from .clock import isoformat, utcnow
from .errors import Conflict, NotFound
from .storage.schema import kb_articles, kb_links, ticket_events, tickets

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_TAGS = 20
MAX_TAG = 40
MAX_QUERY = 200
MAX_TERMS = 16
MAX_LIMIT = 100
MAX_REFERENCE = 16  # tickets.reference is a String(16)
SNIPPET_CHARS = 160
# Largest id a 32-bit INTEGER column holds: bigger ones cannot name an article.
MAX_ID = 2**31 - 1

_TAG_MARK = "\x1f"  # unit separator: around each tag in search_text, nowhere else
_ESCAPE = "\\"
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- rendering -----------------------------------------------------------------------


def _safe_link(url: str) -> bool:
    """Only absolute http(s) and mailto URLs become links or images."""
    match = _SCHEME_RE.match(url.strip())
    return match is not None and f"{match.group(1).lower()}:" in _SAFE_SCHEMES


def _markdown() -> MarkdownIt:
    # "js-default": CommonMark plus tables and strikethrough. html=False escapes raw HTML.
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return str(self.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def render_markdown(body: str) -> str:
    """The article body as HTML that is safe to put in a page: no raw HTML, safe links."""
    return _MD.render(body)


# --- search text ---------------------------------------------------------------------


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Tags trimmed, lowercased, without control characters or duplicates, in order."""
    seen: list[str] = []
    for tag in tags:
        clean = _CONTROL_RE.sub("", tag).strip().lower()[:MAX_TAG]
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def search_text(title: str, body: str, tags: Sequence[str]) -> str:
    text = f"{title}\n{body}".replace(_TAG_MARK, " ").lower()
    return text + "\n" + "".join(f"{_TAG_MARK}{tag}{_TAG_MARK}" for tag in tags)


def _like_escape(value: str) -> str:
    return (
        value.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    )


def query_terms(q: str | None) -> list[str]:
    """The lowercased terms of a query, without repeats (at most ``MAX_TERMS``)."""
    terms: list[str] = []
    for term in (q or "").lower().split():
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def _snippet(body: str, terms: Sequence[str]) -> str:
    """A short plain-text excerpt of the body, around the first term it contains."""
    text = " ".join(body.split())
    lower = text.lower()
    hits = [i for i in (lower.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - SNIPPET_CHARS // 4) if hits else 0
    end = start + SNIPPET_CHARS
    excerpt = text[start:end]
    return ("…" if start > 0 else "") + excerpt + ("…" if end < len(text) else "")


# --- reading -------------------------------------------------------------------------


def _article(row: Any, source_reference: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "body": row.body,
        "html": render_markdown(row.body),
        "tags": list(row.tags),
        "author": row.author,
        "created_at": isoformat(row.created_at),
        "updated_at": isoformat(row.updated_at),
        "source_ticket": source_reference,
    }


async def _get(conn: AsyncConnection, article_id: int) -> dict[str, Any]:
    if not 0 < article_id <= MAX_ID:
        raise NotFound(f"no knowledge base article with id {article_id}")
    query = (
        select(kb_articles, tickets.c.reference.label("source_reference"))
        .select_from(kb_articles.outerjoin(tickets, tickets.c.id == kb_articles.c.source_ticket_id))
        .where(kb_articles.c.id == article_id)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no knowledge base article with id {article_id}")
    return _article(row, row.source_reference)


async def get_article(engine: AsyncEngine, article_id: int) -> dict[str, Any]:
    """One article with its Markdown ``body`` and rendered ``html``; NotFound if none."""
    async with engine.connect() as conn:
        return await _get(conn, article_id)


async def search(
    engine: AsyncEngine,
    q: str | None = None,
    tag: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Articles holding every term of ``q`` (and ``tag``, if given), and how many match.

    Title hits first (more terms in the title rank higher), then the most recently
    updated. Without ``q`` every article (with that tag) matches.
    """
    terms = query_terms(q)
    conditions: list[ColumnElement[bool]] = [
        kb_articles.c.search_text.like(f"%{_like_escape(t)}%", escape=_ESCAPE) for t in terms
    ]
    if tag is not None:
        clean = normalize_tags([tag])
        mark = f"%{_TAG_MARK}{_like_escape(clean[0])}{_TAG_MARK}%" if clean else None
        if mark is None:
            return [], 0
        conditions.append(kb_articles.c.search_text.like(mark, escape=_ESCAPE))
    where = and_(true(), *conditions)
    title = func.lower(kb_articles.c.title)
    title_hits: ColumnElement[Any] = literal(0)
    for t in terms:
        title_hits = title_hits + case(
            (title.like(f"%{_like_escape(t)}%", escape=_ESCAPE), 1), else_=0
        )
    query = (
        select(
            kb_articles.c.id,
            kb_articles.c.title,
            kb_articles.c.tags,
            kb_articles.c.updated_at,
            kb_articles.c.body,
        )
        .where(where)
        .order_by(title_hits.desc(), kb_articles.c.updated_at.desc(), kb_articles.c.id.desc())
        .limit(max(0, min(limit, MAX_LIMIT)))
        .offset(max(0, offset))
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        total = (
            await conn.execute(select(func.count()).select_from(kb_articles).where(where))
        ).scalar_one()
    found = [
        {
            "id": r.id,
            "title": r.title,
            "tags": list(r.tags),
            "updated_at": isoformat(r.updated_at),
            "snippet": _snippet(r.body, terms),
        }
        for r in rows
    ]
    return found, int(total)


# --- writing -------------------------------------------------------------------------


async def _ticket(conn: AsyncConnection, reference: str) -> Any:
    row = None
    if 0 < len(reference) <= MAX_REFERENCE:
        query = select(
            tickets.c.id,
            tickets.c.reference,
            tickets.c.subject,
            tickets.c.category,
            tickets.c.status,
            tickets.c.resolution,
        ).where(tickets.c.reference == reference)
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no ticket with reference {reference[:32]!r}")
    return row


async def _create(
    conn: AsyncConnection,
    author: str,
    title: str,
    body: str,
    tags: Sequence[str],
    source_ticket_id: int | None,
) -> int:
    now = utcnow()
    clean_tags = normalize_tags(tags)[:MAX_TAGS]
    title = title.strip()[:MAX_TITLE]
    body = body[:MAX_BODY]
    result = await conn.execute(
        insert(kb_articles)
        .values(
            title=title,
            body=body,
            tags=clean_tags,
            author=author[:64],
            created_at=now,
            updated_at=now,
            source_ticket_id=source_ticket_id,
            search_text=search_text(title, body, clean_tags),
        )
        .returning(kb_articles.c.id)
    )
    article_id = int(result.scalar_one())
    details: dict[str, Any] = {"id": article_id, "title": title, "tags": clean_tags}
    if source_ticket_id is not None:
        details["source_ticket_id"] = source_ticket_id
    await audit.append(conn, author, "kb.created", f"kb:{article_id}", details)
    return article_id


async def create_article(
    engine: AsyncEngine,
    author: str,
    title: str,
    body: str,
    tags: Sequence[str] = (),
    source_ticket_reference: str | None = None,
) -> dict[str, Any]:
    """A new article, recorded as ``kb.created`` in the audit log."""
    async with engine.begin() as conn:
        source_id = None
        if source_ticket_reference is not None:
            source_id = (await _ticket(conn, source_ticket_reference)).id
        article_id = await _create(conn, author, title, body, tags, source_id)
        return await _get(conn, article_id)


async def update_article(
    engine: AsyncEngine,
    actor: str,
    article_id: int,
    title: str | None = None,
    body: str | None = None,
    tags: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Change the given fields (the others stay), recorded as ``kb.updated``."""
    async with engine.begin() as conn:
        current = await _get(conn, article_id)
        new_title = current["title"] if title is None else title.strip()[:MAX_TITLE]
        new_body = current["body"] if body is None else body[:MAX_BODY]
        new_tags = current["tags"] if tags is None else normalize_tags(tags)[:MAX_TAGS]
        changed = [
            name
            for name, old, new in (
                ("title", current["title"], new_title),
                ("body", current["body"], new_body),
                ("tags", current["tags"], new_tags),
            )
            if old != new
        ]
        if not changed:
            return current
        await conn.execute(
            update(kb_articles)
            .where(kb_articles.c.id == article_id)
            .values(
                title=new_title,
                body=new_body,
                tags=new_tags,
                updated_at=utcnow(),
                search_text=search_text(new_title, new_body, new_tags),
            )
        )
        await audit.append(
            conn, actor, "kb.updated", f"kb:{article_id}", {"id": article_id, "fields": changed}
        )
        return await _get(conn, article_id)


async def _link(conn: AsyncConnection, ticket: Any, article: dict[str, Any], actor: str) -> bool:
    exists = (
        await conn.execute(
            select(kb_links.c.article_id).where(
                kb_links.c.ticket_id == ticket.id, kb_links.c.article_id == article["id"]
            )
        )
    ).first()
    if exists is not None:
        return False
    now = utcnow()
    await conn.execute(
        insert(kb_links).values(
            ticket_id=ticket.id, article_id=article["id"], linked_at=now, linked_by=actor[:64]
        )
    )
    await conn.execute(
        insert(ticket_events).values(
            ticket_id=ticket.id,
            at=now,
            actor=actor[:64],
            kind="kb_link",
            data={"article_id": article["id"], "title": article["title"]},
        )
    )
    await conn.execute(update(tickets).where(tickets.c.id == ticket.id).values(updated_at=now))
    return True


async def link_article(
    engine: AsyncEngine, ticket_reference: str, article_id: int, actor: str
) -> bool:
    """Link an article to a ticket; True if newly linked, False if it already was.

    A new link also puts a ``kb_link`` event on the ticket's timeline; linking again
    changes nothing.
    """
    try:
        async with engine.begin() as conn:
            ticket = await _ticket(conn, ticket_reference)
            article = await _get(conn, article_id)
            return await _link(conn, ticket, article, actor)
    except IntegrityError:
        # Someone linked the same pair between our check and our insert: it is linked.
        async with engine.connect() as conn:
            ticket = await _ticket(conn, ticket_reference)
            await _get(conn, article_id)
            row = (
                await conn.execute(
                    select(kb_links.c.article_id).where(
                        kb_links.c.ticket_id == ticket.id, kb_links.c.article_id == article_id
                    )
                )
            ).first()
        if row is None:
            raise
        return False


async def linked_articles(engine: AsyncEngine, ticket_reference: str) -> list[dict[str, Any]]:
    """The articles linked to a ticket, in the order they were linked."""
    async with engine.connect() as conn:
        ticket = await _ticket(conn, ticket_reference)
        rows = (
            await conn.execute(
                select(kb_articles.c.id, kb_articles.c.title, kb_links.c.linked_at)
                .select_from(kb_links.join(kb_articles, kb_articles.c.id == kb_links.c.article_id))
                .where(kb_links.c.ticket_id == ticket.id)
                .order_by(kb_links.c.linked_at, kb_articles.c.id)
            )
        ).all()
    return [{"id": r.id, "title": r.title, "linked_at": isoformat(r.linked_at)} for r in rows]


def resolution_body(reference: str, subject: str, resolution: str) -> str:
    """The Markdown of an article written from a ticket's resolution."""
    return f"## Problem\n\n{subject.strip()}\n\n## Solution\n\n{resolution.strip()}\n\n_From ticket {reference}._\n"


async def article_from_ticket(
    engine: AsyncEngine, ticket_reference: str, actor: str, title: str | None = None
) -> dict[str, Any]:
    """Turn a ticket's resolution into an article linked to that ticket.

    The title defaults to the ticket's subject; its category, if any, becomes a tag.
    Raises Conflict when the ticket has no resolution yet.
    """
    async with engine.begin() as conn:
        ticket = await _ticket(conn, ticket_reference)
        if not (ticket.resolution or "").strip():
            raise Conflict(
                f"ticket {ticket.reference} has no resolution yet: resolve it before "
                "turning it into an article"
            )
        body = resolution_body(ticket.reference, ticket.subject, ticket.resolution)
        tags = [ticket.category] if ticket.category else []
        article_id = await _create(
            conn, actor, title or ticket.subject, body, tags, source_ticket_id=ticket.id
        )
        article = await _get(conn, article_id)
        await _link(conn, ticket, article, actor)
        return article
