"""The relay: ``/ws/viewer/<id>`` (the technician's browser) and ``/ws/relay/<id>`` (the
agent) meet in a :class:`Room`, which forwards binary messages between them unchanged.

The coordinator cannot read what it forwards (end-to-end sealed, docs/remote-sessions.md);
it checks only the envelope: the first byte of each binary message (viewer hello once,
agent hello once, then sealed), the size limit, and the JSON control messages each end
sends to it. Anything else closes that session with a reason, never the process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

from protocol.messages import SessionOffer

from ..accounts import Principal, principal_for_api_key
from ..errors import Conflict, CoordinatorError, Forbidden, Invalid, NotFound
from ..settings import ENGINE, PRESENCE, SETTINGS, SOCKETS
from ..web import sessions as web_sessions
from . import broker

log = logging.getLogger(__name__)

VIEWER_HELLO, AGENT_HELLO, SEALED = 0x01, 0x02, 0x03
MAX_BINARY = 1024 * 1024 + 64
MAX_TEXT = 16 * 1024
# A viewer's hello waits here until its agent joins; nothing else is ever held.
MAX_HELD = 1
CLOSE_TIMEOUT = 2.0
# Close codes: 1008 policy (bad message), 4403 not yours, 4404 unknown, 4409 taken/over.
POLICY = WSCloseCode.POLICY_VIOLATION


class OfferSender(Protocol):
    async def offer_session(self, offer: SessionOffer) -> None: ...


@dataclass
class Room:
    session_id: str
    device_id: str
    agent: web.WebSocketResponse | None = None
    viewer: web.WebSocketResponse | None = None
    held: list[bytes] = field(default_factory=list)
    agent_hello_seen: bool = False
    viewer_hello_seen: bool = False
    ended: bool = False
    state: str = "pending"
    scope: str | None = None
    reason: str | None = None
    expiry: asyncio.TimerHandle | None = None
    tap: BinaryIO | None = None


class Hub:
    """The rooms and the agent links of this node (one process; several nodes would
    route through Redis behind the same methods)."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        # A device may hold several links at once: its service's, and a short one of
        # ``get-help``'s. Offers go to the oldest (the service), falling back to the next.
        self.agents: dict[str, list[OfferSender]] = {}

    def agent_online(self, device_id: str, sender: OfferSender) -> None:
        self.agents.setdefault(device_id, []).append(sender)

    def agent_offline(self, device_id: str, sender: OfferSender) -> None:
        senders = self.agents.get(device_id, [])
        if sender in senders:
            senders.remove(sender)
        if not senders:
            self.agents.pop(device_id, None)


HUB = web.AppKey("remote_hub", Hub)


def setup(app: web.Application) -> None:
    app[HUB] = Hub()
    app.router.add_get("/ws/viewer/{session_id}", viewer_socket)
    app.router.add_get("/ws/relay/{session_id}", agent_socket)
    app.on_startup.append(_end_orphans)
    app.on_shutdown.append(_end_all)


async def _end_orphans(app: web.Application) -> None:
    ended = await broker.end_orphans(app[ENGINE])
    if ended:
        log.info("ended %d session(s) left open by a previous run", ended)


async def _end_all(app: web.Application) -> None:
    for room in list(app[HUB].rooms.values()):
        await end_room(app, room, "coordinator_restart", "system")


async def offer(app: web.Application, offer: broker.Offer) -> None:
    """Open the room and send the device its offer; end the session if that fails."""
    hub = app[HUB]
    room = Room(offer.session_id, offer.device_id)
    tap = app[SETTINGS].relay_tap
    if tap is not None:
        room.tap = tap.open("ab")
    hub.rooms[offer.session_id] = room
    delay = max(1.0, (offer.expires_at - broker.utcnow()).total_seconds())
    loop = asyncio.get_running_loop()
    room.expiry = loop.call_later(delay, lambda: asyncio.ensure_future(_expire(app, room)))
    message = SessionOffer(
        session_id=offer.session_id,
        ticket=offer.ticket,
        subject=offer.subject[:200],
        technician=offer.technician[:100],
        role=offer.role,
        scope=offer.scope,
        relay_token=offer.relay_token,
        expires_at=offer.expires_at.timestamp(),
    )
    for sender in list(hub.agents.get(offer.device_id, [])):
        try:
            await sender.offer_session(message)
            return
        except (ConnectionError, OSError, RuntimeError) as exc:
            log.info("session %s: offer not delivered on one link: %s", offer.session_id, exc)
    await end_room(app, room, "agent_gone", "system")


async def _expire(app: web.Application, room: Room) -> None:
    if room.state in ("pending", "awaiting_consent"):
        await end_room(app, room, "expired", "system")


