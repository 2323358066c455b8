"""The web console: server-rendered pages (Jinja2) and small ES modules, no build step.

sessions.py     cookie sessions, CSRF and origin checks, sign-in rate limits, headers
render.py       the template environment, flash messages, SLA clocks
signin.py       /login, /logout
pages.py        /queue, /tickets/...: the desk's pages and ticket actions
diagnostics.py  what an agent attached, shaped for the ticket page
knowledge.py    /kb: knowledge base search, articles, editing
users.py        /users: accounts, for administrators
devices.py      /devices: inventory search and device pages, for on-site staff
remote.py       /sessions/<id>: the live remote session page; the ticket page's buttons
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


def setup(app: web.Application) -> None:
    """Add the console's pages and static files to ``app`` (its middleware is
    ``sessions.console``, which ``create_app`` puts in the middleware chain)."""
    from . import devices, knowledge, pages, remote, sessions, signin, users

    sessions.setup(app)
    for table in (
        signin.routes,
        pages.routes,
        devices.routes,
        knowledge.routes,
        users.routes,
        remote.routes,
    ):
        app.router.add_routes(table)
    app.router.add_static("/static/", STATIC)
