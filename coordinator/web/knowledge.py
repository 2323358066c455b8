"""Knowledge base pages: search, read, write and edit articles.

Article bodies are Markdown rendered by ``kb.render_markdown`` (raw HTML escaped, links
limited to http, https and mailto); that HTML is the only markup the console inserts
as is. Titles and tags are escaped like everything else.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from markupsafe import Markup

from .. import kb
from ..errors import NotFound
from ..permissions import Permission, allowed
from ..settings import ENGINE
from .pages import deny, forbidden, not_found
from .render import redirect, render
from .sessions import signed_in

routes = web.RouteTableDef()


def _article_id(request: web.Request) -> int | None:
    raw = request.match_info["article_id"]
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= kb.MAX_ID:
        return None
    return int(raw)


def _tags(raw: str) -> list[str]:
    return kb.normalize_tags(raw.split(","))[: kb.MAX_TAGS]


def _form_values(form: Any) -> dict[str, str]:
    def get(name: str, limit: int) -> str:
        value = form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    return {
        "title": get("title", kb.MAX_TITLE + 1).strip(),
        "body": get("body", kb.MAX_BODY + 1),
        "tags": get("tags", 1000),
    }


def _problem(values: dict[str, str]) -> str | None:
    if not values["title"] or not values["body"].strip():
        return "An article needs a title and a body."
    if len(values["title"]) > kb.MAX_TITLE:
        return f"Keep the title under {kb.MAX_TITLE} characters."
    if len(values["body"]) > kb.MAX_BODY:
        return f"Keep the body under {kb.MAX_BODY} characters."
    return None


@routes.get("/kb")
async def search(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_READ):
        return await deny(request, who, forbidden(who, Permission.KB_READ))
    q = request.query.get("q", "").strip()[: kb.MAX_QUERY]
    tag = request.query.get("tag", "").strip()[: kb.MAX_TAG] or None
    articles, total = await kb.search(request.app[ENGINE], q or None, tag, limit=50)
    return render(request, "kb_list.html", articles=articles, total=total, q=q, tag=tag)


@routes.get("/kb/new")
async def new_form(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE))
    return render(
        request, "kb_edit.html", article=None, values={"title": "", "body": "", "tags": ""}
    )


@routes.post("/kb/new")
async def create(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE))
    values = _form_values(await request.post())
    problem = _problem(values)
    if problem:
        return render(
            request, "kb_edit.html", status=400, article=None, values=values, error=problem
        )
    article = await kb.create_article(
        request.app[ENGINE], who.name, values["title"], values["body"], _tags(values["tags"])
    )
    return redirect(f"/kb/{article['id']}", "ok", "Article published.")


async def _load_article(request: web.Request) -> dict[str, Any] | None:
    article_id = _article_id(request)
    if article_id is None:
        return None
    try:
        return await kb.get_article(request.app[ENGINE], article_id)
    except NotFound:
        return None


@routes.get("/kb/{article_id}")
async def article_page(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_READ):
        return await deny(request, who, forbidden(who, Permission.KB_READ))
    article = await _load_article(request)
    if article is None:
        return not_found(request, "There is no such article.")
    # kb.render_markdown escapes raw HTML and only lets safe links through.
    body_html = Markup(article["html"])  # noqa: S704
    return render(request, "kb_article.html", article=article, body_html=body_html)


@routes.get("/kb/{article_id}/edit")
async def edit_form(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE))
    article = await _load_article(request)
    if article is None:
        return not_found(request, "There is no such article.")
    values = {
        "title": article["title"],
        "body": article["body"],
        "tags": ", ".join(article["tags"]),
    }
    return render(request, "kb_edit.html", article=article, values=values)


@routes.post("/kb/{article_id}/edit")
async def update(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    if not allowed(who.role, Permission.KB_WRITE):
        return await deny(request, who, forbidden(who, Permission.KB_WRITE))
    article_id = _article_id(request)
    values = _form_values(await request.post())
    engine = request.app[ENGINE]
    try:
        if article_id is None:
            raise NotFound("no such article")
        article = await kb.get_article(engine, article_id)
        problem = _problem(values)
        if problem:
            return render(
                request, "kb_edit.html", status=400, article=article, values=values, error=problem
            )
        await kb.update_article(
            engine,
            who.name,
            article_id,
            title=values["title"],
            body=values["body"],
            tags=_tags(values["tags"]),
        )
    except NotFound:
        return not_found(request, "There is no such article.")
    return redirect(f"/kb/{article_id}", "ok", "Article saved.")
