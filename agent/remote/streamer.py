"""The live part of a session: screen out, acks and input in, chat both ways.

Runs only after consent (``session.RemoteSession._live``). Three loops share one sealed
channel: capture and send (paced by the viewer's acks, ``pacing.Pacer``), receive (acks,
input, chat, monitor choice), and the banner (the user ends it, or replies in the chat).
The first loop to finish ends the session; ``close`` stops capture and lets go of every
key and button still held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from protocol import remote
from protocol.errors import ProtocolError

from .pacing import Pacer
from .screen import ScreenEncoder

if TYPE_CHECKING:
    from .banner import Banner
    from .session import RemoteSession

log = logging.getLogger(__name__)

CURSOR_INTERVAL = 1 / 30  # the pointer is polled at most this often
DROPPED_REPORT_INTERVAL = 2.0


class Streamer:
    def __init__(self, session: RemoteSession, scope: str, banner: Banner) -> None:
        self.session = session
        self.scope = scope
        self.banner = banner
        self.encoder = ScreenEncoder(monitor=1)
        self.pacer = Pacer(quality=self.encoder.quality)
        self.acked = asyncio.Event()
        self.injector: Any = None
        if scope == "control":
            from .inject import Injector  # needs the display; only for control

            self.injector = Injector()
            self._follow_monitor()
        self.dropped = 0
        self._dropped_reported = 0
        self.frames = 0

    def _follow_monitor(self) -> None:
        if self.injector is not None:
            g = self.encoder.geometry()
            self.injector.set_monitor(g["left"], g["top"], g["width"], g["height"])

    async def run(self) -> str:
        tasks = {
            asyncio.create_task(self._send_loop(), name="send"),
            asyncio.create_task(self._receive_loop(), name="receive"),
            asyncio.create_task(self._banner_loop(), name="banner"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            task = done.pop()
            return task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def close(self) -> None:
        if self.injector is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.injector.release_all)
                self.injector.close()
        self.encoder.close()
        log.info("session %s: capture stopped", self.session.offer.session_id)

    # --- out --------------------------------------------------------------------------

    async def _send_loop(self) -> str:
        session = self.session
        await session.send_sealed(await asyncio.to_thread(self.encoder.screens))
        log.info("session %s: capture started", session.offer.session_id)
        last_cursor = 0.0
        while True:
            now = time.monotonic()
            delay = self.pacer.delay(now)
            if delay is None:  # window full: wait for an ack (or at most a moment)
                self.acked.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.pacer.max_interval):
                        await self.acked.wait()
                continue
            if delay > 0:
                await asyncio.sleep(delay)
            self.encoder.quality = self.pacer.quality
            frame = await asyncio.to_thread(self.encoder.next_frame, self.pacer.byte_budget())
            now = time.monotonic()
            if frame is not None:
                size = await session.send_sealed(frame)
                self.pacer.sent(frame.seq, size, now)
                self.frames += 1
            if now - last_cursor >= CURSOR_INTERVAL:
                last_cursor = now
                cursor = await asyncio.to_thread(self.encoder.cursor)
                if cursor is not None:
                    await session.send_sealed(cursor)
            if frame is None:
                await asyncio.sleep(self.pacer.min_interval)
            if self.dropped > self._dropped_reported:
                await self._report_dropped()

    async def _report_dropped(self) -> None:
        assert self.session.ws is not None
        count = self.dropped - self._dropped_reported
        self._dropped_reported = self.dropped
        self.session.dropped_input = self.dropped
        await self.session.ws.send(json.dumps({"type": "input_dropped", "count": count}))

    # --- in ---------------------------------------------------------------------------

    async def _receive_loop(self) -> str:
        session = self.session
        assert session.ws is not None and session.channel is not None
        try:
            async for data in session.ws:
                if isinstance(data, str):
                    message = json.loads(data)
                    if isinstance(message, dict) and message.get("state") == "ended":
                        return str(message.get("reason") or "ended_by_technician")
                    continue
                plain = session.channel.open(data)
                if isinstance(plain, ProtocolError):
                    log.warning("session %s: %s", session.offer.session_id, plain.message)
                    return "protocol_error"
                message = remote.decode(plain)
                if isinstance(message, ProtocolError):
                    log.warning("session %s: %s", session.offer.session_id, message.message)
                    return "protocol_error"
                await self._handle(message)
        except ConnectionClosed:
            pass
        return "relay_gone"

    async def _handle(self, message: remote.RemoteMessage) -> None:
        match message:
            case remote.FrameAck(seq=seq):
                self.pacer.acked(seq, time.monotonic())
                self.acked.set()
            case remote.Chat(text=text):
                await self.banner.show_chat(text)
            case remote.SelectMonitor(index=index):
                try:
                    await asyncio.to_thread(self.encoder.select_monitor, index)
                except ValueError:
                    return
                self.pacer.reset()
                self._follow_monitor()
                await self.session.send_sealed(await asyncio.to_thread(self.encoder.screens))
            case remote.PointerMove() | remote.PointerButton() | remote.Wheel() | remote.Key():
                if self.injector is None:
                    # View only: the user did not let this technician touch anything.
                    self.dropped += 1
                    return
                await asyncio.to_thread(self.injector.apply, message)
            case _:
                # Messages only the agent sends (frames, cursor, screens) are not for us.
                pass

    async def _banner_loop(self) -> str:
        async for event in self.banner:
            if event.kind == "end":
                if event.text == "user":
                    return "ended_by_user"
                # Without its banner a session is not visible on the endpoint: it ends.
                log.warning("the session banner went away (%s)", event.text)
                return "agent_error"
            await self.session.send_sealed(remote.Chat(event.text))
        return "ended_by_user"
