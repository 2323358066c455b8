"""The consent dialog: the person at this computer allows or refuses a remote session.

DESIGN.md invariant 1: nothing is captured or injected until the user answers here, for
this session, this technician and this scope. The dialog names the technician, their role,
the ticket and its subject, says in plain words what "view" and "control" mean, and shows
the 6-digit verification code the technician's browser shows too. "Allow control" exists
only when control was asked. No answer within the time limit (60 s) is a timeout, which
counts as no; so does closing the window, a dialog that cannot be shown (no display, no
Tk) and a dialog process that dies. Nothing but a click on an Allow button allows.

Tk runs in its own process (``python -m agent.remote.consent``) so it never blocks the
agent's asyncio loop: one JSON request on stdin, one JSON answer line on stdout::

    {"decision": "allow"|"deny"|"timeout", "scope": "view"|"control"|null, "reason": ...}

``ask`` is the agent's side: it starts that process with the same interpreter and kills it
when the answer is late or the caller is cancelled (the window goes with the process).

The buttons stay disabled for the first second the dialog is shown, so a click or a key
the user was already in the middle of cannot answer it; no button has the keyboard focus
at first and Enter is not bound to Allow (Escape is Deny). Once the buttons work the
process writes ``{"ready": true, "buttons": {name: [x, y, width, height]}}`` (screen
coordinates) on stderr, for tests and accessibility tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .policy import narrower

log = logging.getLogger(__name__)

TITLE = "Backdesk — remote assistance request"
DEFAULT_TIMEOUT = 60.0
ARM_DELAY = 1.0  # seconds before the buttons accept a click
# How long past the dialog's own time limit ask() waits (Tk start-up) before killing it.
GRACE = 15.0

Scope = Literal["view", "control"]
Decision = Literal["allow", "deny", "timeout"]

SCOPE_WORDS: dict[str, str] = {
    "view": (
        "View: they see everything on your screen, as it changes. They cannot move your "
        "mouse, click or type."
    ),
    "control": (
        "Control: they see your screen and can use your mouse and keyboard, as if they "
        "were sitting at your computer. You can choose to let them only view instead."
    ),
}


@dataclass(frozen=True)
class ConsentRequest:
    technician: str
    role: str
    ticket: str
    subject: str
    scope: Scope  # what the technician asked for
    code: str  # the 6-digit verification code both ends show
    session: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> ConsentRequest:
        if not isinstance(doc, dict):
            raise ValueError("a consent request is a JSON object")
        fields = {}
        for name in ("technician", "role", "ticket", "subject", "scope", "code", "session"):
            value = doc.get(name, "")
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            fields[name] = value
        if fields["scope"] not in ("view", "control"):
            raise ValueError('scope must be "view" or "control"')
        if not (len(fields["code"]) == 6 and fields["code"].isdigit()):
            raise ValueError("code must be 6 digits")
        return cls(**fields)  # type: ignore[arg-type]  # scope checked just above


@dataclass(frozen=True)
class ConsentAnswer:
    decision: Decision
    scope: Scope | None = None  # set only when decision == "allow"
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow" and self.scope is not None

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "scope": self.scope, "reason": self.reason}


def grouped(code: str) -> str:
    """``123456`` → ``123 456``: easier to read out and compare."""
    return f"{code[:3]} {code[3:]}" if len(code) == 6 else code


def parse_answer(line: bytes | str, asked: Scope) -> ConsentAnswer:
    """The dialog's answer line, checked: anything odd is a deny, never more than asked."""
    try:
        doc = json.loads(line)
    except ValueError:
        return ConsentAnswer("deny", None, "the consent dialog gave no answer")
    if not isinstance(doc, dict):
        return ConsentAnswer("deny", None, "the consent dialog gave no answer")
    decision = doc.get("decision")
    reason = doc.get("reason") if isinstance(doc.get("reason"), str) else None
    if decision == "allow":
        scope = doc.get("scope")
        granted = narrower(scope, asked) if scope in ("view", "control") else None
        if granted is None:
            return ConsentAnswer("deny", None, "the consent dialog's answer had no scope")
        return ConsentAnswer("allow", granted, reason)
    if decision == "timeout":
        return ConsentAnswer("timeout", None, reason or "no answer in time")
    return ConsentAnswer("deny", None, reason)


def child_env() -> dict[str, str]:
    """The agent's environment, with this source tree importable by ``-m``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


async def start_window(module: str) -> asyncio.subprocess.Process:
    """A window of ours (``python -m module``) in its own process, so Tk never blocks the
    agent's event loop; it talks JSON lines on its pipes."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(),
    )