async def _send_state(ws: web.WebSocketResponse | None, room: Room) -> None:
    if ws is None or ws.closed:
        return
    peer = room.viewer if ws is room.agent else room.agent
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(
            json.dumps(
                {
                    "type": "state",
                    "state": room.state,
                    "scope": room.scope,
                    "reason": room.reason,
                    "peer": peer is not None and not peer.closed,
                }
            )
        )


async def _broadcast(room: Room) -> None:
    await _send_state(room.viewer, room)
    await _send_state(room.agent, room)


async def end_room(
    app: web.Application,
    room: Room,
    reason: str,
    actor: str,
    receipt: dict[str, Any] | None = None,
) -> None:
    """End the session once: record it, tell both ends why, close both sockets."""
    if room.ended:
        return
    room.ended = True
    if room.expiry is not None:
        room.expiry.cancel()
    app[HUB].rooms.pop(room.session_id, None)
    try:
        row = await broker.end(app[ENGINE], room.session_id, reason, actor, receipt)
        room.reason = row.reason
    except Exception:
        log.exception("session %s: could not record its end", room.session_id)
        room.reason = reason
    room.state = "ended"
    await _broadcast(room)
    for ws in (room.viewer, room.agent):
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
                await ws.close(code=WSCloseCode.OK, message=f"ended: {room.reason}".encode())
    if room.tap is not None:
        room.tap.close()
        room.tap = None


async def _forward(room: Room, target: web.WebSocketResponse | None, data: bytes) -> None:
    if room.ended:
        return  # nothing passes once the session is over, not even what was in flight
    if room.tap is not None:
        # Length-prefixed, exactly the bytes forwarded (serve --relay-tap).
        room.tap.write(len(data).to_bytes(4, "big") + data)
        room.tap.flush()
    if target is not None and not target.closed:
        # Awaiting the send is the back-pressure: a slow viewer slows its agent's socket,
        # and the agent's own flow control (acks) keeps its queue short.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await target.send_bytes(data)


