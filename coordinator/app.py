"""Assembling the aiohttp application."""

from __future__ import annotations

import weakref

from aiohttp import WSCloseCode, web
from sqlalchemy.ext.asyncio import AsyncEngine

from . import agent_link
from . import web as console
from .api import inventory, kb, remote, tickets, webhooks
from .api.middleware import authentication, errors
from .api.routes import routes
from .presence import Presence
from .remote import relay
from .settings import ENGINE, PRESENCE, SETTINGS, SOCKETS, Settings
from .tickets import sla
from .web.sessions import console as console_pages
from .webhooks import deliver_in_background

# The largest body: an attachment (10 MiB) with room for its headers. JSON bodies have
# their own, smaller limit (api/validation.py); agents use the websocket.
MAX_REQUEST_BODY = 11 * 1024 * 1024


async def _close_sockets(app: web.Application) -> None:
    # Tell agents we are going away, so they reconnect (to us or another node) at once.
    for ws in set(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"coordinator shutting down")


async def _dispose(app: web.Application) -> None:
    await app[ENGINE].dispose()


def create_app(engine: AsyncEngine, settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[errors, authentication, console_pages], client_max_size=MAX_REQUEST_BODY
    )
    app[SETTINGS] = settings
    app[ENGINE] = engine
    app[PRESENCE] = Presence()
    app[SOCKETS] = weakref.WeakSet()
    # inventory first: /api/v1/devices/export.csv must win over /api/v1/devices/{device_id}
    for table in (
        inventory.routes,
        routes,
        tickets.routes,
        kb.routes,
        webhooks.routes,
        remote.routes,
    ):
        app.router.add_routes(table)
    app.router.add_get("/ws/agent", agent_link.handle)
    relay.setup(app)  # remote sessions: /ws/viewer/<id>, /ws/relay/<id>
    console.setup(app)  # the web console: pages at /, static files at /static/
    app.cleanup_ctx.append(sla.watchdog)
    app.cleanup_ctx.append(deliver_in_background)  # outbound webhooks
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_dispose)
    return app