async def _drain(stream: asyncio.StreamReader | None, name: str) -> None:
    if stream is None:
        return
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        # "ready" (shown, buttons placed) is worth a line in the agent's log: it says when
        # the user was asked, and where the buttons are (the end-to-end tests click them).
        log.log(
            logging.INFO if text.startswith('{"ready"') else logging.DEBUG, "%s: %s", name, text
        )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Kill the dialog process (its window goes with it) and reap it, even when cancelled."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
        await asyncio.shield(proc.wait())


async def ask(request: ConsentRequest, timeout: float = DEFAULT_TIMEOUT) -> ConsentAnswer:  # noqa: ASYNC109 (the user's time limit, passed on to the dialog)
    """Show the dialog and wait for the user's answer; see the module docstring."""
    try:
        proc = await start_window("agent.remote.consent")
    except OSError as exc:
        return ConsentAnswer("deny", None, f"the consent dialog could not start: {exc}")
    drain = asyncio.create_task(_drain(proc.stderr, "consent dialog"))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        doc = {**request.to_json(), "timeout": timeout}
        proc.stdin.write(json.dumps(doc).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout + GRACE)
        except TimeoutError:
            return ConsentAnswer("timeout", None, "no answer in time")
        if not line:
            await _stop(proc)
            return ConsentAnswer(
                "deny", None, f"the consent dialog closed without an answer ({proc.returncode})"
            )
        return parse_answer(line, request.scope)
    finally:
        await _stop(proc)
        drain.cancel()


# --- the dialog (runs in the child process) ------------------------------------------------


def _say(answer: ConsentAnswer) -> None:
    sys.stdout.write(json.dumps(answer.to_json()) + "\n")
    sys.stdout.flush()


