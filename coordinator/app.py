"""Assembling the aiohttp application."""

from __future__ import annotations

import weakref
from pathlib import Path

import jinja2
from aiohttp import WSCloseCode, web
from sqlalchemy.ext.asyncio import AsyncEngine

from . import __version__, agent_link
from .api import kb, tickets, webhooks
from .api.middleware import authentication, errors
from .api.routes import routes
from .presence import Presence
from .settings import ENGINE, PRESENCE, SETTINGS, SOCKETS, Settings
from .tickets import sla
from .webhooks import deliver_in_background

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("coordinator.web", "templates"),
    autoescape=True,  # every value that came from an agent or a user is escaped
)
_STATIC = Path(__file__).parent / "web" / "static"
# Bodies of API requests are small JSON documents; agents use the websocket.
MAX_REQUEST_BODY = 1024 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def console(request: web.Request) -> web.Response:
    html = _TEMPLATES.get_template("index.html").render(version=__version__)
    return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)


async def _close_sockets(app: web.Application) -> None:
    # Tell agents we are going away, so they reconnect (to us or another node) at once.
    for ws in set(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"coordinator shutting down")


async def _dispose(app: web.Application) -> None:
    await app[ENGINE].dispose()


def create_app(engine: AsyncEngine, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[errors, authentication], client_max_size=MAX_REQUEST_BODY)
    app[SETTINGS] = settings
    app[ENGINE] = engine
    app[PRESENCE] = Presence()
    app[SOCKETS] = weakref.WeakSet()
    for table in (routes, tickets.routes, kb.routes, webhooks.routes):
        app.router.add_routes(table)
    app.router.add_get("/ws/agent", agent_link.handle)
    app.router.add_get("/", console)
    app.router.add_static("/static/", _STATIC)
    app.cleanup_ctx.append(sla.watchdog)
    app.cleanup_ctx.append(deliver_in_background)  # outbound webhooks
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_dispose)
    return app
