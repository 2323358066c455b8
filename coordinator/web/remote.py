"""/sessions/<id>: the technician's live session page, and the ticket page's buttons.

The page itself only shows a canvas: the screen arrives end-to-end sealed from the
agent and is opened by ``static/viewer.js`` in the browser (docs/remote-sessions.md).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..permissions import Permission, allowed
from ..remote import broker, relay
from ..settings import ENGINE
from .pages import deny, forbidden, not_found
from .render import redirect, render
from .sessions import signed_in

routes = web.RouteTableDef()


@routes.post("/tickets/{reference}/sessions")
async def request_session(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    reference = request.match_info["reference"][:16].upper()
    back = f"/tickets/{reference}"
    if not allowed(who.role, Permission.SESSION_REQUEST):
        return await deny(request, who, forbidden(who, Permission.SESSION_REQUEST, reference))
    form = await request.post()
    scope = form.get("scope")
    try:
        offer = await broker.request(
            request.app[ENGINE], who, reference, str(scope), relay.online(request.app)
        )
    except Forbidden as exc:
        return await deny(request, who, exc)
    except NotFound as exc:
        return redirect("/queue", "error", str(exc))
    except (Conflict, Invalid) as exc:
        return redirect(back, "error", str(exc))
    await relay.offer(request.app, offer)
    return redirect(f"/sessions/{offer.session_id}")


@routes.get("/sessions/{session_id}")
async def session_page(request: web.Request) -> web.Response:
    who = signed_in(request).principal
    session_id = request.match_info["session_id"][:32]
    try:
        info = await broker.for_viewer(request.app[ENGINE], session_id, who)
    except NotFound:
        return not_found(request, "There is no such session of yours.")
    remote = {
        "id": info["id"],
        "ticket": info["ticket"],
        "subject": info["subject"],
        "scope": info["scope_requested"],
        "technician": info["technician"],
        "device": info["hostname"],
        "state": info["state"],
        "reason": info["reason"],
    }
    return render(request, "session.html", remote=remote)