def _json(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT:
        raise Invalid("control message too large")
    try:
        message = json.loads(text)
    except ValueError:
        raise Invalid("control message is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Invalid("control message must be an object with a type")
    return message


def _prepare() -> web.WebSocketResponse:
    return web.WebSocketResponse(
        max_msg_size=MAX_BINARY,
        timeout=CLOSE_TIMEOUT,
        compress=False,  # sealed frames do not compress; deflate costs 10x throughput
        autoping=True,
        heartbeat=15.0,
    )


async def _refuse(ws: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
    await ws.close(code=code, message=reason[:120].encode())
    return ws


# --- the technician's browser -----------------------------------------------------------


async def _viewer_principal(request: web.Request) -> Principal:
    """Authenticate before the upgrade: a script's API key, or the console session of a
    page of ours (browsers send Origin on websockets; another site's page is refused)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        principal = None
        if scheme.lower() == "bearer" and key.strip():
            principal = await principal_for_api_key(request.app[ENGINE], key.strip())
        if principal is None:
            raise web.HTTPUnauthorized(text="invalid or revoked API key")
        return principal
    session = await web_sessions.lookup(
        request.app[ENGINE], request.cookies.get(web_sessions.COOKIE, "")
    )
    if session is None:
        raise web.HTTPUnauthorized(text="sign in to the console first")
    if request.headers.get("Origin") is None or not web_sessions.same_origin(request):
        raise web.HTTPForbidden(text="cross-origin websocket refused")
    return session.principal


async def viewer_socket(request: web.Request) -> web.WebSocketResponse:
    session_id = request.match_info["session_id"][:32]
    app = request.app
    who = await _viewer_principal(request)
    try:
        info = await broker.for_viewer(app[ENGINE], session_id, who)
    except NotFound:
        raise web.HTTPNotFound(text="no such session") from None
    ws = _prepare()
    await ws.prepare(request)
    app[SOCKETS].add(ws)
    room = app[HUB].rooms.get(session_id)
    if room is None or room.ended:
        await ws.send_str(
            json.dumps(
                {
                    "type": "state",
                    "state": "ended",
                    "scope": info["scope"],
                    "reason": info["reason"] or "expired",
                    "peer": False,
                }
            )
        )
        return await _refuse(ws, 4409, "this session has ended")
    if room.viewer is not None and not room.viewer.closed:
        return await _refuse(ws, 4409, "this session is open in another window")
    room.viewer = ws
    await ws.send_str(
        json.dumps(
            {
                "type": "session",
                "id": session_id,
                "ticket": info["ticket"],
                "scope": info["scope_requested"],
                "technician": info["technician"],
                "device_key": base64.b64encode(info["device_key"]).decode(),
            }
        )
    )
    await _broadcast(room)
    reason = "viewer_gone"
    try:
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                data = bytes(msg.data)
                if not data:
                    raise Invalid("empty message")
                if data[0] == VIEWER_HELLO and not room.viewer_hello_seen and len(data) == 33:
                    room.viewer_hello_seen = True
                    if room.agent is None:
                        room.held = [data][:MAX_HELD]
                    else:
                        await _forward(room, room.agent, data)
                elif data[0] == SEALED and room.agent_hello_seen and room.state == "live":
                    await _forward(room, room.agent, data)
                else:
                    raise Invalid("unexpected binary message from the viewer")
            elif msg.type is WSMsgType.TEXT:
                message = _json(msg.data)
                if message["type"] == "ping":
                    t = message.get("t")
                    if not isinstance(t, int | float) or isinstance(t, bool):
                        raise Invalid("ping needs a number t")
                    await ws.send_str(json.dumps({"type": "pong", "t": t}))
                elif message["type"] == "end":
                    # The page says why: the technician's button, or a frame it could
                    # not open (then the agent or the relay misbehaved).
                    given = message.get("reason")
                    reason = (
                        "protocol_error" if given == "protocol_error" else "ended_by_technician"
                    )
                    break
                else:
                    raise Invalid(f"unknown control message {message['type'][:32]!r}")
            else:
                break
    except Invalid as exc:
        log.info("session %s: viewer sent bad input: %s", session_id, exc)
        reason = "protocol_error"
    finally:
        if room.viewer is ws:
            await end_room(app, room, reason, who.name)
    return ws


# --- the agent --------------------------------------------------------------------------


async def agent_socket(request: web.Request) -> web.WebSocketResponse:
    session_id = request.match_info["session_id"][:32]
    app = request.app
    ws = _prepare()
    await ws.prepare(request)
    app[SOCKETS].add(ws)
    room = app[HUB].rooms.get(session_id)
    if room is None or room.ended or room.agent is not None:
        return await _refuse(ws, 4409, "no session waits for a device here")
    # The first message must be the join with the one-time relay token from the offer.
    try:
        first = await ws.receive(timeout=10.0)
    except TimeoutError:
        return await _refuse(ws, POLICY, "join in time")
    try:
        if first.type is not WSMsgType.TEXT:
            raise Invalid("join first")
        join = _json(first.data)
        token_text = join.get("token")
        if join["type"] != "join" or not isinstance(token_text, str):
            raise Invalid("join first")
        token = base64.b64decode(token_text, validate=True)
        if room.agent is not None or room.ended:
            raise Conflict("taken")
        await broker.check_join(app[ENGINE], session_id, token)
    except (Invalid, Conflict, Forbidden, NotFound, binascii.Error, ValueError) as exc:
        log.warning("session %s: refused a join: %s", session_id, exc)
        return await _refuse(ws, 4403, "join refused")
    room.agent = ws
    room.state = "awaiting_consent"
    actor = f"agent:{room.device_id[:8]}"
    reason, receipt = "agent_gone", None
    try:
        for held in room.held:
            await ws.send_bytes(held)
        room.held = []
        await _broadcast(room)
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                data = bytes(msg.data)
                if not data:
                    raise Invalid("empty message")
                if data[0] == AGENT_HELLO and not room.agent_hello_seen and len(data) == 97:
                    room.agent_hello_seen = True
                    await _forward(room, room.viewer, data)
                elif data[0] == SEALED and room.state == "live":
                    await _forward(room, room.viewer, data)
                else:
                    raise Invalid("unexpected binary message from the agent")
            elif msg.type is WSMsgType.TEXT:
                message = _json(msg.data)
                if message["type"] == "consent":
                    row = await broker.record_consent(app[ENGINE], session_id, message)
                    room.state, room.scope, room.reason = row.state, row.scope, row.reason
                    if row.state == "ended":
                        reason = row.reason
                        break
                    await _broadcast(room)
                elif message["type"] == "input_dropped":
                    # A view-only session got input from the viewer: the agent dropped
                    # it and says so, so that the attempt is on record.
                    count = message.get("count")
                    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                        raise Invalid("input_dropped needs a positive count")
                    await broker.note(
                        app[ENGINE],
                        session_id,
                        actor,
                        "session.input_dropped",
                        {"count": min(count, 10**9)},
                    )
                elif message["type"] == "end":
                    given = message.get("reason")
                    reason = given if given in broker.REASONS else "agent_gone"
                    receipt = message
                    break
                else:
                    raise Invalid(f"unknown control message {message['type'][:32]!r}")
            else:
                break
    except (Invalid, Conflict) as exc:
        log.info("session %s: agent sent bad input: %s", session_id, exc)
        reason = "protocol_error"
    except CoordinatorError:
        log.exception("session %s failed", session_id)
        reason = "protocol_error"
    finally:
        await end_room(app, room, reason, actor, receipt)
    return ws


def online(app: web.Application) -> set[str]:
    """Devices this node can send an offer to right now."""
    presence = app[PRESENCE]
    return {d for d in app[HUB].agents if presence.is_online(d)}
