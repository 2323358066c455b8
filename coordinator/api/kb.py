"""Knowledge base: articles, search, links to tickets.

    GET  /api/v1/kb?q=&tag=&limit=&offset=       search (kb.read)
    POST /api/v1/kb                              new article (kb.write)
    GET  /api/v1/kb/{article_id}                 one article, Markdown and safe HTML (kb.read)
    PUT  /api/v1/kb/{article_id}                 change title, body or tags (kb.write)
    POST /api/v1/tickets/{reference}/kb-links    link an article to a ticket (kb.write)
    POST /api/v1/tickets/{reference}/kb-article  article from the ticket's resolution (kb.write)

Domain errors become HTTP errors here: NotFound is a 404, Conflict a 409.
(``openapi.py`` imports this module while it builds the document, so the small response
helpers are repeated below instead of imported from it.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .. import kb
from ..errors import ApiError
from ..permissions import Permission
from ..settings import ENGINE
from . import spec
from .middleware import require
from .validation import read_json

routes = web.RouteTableDef()

DEFAULT_LIMIT = 20
MAX_OFFSET = 1_000_000

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _article_id(request: web.Request) -> int:
    raw = request.match_info["article_id"]
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= kb.MAX_ID:
        raise ApiError(404, "not_found", f"no knowledge base article with id {raw[:32]!r}")
    return int(raw)


@routes.get("/api/v1/kb")
async def search_articles(request: web.Request) -> web.Response:
    await require(request, Permission.KB_READ, "kb")
    q = spec.query_str(request, "q", kb.MAX_QUERY)
    if q is not None and len(q.split()) > kb.MAX_TERMS:
        raise ApiError(
            400, "invalid_parameter", f"search with at most {kb.MAX_TERMS} words", field="q"
        )
    tag = spec.query_str(request, "tag", kb.MAX_TAG)
    limit = spec.query_int(request, "limit", DEFAULT_LIMIT, 1, kb.MAX_LIMIT)
    offset = spec.query_int(request, "offset", 0, 0, MAX_OFFSET)
    articles, total = await kb.search(request.app[ENGINE], q, tag, limit, offset)
    return web.json_response({"articles": articles, "total": total})


@routes.post("/api/v1/kb")
async def create_article(request: web.Request) -> web.Response:
    who = await require(request, Permission.KB_WRITE, "kb")
    body = await read_json(request, "KbArticleCreate")
    article = await kb.create_article(
        request.app[ENGINE], who.name, body["title"], body["body"], body.get("tags", [])
    )
    return web.json_response(article, status=201)


@routes.get("/api/v1/kb/{article_id}")
async def get_article(request: web.Request) -> web.Response:
    await require(request, Permission.KB_READ, f"kb:{request.match_info['article_id'][:32]}")
    return web.json_response(await kb.get_article(request.app[ENGINE], _article_id(request)))


@routes.put("/api/v1/kb/{article_id}")
async def update_article(request: web.Request) -> web.Response:
    who = await require(request, Permission.KB_WRITE, f"kb:{request.match_info['article_id'][:32]}")
    article_id = _article_id(request)
    body = await read_json(request, "KbArticleUpdate")
    article = await kb.update_article(
        request.app[ENGINE],
        who.name,
        article_id,
        title=body.get("title"),
        body=body.get("body"),
        tags=body.get("tags"),
    )
    return web.json_response(article)


@routes.post("/api/v1/tickets/{reference}/kb-links")
async def link_article(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    who = await require(request, Permission.KB_WRITE, f"ticket:{reference[:32]}")
    body = await read_json(request, "KbLinkCreate")
    article_id = int(body["article_id"])  # JSON Schema counts 3.0 as an integer
    created = await kb.link_article(request.app[ENGINE], reference, article_id, who.name)
    return web.json_response(
        {"ticket": reference, "article_id": article_id, "created": created},
        status=201 if created else 200,
    )


@routes.post("/api/v1/tickets/{reference}/kb-article")
async def article_from_ticket(request: web.Request) -> web.Response:
    reference = request.match_info["reference"]
    who = await require(request, Permission.KB_WRITE, f"ticket:{reference[:32]}")
    body = await read_json(request, "KbArticleFromTicket")
    article = await kb.article_from_ticket(
        request.app[ENGINE], reference, who.name, title=body.get("title")
    )
    return web.json_response(article, status=201)


# --- OpenAPI -------------------------------------------------------------------------


_ARTICLE_ID = {
    "name": "article_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": kb.MAX_ID},
}
_REFERENCE = {
    "name": "reference",
    "in": "path",
    "required": True,
    "description": "The ticket's reference, e.g. BD-000123",
    "schema": {"type": "string", "maxLength": kb.MAX_REFERENCE},
}

_TITLE = {"type": "string", "minLength": 1, "maxLength": kb.MAX_TITLE, "pattern": "\\S"}
_MARKDOWN = {
    "type": "string",
    "minLength": 1,
    "maxLength": kb.MAX_BODY,
    "description": "Markdown; raw HTML is shown as text, links only to http, https, mailto",
}
_TAGS = {
    "type": "array",
    "maxItems": kb.MAX_TAGS,
    "description": "Stored trimmed, lowercased and without duplicates",
    "items": {
        "type": "string",
        "minLength": 1,
        "maxLength": kb.MAX_TAG,
        # Something visible, and no control characters.
        "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$",
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/kb": {
        "get": {
            "summary": "Search the knowledge base",
            "description": "Articles holding every word of `q` (case-insensitive), "
            "those with the words in their title first, then the most recently updated.",
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "description": f"Words to find (at most {kb.MAX_TERMS})",
                    "schema": {"type": "string", "maxLength": kb.MAX_QUERY},
                },
                {
                    "name": "tag",
                    "in": "query",
                    "description": "Only articles with this tag",
                    "schema": {"type": "string", "maxLength": kb.MAX_TAG},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": kb.MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                },
                {
                    "name": "offset",
                    "in": "query",
                    "schema": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_OFFSET,
                        "default": 0,
                    },
                },
            ],
            "responses": {
                "200": spec.ok("KbArticleList"),
                "400": spec.error("Bad query parameter; the message names it"),
                **spec.AUTH_ERRORS,
            },
        },
        "post": {
            "summary": "Write a new article",
            "requestBody": spec.body("KbArticleCreate"),
            "responses": {
                "201": spec.ok("KbArticle", "Created"),
                **spec.BODY_ERRORS,
                **spec.AUTH_ERRORS,
            },
        },
    },
    "/api/v1/kb/{article_id}": {
        "get": {
            "summary": "One article, as Markdown and as safe HTML",
            "parameters": [_ARTICLE_ID],
            "responses": {
                "200": spec.ok("KbArticle"),
                "404": spec.error("No such article"),
                **spec.AUTH_ERRORS,
            },
        },
        "put": {
            "summary": "Change an article's title, body or tags",
            "description": "Fields left out stay as they are.",
            "parameters": [_ARTICLE_ID],
            "requestBody": spec.body("KbArticleUpdate"),
            "responses": {
                "200": spec.ok("KbArticle"),
                "404": spec.error("No such article"),
                **spec.BODY_ERRORS,
                **spec.AUTH_ERRORS,
            },
        },
    },
    "/api/v1/tickets/{reference}/kb-links": {
        "post": {
            "summary": "Link an article to a ticket",
            "description": "Idempotent: linking the same article again answers 200 and "
            "changes nothing. A new link adds a `kb_link` event to the ticket's timeline.",
            "parameters": [_REFERENCE],
            "requestBody": spec.body("KbLinkCreate"),
            "responses": {
                "201": spec.ok("KbLink", "Linked"),
                "200": spec.ok("KbLink", "Already linked"),
                "404": spec.error("No such ticket or article"),
                **spec.BODY_ERRORS,
                **spec.AUTH_ERRORS,
            },
        }
    },
    "/api/v1/tickets/{reference}/kb-article": {
        "post": {
            "summary": "Turn a ticket's resolution into an article",
            "description": "The article's title defaults to the ticket's subject; it is "
            "linked to the ticket.",
            "parameters": [_REFERENCE],
            "requestBody": spec.body("KbArticleFromTicket"),
            "responses": {
                "201": spec.ok("KbArticle", "Created"),
                "404": spec.error("No such ticket"),
                "409": spec.error("The ticket has no resolution yet"),
                **spec.BODY_ERRORS,
                **spec.AUTH_ERRORS,
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "KbArticleCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "body"],
        "properties": {"title": _TITLE, "body": _MARKDOWN, "tags": _TAGS},
    },
    "KbArticleUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {"title": _TITLE, "body": _MARKDOWN, "tags": _TAGS},
    },
    "KbLinkCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["article_id"],
        "properties": {"article_id": {"type": "integer", "minimum": 1, "maximum": kb.MAX_ID}},
    },
    "KbArticleFromTicket": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"title": _TITLE},
    },
    "KbArticle": {
        "type": "object",
        "required": ["id", "title", "body", "html", "tags", "author", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "body": {"type": "string", "description": "Markdown"},
            "html": {"type": "string", "description": "The body rendered, safe to display"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "author": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "source_ticket": {
                "type": ["string", "null"],
                "description": "Reference of the ticket it was written from",
            },
        },
    },
    "KbArticleList": {
        "type": "object",
        "required": ["articles", "total"],
        "properties": {
            "articles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "title", "tags", "updated_at", "snippet"],
                    "properties": {
                        "id": {"type": "integer"},
                        "title": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "updated_at": {"type": "string", "format": "date-time"},
                        "snippet": {
                            "type": "string",
                            "description": "Plain-text excerpt of the body (not HTML)",
                        },
                    },
                },
            },
            "total": {"type": "integer", "description": "How many articles match in all"},
        },
    },
    "KbLink": {
        "type": "object",
        "required": ["ticket", "article_id", "created"],
        "properties": {
            "ticket": {"type": "string"},
            "article_id": {"type": "integer"},
            "created": {"type": "boolean", "description": "False if it was already linked"},
        },
    },
}
