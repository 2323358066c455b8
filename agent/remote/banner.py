"""The banner: a small always-on-top strip, at the top centre of the screen, for as long as
a remote session lives (DESIGN.md invariant 1: a live session is always visibly
indicated, and the user can end it at any moment).

    ● Alice Martin is controlling your screen — ticket BD-1042        [End session]
      Alice Martin: I am opening the printer settings now
      [reply to the technician.......................................] [Send]

It ends the session with its "End session" button, with Ctrl+Alt+Shift+E (bound on the
banner, and also as a global hotkey through pynput's ``GlobalHotKeys`` — X RECORD — so it
works whichever window has the keyboard), and when its window is closed. It shows the
technician's chat messages and sends the user's replies.

Tk runs in its own process (``python -m agent.remote.banner``) so it never blocks the
agent's asyncio loop. stdin, JSON lines: first ``{"technician", "ticket", "scope"}``, then
``{"chat": text}`` (from the technician) or ``{"close": true}``; end of input closes the
banner too (the agent is gone, so is the session). stdout, JSON lines: ``{"ready": true,
"hotkey": bool, "layout": {...}}`` once shown, then ``{"end": "user"}`` or
``{"chat": text}`` (the user's reply), and ``{"layout": ...}`` when the banner grows.
:class:`Banner` is the agent's side; if the banner process dies, it reports an end
(``"gone"``): a session nobody can see must stop. ``BACKDESK_NO_GLOBAL_HOTKEY=1`` leaves
the global hotkey out (it records every key press on the display to spot its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from .consent import start_window

log = logging.getLogger(__name__)

TITLE = "Backdesk — remote session"
HOTKEY = "<ctrl>+<alt>+<shift>+e"
MAX_CHAT_BYTES = 2000
START_TIMEOUT = 20.0
CLOSE_GRACE = 1.0

BG = "#1f2023"
FG = "#f1f1ee"
MUTED = "#b8b8b2"
LIVE = "#ff4d1f"
FIELD = "#2d2e33"


class BannerError(RuntimeError):
    """The banner could not be shown: the session must not go live."""


@dataclass(frozen=True)
class BannerEvent:
    kind: Literal["end", "chat"]
    # "end": who ended it: "user", "gone" (the banner died), "closed" (the agent closed it);
    # "chat": the user's reply.
    text: str


def headline(technician: str, ticket: str, scope: str) -> str:
    verb = "controlling" if scope == "control" else "viewing"
    return f"{technician} is {verb} your screen — ticket {ticket}"


def clip_chat(text: str) -> str:
    return text.encode()[:MAX_CHAT_BYTES].decode(errors="ignore")


class Banner:
    """The agent's handle on the banner process."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue[BannerEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ended: BannerEvent | None = None
        self._closing = False
        self._stderr: list[str] = []
        self.hotkey = False  # whether the global hotkey is active
        self.layout: dict[str, list[int]] = {}  # widget → [x, y, width, height] on screen

    async def start(self, technician: str, ticket: str, scope: str) -> None:
        """Show the banner; BannerError if it cannot be shown (then do not go live)."""
        try:
            self._proc = proc = await start_window("agent.remote.banner")
        except OSError as exc:
            raise BannerError(f"the session banner could not start: {exc}") from exc
        self._tasks.append(asyncio.create_task(self._drain_stderr()))
        try:
            await self._send({"technician": technician, "ticket": ticket, "scope": scope})
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    line = await proc.stdout.readline()
            except TimeoutError:
                raise BannerError("the session banner did not appear in time") from None
            ready = json.loads(line) if line else None
            if not isinstance(ready, dict) or ready.get("ready") is not True:
                await asyncio.sleep(0.1)  # let stderr say why
                why = " ".join(self._stderr[-3:]) or f"exit status {proc.returncode}"
                raise BannerError(f"the session banner could not be shown: {why}")
        except BaseException:
            await self._kill()
            raise
        self.hotkey = bool(ready.get("hotkey"))
        self.layout = ready.get("layout") or {}
        self._tasks.append(asyncio.create_task(self._read_events()))

    async def _send(self, doc: dict[str, Any]) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return False
        try:
            proc.stdin.write(json.dumps(doc).encode() + b"\n")
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr = [*self._stderr[-9:], text]
            log.debug("session banner: %s", text)

    async def _read_events(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict):
                continue
            if isinstance(doc.get("chat"), str):
                self._events.put_nowait(BannerEvent("chat", clip_chat(doc["chat"])))
            elif "end" in doc:
                self._end(str(doc["end"]))
            elif isinstance(doc.get("layout"), dict):
                self.layout = doc["layout"]
        self._end("gone")

    def _end(self, who: str) -> None:
        if self._ended is None and not self._closing:
            self._ended = BannerEvent("end", who)
            self._events.put_nowait(self._ended)

    async def show_chat(self, text: str) -> None:
        """Show a message from the technician."""
        await self._send({"chat": clip_chat(text)})

    async def wait_event(self) -> BannerEvent:
        """The next thing the user did: a chat reply, or the end (repeated once ended)."""
        if self._events.empty() and self._ended is not None:
            return self._ended
        return await self._events.get()

    async def __aiter__(self) -> AsyncIterator[BannerEvent]:
        while True:
            event = await self.wait_event()
            yield event
            if event.kind == "end":
                return

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def close(self) -> None:
        """Take the banner down: ask it to close, and kill it if it is still there after 1 s.

        Whoever still waits for an event gets the end (``"closed"``), not a wait forever.
        """
        if self._ended is None and not self._closing:
            self._ended = BannerEvent("end", "closed")
            self._events.put_nowait(self._ended)
        self._closing = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            await self._send({"close": True})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_GRACE):
                    await proc.wait()
        await self._kill()

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
                await asyncio.shield(proc.wait())
        for task in self._tasks:
            task.cancel()