class ConsentDialog:
    """The window. ``answer`` is set once, by a button, Escape, closing or the clock."""

    def __init__(self, root: Any, request: ConsentRequest, timeout: float) -> None:
        import tkinter as tk
        from tkinter import font as tkfont
        from tkinter import ttk

        self.tk, self.ttk = tk, ttk
        self.root = root
        self.request = request
        self.deadline = time.monotonic() + timeout
        self.parent = os.getppid()  # the agent; _tick closes the dialog if it goes away
        self.answer: ConsentAnswer | None = None
        self.armed = False
        self._mapped = False

        root.title(TITLE)
        root.resizable(False, False)
        root.attributes("-topmost", True)
        root.protocol("WM_DELETE_WINDOW", lambda: self.finish("deny", None, "window closed"))
        root.bind("<Escape>", lambda _e: self.finish("deny", None, "Escape pressed"))
        root.bind("<Map>", self._on_map, add="+")

        family = tkfont.nametofont("TkDefaultFont", root=root).cget("family")
        base = tkfont.Font(root, family=family, size=11)
        bold = tkfont.Font(root, family=family, size=11, weight="bold")
        heading = tkfont.Font(root, family=family, size=15, weight="bold")
        small = tkfont.Font(root, family=family, size=10)
        big = tkfont.Font(root, family="DejaVu Sans Mono", size=30, weight="bold")

        style = ttk.Style(root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        bg = "#f5f5f3"
        root.configure(background=bg)
        style.configure(".", background=bg, font=base)
        style.configure("TLabel", background=bg)
        style.configure("Heading.TLabel", font=heading)
        style.configure("Bold.TLabel", font=bold)
        style.configure("Muted.TLabel", foreground="#55554f", font=small)
        style.configure("Code.TLabel", font=big, foreground="#1f5fa8")
        style.configure("Count.TLabel", foreground="#b3261e", font=bold)
        style.configure("TButton", padding=(14, 6))
        style.configure("Allow.TButton", font=bold)

        body = ttk.Frame(root, padding=18, name="body")
        body.pack(fill="both", expand=True)
        wrap = 460
        r = request
        asks = "control your computer" if r.scope == "control" else "see your screen"
        ttk.Label(body, text="Remote assistance request", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(
            body,
            name="who",
            text=f"{r.technician} ({r.role}) from your help desk asks to {asks}.",
            wraplength=wrap,
            justify="left",
        ).pack(anchor="w", pady=(10, 2))
        ticket = f"Ticket {r.ticket}" + (f" — {r.subject}" if r.subject else "")
        ttk.Label(
            body, name="ticket", text=ticket, style="Bold.TLabel", wraplength=wrap, justify="left"
        ).pack(anchor="w", pady=(0, 8))
        for scope in ("view", "control") if r.scope == "control" else ("view",):
            ttk.Label(
                body,
                name=f"scope_{scope}",
                text=SCOPE_WORDS[scope],
                wraplength=wrap,
                justify="left",
            ).pack(anchor="w", pady=2)
        ttk.Label(
            body,
            text="While it lasts, a bar at the top of your screen says so; its End session "
            "button (or Ctrl+Alt+Shift+E) stops it at any moment.",
            style="Muted.TLabel",
            wraplength=wrap,
            justify="left",
        ).pack(anchor="w", pady=(6, 8))

        codebox = ttk.Frame(body, name="codebox")
        codebox.pack(fill="x", pady=4)
        ttk.Label(codebox, text="Verification code", style="Bold.TLabel").pack()
        ttk.Label(codebox, name="code", text=grouped(r.code), style="Code.TLabel").pack()
        ttk.Label(
            codebox,
            text="The technician sees the same code; compare it if they call you.",
            style="Muted.TLabel",
        ).pack()

        self.countdown = ttk.Label(body, name="countdown", style="Count.TLabel")
        self.countdown.pack(anchor="w", pady=(10, 6))

        buttons = ttk.Frame(body, name="buttons")
        buttons.pack(fill="x")
        self.buttons: dict[str, Any] = {}
        self.buttons["deny"] = ttk.Button(
            buttons, name="deny", text="Deny", command=lambda: self.finish("deny", None, None)
        )
        self.buttons["allow_view"] = ttk.Button(
            buttons,
            name="allow_view",
            text="Allow view",
            style="Allow.TButton",
            command=lambda: self.finish("allow", "view", None),
        )
        if r.scope == "control":
            self.buttons["allow_control"] = ttk.Button(
                buttons,
                name="allow_control",
                text="Allow control",
                style="Allow.TButton",
                command=lambda: self.finish("allow", "control", None),
            )
        self.buttons["deny"].pack(side="left")
        for name in ("allow_control", "allow_view"):
            if name in self.buttons:
                self.buttons[name].pack(side="right", padx=(8, 0))
        for button in self.buttons.values():
            button.state(["disabled"])
            button.bind("<Return>", lambda e: e.widget.invoke() or "break")
            button.bind("<KP_Enter>", lambda e: e.widget.invoke() or "break")

        root.update_idletasks()
        x = max(0, (root.winfo_screenwidth() - root.winfo_reqwidth()) // 2)
        y = max(0, (root.winfo_screenheight() - root.winfo_reqheight()) // 3)
        root.geometry(f"+{x}+{y}")
        self._tick()

    def _on_map(self, event: Any) -> None:
        if event.widget is self.root and not self._mapped:
            self._mapped = True
            self.root.after_idle(self._take_focus)
            self.root.after(int(ARM_DELAY * 1000), self._arm)

    def _take_focus(self) -> None:
        # No window manager (or one that does not give new windows the keyboard): take it.
        self.root.lift()
        self.root.attributes("-topmost", True)
        self.root.focus_force()

    def _arm(self) -> None:
        if self.answer is not None:
            return
        self.armed = True
        for button in self.buttons.values():
            button.state(["!disabled"])
        self.root.update_idletasks()
        layout = {
            name: [b.winfo_rootx(), b.winfo_rooty(), b.winfo_width(), b.winfo_height()]
            for name, b in self.buttons.items()
        }
        sys.stderr.write(json.dumps({"ready": True, "buttons": layout}) + "\n")
        sys.stderr.flush()

    def _tick(self) -> None:
        if self.answer is not None:
            return
        if os.getppid() != self.parent:
            # The agent that asked is gone: nobody would act on the answer. Do not leave
            # a question on the user's screen.
            self.finish("deny", None, "the agent stopped")
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.finish("timeout", None, "no answer in time")
            return
        seconds = int(left + 0.999)
        self.countdown.configure(
            text=f"No answer in {seconds} s counts as Deny.",
        )
        self.root.after(min(1000, max(50, int((left - (seconds - 1)) * 1000))), self._tick)

    def finish(self, decision: Decision, scope: Scope | None, reason: str | None) -> None:
        if self.answer is not None:
            return
        if decision == "allow" and not self.armed:
            return
        self.answer = ConsentAnswer(decision, scope, reason)
        _say(self.answer)
        self.root.destroy()


def main() -> int:
    line = sys.stdin.readline()
    try:
        doc = json.loads(line)
        request = ConsentRequest.from_json(doc)
        timeout = float(doc.get("timeout", DEFAULT_TIMEOUT))
    except (ValueError, TypeError) as exc:
        _say(ConsentAnswer("deny", None, f"bad consent request: {exc}"))
        return 2
    try:
        import tkinter as tk

        root = tk.Tk(className="backdesk-consent")
    except Exception as exc:  # no Tk, no display: the answer is no
        _say(ConsentAnswer("deny", None, f"cannot show the consent dialog: {exc}"))
        return 1
    dialog = ConsentDialog(root, request, timeout)
    root.mainloop()
    if dialog.answer is None:  # the window went away some other way
        _say(ConsentAnswer("deny", None, "window closed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
