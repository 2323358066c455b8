"""A viewer in Python: the technician's end of a remote session, for tests and benchmarks.

It does what ``coordinator/web/static/viewer.js`` does in the browser: authenticate (here
with an API key), send its hello, check the agent's signed hello, open every sealed
message, paint frames on a canvas, acknowledge them, and send input, chat and the
monitor choice. It runs its own event loop in a thread so that synchronous tests can
drive it while they also drive the X screen.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import e2e, remote
from protocol.errors import ProtocolError


class Canvas:
    """RGB (h, w, 3) pixels; rects applied in order, copies from the canvas as it is."""

    def __init__(self, width: int = 1, height: int = 1) -> None:
        self.rgb = np.zeros((height, width, 3), np.uint8)

    def apply(self, frame: remote.Frame) -> None:
        if (frame.width, frame.height) != (self.rgb.shape[1], self.rgb.shape[0]):
            self.rgb = np.zeros((frame.height, frame.width, 3), np.uint8)
        for r in frame.rects:
            dst = self.rgb[r.y : r.y + r.h, r.x : r.x + r.w]
            if r.encoding is remote.Encoding.COPY:
                sx, sy = int.from_bytes(r.data[:2], "big"), int.from_bytes(r.data[2:], "big")
                dst[...] = self.rgb[sy : sy + r.h, sx : sx + r.w].copy()
            elif r.encoding is remote.Encoding.FILL:
                dst[...] = np.frombuffer(r.data, np.uint8)
            else:
                dst[...] = np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB"))


class Viewer:
    def __init__(
        self,
        base_url: str,
        session_id: str,
        api_key: str,
        *,
        paint: bool = True,
        on_message: Callable[[remote.RemoteMessage, int, float], None] | None = None,
        keep_raw: bool = False,
    ) -> None:
        self.url = base_url.replace("https://", "wss://") + f"/ws/viewer/{session_id}"
        self.session_id = session_id
        self.api_key = api_key
        self.paint = paint
        # Called for every message opened: (message, bytes on the wire, when it arrived).
        self.on_message = on_message
        self.canvas = Canvas()
        self.states: list[dict[str, Any]] = []
        self.session: dict[str, Any] | None = None
        self.code: str | None = None
        self.frames = 0
        self.bytes_received = 0  # websocket payloads: what the relay sent us
        self.chats: list[str] = []
        self.screens: remote.Screens | None = None
        self.cursor: remote.Cursor | None = None
        self.error: str | None = None
        self.raw: list[bytes] | None = [] if keep_raw else None  # binary messages as received
        self.closed = False
        self.close_reason = ""
        self._channel: e2e.Channel | None = None
        self._ws: ClientConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True, name="viewer")

    # --- from the test's thread --------------------------------------------------------

    def start(self) -> Viewer:
        self._thread.start()
        return self

    def wait(self, predicate: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"viewer: timed out waiting for {what or predicate}; states "
                        f"{self.states[-3:]}, error {self.error}, closed {self.close_reason!r}"
                    )
                self._changed.wait(min(left, 0.2))
        return value

    @property
    def state(self) -> str | None:
        return self.states[-1]["state"] if self.states else None

    def wait_state(self, state: str, timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = self.wait(
            lambda: next((s for s in self.states if s["state"] == state), None),
            timeout,
            f"state {state}",
        )
        return found

    def send(self, message: remote.RemoteMessage) -> None:
        self._call(self._send_sealed(message))

    def send_raw(self, data: bytes) -> None:
        self._call(self._send_raw(data))

    def send_text(self, message: dict[str, Any]) -> None:
        self._call(self._send_raw(json.dumps(message)))

    def end(self) -> None:
        self.send_text({"type": "end", "reason": "technician"})

    def close(self) -> None:
        if self._thread.is_alive():
            # Not waiting for the coroutine itself: the loop stops as soon as the socket
            # is closed, possibly before ``_close`` returns. The thread ending is the sign.
            asyncio.run_coroutine_threadsafe(self._close(), self._loop)
            self._thread.join(timeout=10)

    def _call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # --- in the viewer's thread --------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    async def _close(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _send_raw(self, data: bytes | str) -> None:
        assert self._ws is not None
        await self._ws.send(data)

    async def _send_sealed(self, message: remote.RemoteMessage) -> None:
        assert self._ws is not None and self._channel is not None
        await self._ws.send(self._channel.seal(remote.encode(message)))

    async def _main(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a test client of a self-signed coordinator
        try:
            async with connect(
                self.url,
                ssl=context,
                compression=None,
                max_size=2 * 1024 * 1024,
                close_timeout=2,
                additional_headers={"Authorization": f"Bearer {self.api_key}"},
            ) as ws:
                self._ws = ws
                async for data in ws:
                    self.bytes_received += len(data)
                    if isinstance(data, str):
                        await self._text(ws, json.loads(data))
                    else:
                        if self.raw is not None:
                            self.raw.append(data)
                        await self._binary(ws, data)
                    self._notify()
        except ConnectionClosed as exc:
            self.close_reason = exc.rcvd.reason if exc.rcvd else ""
        except Exception as exc:  # recorded for the test to see
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self._ws is not None and self._ws.close_reason:
                self.close_reason = self._ws.close_reason
            self.closed = True
            self._notify()

    async def _text(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        if message["type"] == "session":
            self.session = message
            key = base64.b64decode(message["device_key"])
            self._handshake = e2e.ViewerHandshake(self.session_id, key)
            await ws.send(self._handshake.hello())
        elif message["type"] == "state":
            self.states.append(message)

    async def _binary(self, ws: ClientConnection, data: bytes) -> None:
        if self._channel is None:
            channel = self._handshake.finish(data)
            if isinstance(channel, ProtocolError):
                self.error = channel.message
                await ws.close()
                return
            self._channel, self.code = channel, channel.code
            return
        plain = self._channel.open(data)
        if isinstance(plain, ProtocolError):
            self.error = plain.message
            await ws.close()
            return
        message = remote.decode(plain)
        if isinstance(message, ProtocolError):
            self.error = message.message
            await ws.close()
            return
        if self.on_message is not None:
            self.on_message(message, len(data), time.monotonic())
        match message:
            case remote.Frame():
                if self.paint:
                    self.canvas.apply(message)
                self.frames += 1
                await ws.send(self._channel.seal(remote.encode(remote.FrameAck(message.seq))))
            case remote.Cursor():
                self.cursor = message
            case remote.Screens():
                self.screens = message
            case remote.Chat(text=text):
                self.chats.append(text)