# --- the window (runs in the child process) ------------------------------------------------


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


class BannerWindow:
    def __init__(self, root: Any, technician: str, ticket: str, scope: str) -> None:
        import tkinter as tk
        from tkinter import font as tkfont

        self.tk = tk
        self.root = root
        self.technician = technician
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.ended = False
        self.hotkey_listener: Any = None

        root.title(TITLE)
        root.configure(background=BG)
        root.resizable(False, False)
        root.attributes("-topmost", True)
        root.protocol("WM_DELETE_WINDOW", self.end)
        for pattern in ("<Control-Alt-Shift-KeyPress-E>", "<Control-Alt-Shift-KeyPress-e>"):
            root.bind_all(pattern, lambda _e: self.end())

        family = tkfont.nametofont("TkDefaultFont", root=root).cget("family")
        bold = tkfont.Font(root, family=family, size=11, weight="bold")
        base = tkfont.Font(root, family=family, size=10)

        top = tk.Frame(root, background=BG, name="top", padx=10, pady=6)
        top.pack(fill="x")
        self.dot = tk.Canvas(top, width=14, height=14, background=BG, highlightthickness=0)
        self.dot_id = self.dot.create_oval(2, 2, 13, 13, fill=LIVE, outline="")
        self.dot.pack(side="left", padx=(0, 8))
        self.label = tk.Label(
            top,
            name="headline",
            text=headline(technician, ticket, scope),
            background=BG,
            foreground=FG,
            font=bold,
        )
        self.label.pack(side="left")
        self.end_button = tk.Button(
            top,
            name="end",
            text="End session",
            command=self.end,
            background="#c0392b",
            foreground="#ffffff",
            activebackground="#e0483a",
            activeforeground="#ffffff",
            relief="flat",
            font=bold,
            padx=12,
            pady=2,
        )
        self.end_button.pack(side="right", padx=(16, 0))

        self.log = tk.Text(
            root,
            name="log",
            height=3,
            width=60,
            background=BG,
            foreground=FG,
            font=base,
            relief="flat",
            wrap="word",
            highlightthickness=0,
            padx=12,
        )
        self.log.tag_configure("them", foreground="#ffb38a")
        self.log.tag_configure("me", foreground=MUTED)
        self.log.configure(state="disabled")
        self.log_shown = False

        bottom = tk.Frame(root, background=BG, name="bottom", padx=10, pady=6)
        bottom.pack(fill="x", side="bottom")
        self.entry = tk.Entry(
            bottom,
            name="entry",
            background=FIELD,
            foreground=FG,
            insertbackground=FG,
            relief="flat",
            font=base,
        )
        self.entry.pack(side="left", fill="x", expand=True, ipady=3)
        self.entry.bind("<Return>", self._reply_key)
        self.entry.bind("<KP_Enter>", self._reply_key)
        self.send_button = tk.Button(
            bottom,
            name="send",
            text="Send",
            command=self.reply,
            background=FIELD,
            foreground=FG,
            activebackground="#3d3e44",
            activeforeground=FG,
            relief="flat",
            padx=10,
        )
        self.send_button.pack(side="right", padx=(8, 0))
        tk.Label(
            bottom, text=f"Reply to {technician}:", background=BG, foreground=MUTED, font=base
        ).pack(side="left", before=self.entry, padx=(0, 8))
        # The "live" dot is steady on purpose: a blinking one changes the screen every
        # 0.7 s, and the session would stream that change, costing traffic and CPU for
        # as long as it lasts.
        self._place()

    def _place(self) -> None:
        root = self.root
        root.update_idletasks()
        x = max(0, (root.winfo_screenwidth() - root.winfo_reqwidth()) // 2)
        root.geometry(f"+{x}+0")

    def layout(self) -> dict[str, list[int]]:
        self.root.update_idletasks()
        widgets = {"end": self.end_button, "entry": self.entry, "send": self.send_button}
        return {
            name: [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(), w.winfo_height()]
            for name, w in widgets.items()
        }

    def _log(self, who: str, text: str, tag: str) -> None:
        if not self.log_shown:
            self.log.pack(fill="x", after=self.root.nametowidget("top"))
            self.log_shown = True
            self.root.after_idle(lambda: _emit({"layout": self.layout()}))
        self.log.configure(state="normal")
        if self.log.get("1.0", "end-1c"):
            self.log.insert("end", "\n")
        self.log.insert("end", f"{who}: ", tag)
        self.log.insert("end", text)
        # Keep the last 100 lines.
        lines = int(self.log.index("end-1c").split(".")[0])
        if lines > 100:
            self.log.delete("1.0", f"{lines - 100}.0")
        self.log.see("end")
        self.log.configure(state="disabled")

    def show_chat(self, text: str) -> None:
        self._log(self.technician, text, "them")
        self.root.lift()

    def _reply_key(self, _event: Any) -> str:
        self.reply()
        return "break"

    def reply(self) -> None:
        text = clip_chat(self.entry.get().strip())
        if not text or self.ended:
            return
        self.entry.delete(0, "end")
        self._log("You", text, "me")
        _emit({"chat": text})

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            _emit({"end": "user"})
        self.root.destroy()

    def close(self) -> None:
        self.ended = True
        self.root.destroy()

    def poll(self) -> None:
        """Messages from the agent (stdin thread) and the hotkey (listener thread)."""
        while True:
            try:
                doc = self.inbox.get_nowait()
            except queue.Empty:
                break
            if doc is None or doc.get("close"):
                self.close()
                return
            if doc.get("hotkey"):
                self.end()
                return
            if isinstance(doc.get("chat"), str):
                self.show_chat(clip_chat(doc["chat"]))
        self.root.after(50, self.poll)

    def start_hotkey(self) -> bool:
        if os.environ.get("BACKDESK_NO_GLOBAL_HOTKEY") == "1":
            return False
        try:
            from pynput import keyboard  # type: ignore[import-untyped]

            listener = keyboard.GlobalHotKeys({HOTKEY: lambda: self.inbox.put({"hotkey": True})})
            listener.daemon = True
            listener.start()
            listener.wait()
        except Exception as exc:  # no RECORD extension, no X, a platform pynput lacks
            sys.stderr.write(f"global hotkey unavailable ({exc}); the banner's own works\n")
            return False
        self.hotkey_listener = listener
        return True


def _read_stdin(inbox: queue.Queue[dict[str, Any] | None]) -> None:
    for line in sys.stdin:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            inbox.put(doc)
    inbox.put(None)  # the agent is gone: so is the session


def main() -> int:
    try:
        first = json.loads(sys.stdin.readline())
        technician, ticket, scope = (str(first[k]) for k in ("technician", "ticket", "scope"))
    except (ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"bad banner request: {exc}\n")
        return 2
    try:
        import tkinter as tk

        root = tk.Tk(className="backdesk-banner")
    except Exception as exc:
        sys.stderr.write(f"cannot show the banner: {exc}\n")
        return 1
    window = BannerWindow(root, technician, ticket, scope)
    threading.Thread(target=_read_stdin, args=(window.inbox,), daemon=True).start()
    hotkey = window.start_hotkey()
    root.update()
    _emit({"ready": True, "hotkey": hotkey, "layout": window.layout()})
    root.after(50, window.poll)
    root.mainloop()
    if window.hotkey_listener is not None:
        window.hotkey_listener.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
