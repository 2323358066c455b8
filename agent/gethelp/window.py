"""The Get-help window: the user says what is wrong, sees exactly what will be sent,
leaves parts out, clicks Send and gets a reference number.

Tk runs in the calling thread, inside the asyncio loop of the CLI: ``run`` pumps Tk's
events every 20 ms between ``await asyncio.sleep`` calls, and ``submit`` runs as a task of
the same loop. One thread, one loop: the window never freezes while the request is sent.

Keyboard use: the message box has the focus when the window appears; Tab moves to the
section checkboxes (Space leaves a section out or puts it back), "Show all data", Send and
Cancel; Ctrl+Enter sends from anywhere; Escape cancels before sending and closes the
window once the result is shown. Every widget a test or an accessibility tool needs has a
stable Tk name: ``.body.form.message``, ``.body.form.error``,
``.body.form.sent.section_<name>``, ``.body.form.sent.showdata``, ``.body.form.sent.data``,
``.body.buttons.send``, ``.body.buttons.cancel``, ``.body.buttons.status``,
``.body.result.text``, ``.body.result.copy``, ``.body.result.close``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import AgentDir
from ..errors import AgentError
from .request import HelpRequest, Submission, submit

try:
    import tkinter as tk
    from tkinter import font as tkfont
    from tkinter import ttk
except ImportError:  # a Python built without Tk: the CLI's --no-gui still works
    tk = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TITLE = "Backdesk — Get help"
PUMP_INTERVAL = 0.02

INTRO = (
    "Tell your help desk what is wrong. They receive your description and the "
    "information about this computer that you choose below, and you get a reference "
    "number to quote when you call them."
)

# Colours on top of the "clam" theme: a light background, a calm accent.
BG = "#f5f5f3"
FIELD = "#ffffff"
BORDER = "#b9b9b4"
ACCENT = "#1f5fa8"
MUTED = "#55554f"
ERROR = "#b3261e"

HINT = "Ctrl+Enter sends; Tab moves to the next field."

Submitter = Callable[[HelpRequest], Coroutine[Any, Any, Submission]]


def result_sentence(submission: Submission) -> str:
    """What the CLI prints once the window is closed, as ``get-help --no-gui`` does."""
    if submission.status == "created":
        return f"Your request was sent. Your reference number is {submission.reference}."
    return (
        "The help desk cannot be reached right now. Your request is saved as "
        f"{submission.reference} and will be sent as soon as the connection is back."
    )


def _headline(submission: Submission) -> tuple[str, str]:
    """The result as the window shows it: a large sentence and what happens next."""
    if submission.status == "created":
        return (
            f"Your reference number is {submission.reference}",
            "Your help desk has your request. Quote this number when you contact them.",
        )
    return (
        "The help desk cannot be reached right now. Your request is saved as "
        f"{submission.reference} and will be sent automatically.",
        "You can close this window: the request stays on this computer until the help "
        "desk confirms it.",
    )


class GetHelpWindow:
    """The window's widgets and states: editing → sending → done (or failed)."""

    def __init__(self, root: tk.Tk, request: HelpRequest, send: Submitter) -> None:
        self.root = root
        self.request = request
        self.send_request = send
        self.state: Literal["editing", "sending", "done", "failed", "cancelled"] = "editing"
        self.closed = False
        self.submission: Submission | None = None
        self.failure: str | None = None
        self.task: asyncio.Task[Submission] | None = None
        self.included: dict[str, tk.BooleanVar] = {}
        self.data_shown = False
        self._mapped_once = False
        self._style()
        self._build()
        self._bind_keys()
        root.title(TITLE)
        root.protocol("WM_DELETE_WINDOW", self.on_close)
        root.bind("<Map>", self._on_map, add="+")
        self._place()

    # --- look ---------------------------------------------------------------------------

    def _style(self) -> None:
        root = self.root
        base = tkfont.nametofont("TkDefaultFont", root=root)
        base.configure(size=11)
        for name in ("TkTextFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont"):
            tkfont.nametofont(name, root=root).configure(family=base.cget("family"), size=11)
        tkfont.nametofont("TkFixedFont", root=root).configure(size=10)
        family = base.cget("family")
        self.font_heading = tkfont.Font(root, family=family, size=15, weight="bold")
        self.font_bold = tkfont.Font(root, family=family, size=11, weight="bold")
        self.font_small = tkfont.Font(root, family=family, size=10)
        self.font_result = tkfont.Font(root, family=family, size=17, weight="bold")

        style = ttk.Style(root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        root.configure(background=BG)
        style.configure(".", background=BG, font=base)
        style.configure("TFrame", background=BG)
        style.configure("TLabel", background=BG)
        style.configure("Muted.TLabel", foreground=MUTED, font=self.font_small)
        style.configure("Heading.TLabel", font=self.font_heading)
        style.configure("Field.TLabel", font=self.font_bold)
        style.configure("Error.TLabel", foreground=ERROR, font=self.font_bold)
        style.configure("Result.TLabel", foreground=ACCENT, font=self.font_result)
        style.configure("TLabelframe", background=BG, bordercolor=BORDER)
        style.configure("TLabelframe.Label", background=BG, font=self.font_bold)
        style.configure("TCheckbutton", background=BG, font=self.font_bold)
        style.map("TCheckbutton", background=[("active", BG)])
        style.configure("TButton", padding=(14, 5))
        style.configure("Accent.TButton", foreground="#ffffff", background=ACCENT)
        style.map(
            "Accent.TButton",
            background=[("disabled", "#9bb3cf"), ("pressed", "#174a84"), ("active", "#2a6fbf")],
            foreground=[("disabled", "#eef2f7")],
        )

    def _text(self, parent: Any, name: str, **options: Any) -> tk.Text:
        return tk.Text(
            parent,
            name=name,
            wrap="word",
            background=FIELD,
            relief="flat",
            borderwidth=0,
            highlightthickness=1,
            highlightbackground=BORDER,
            highlightcolor=ACCENT,
            padx=8,
            pady=6,
            undo=True,
            **options,
        )

    # --- layout -------------------------------------------------------------------------
    # Widgets are created in keyboard order: Tab follows the order of creation.

    def _build(self) -> None:
        body = ttk.Frame(self.root, name="body", padding=(20, 16, 20, 16))
        body.grid(row=0, column=0, sticky="nsew")
        self.root.columnconfigure(0, weight=1)
        self.root.rowconfigure(0, weight=1)
        body.columnconfigure(0, weight=1)
        self.body = body

        self.heading = ttk.Label(body, name="heading", text="Get help", style="Heading.TLabel")
        self.heading.grid(row=0, column=0, columnspan=2, sticky="w")
        self.intro = ttk.Label(body, name="intro", text=INTRO, wraplength=640, style="Muted.TLabel")
        self.intro.grid(row=1, column=0, columnspan=2, sticky="w", pady=(2, 12))

        form = ttk.Frame(body, name="form")
        form.grid(row=2, column=0, sticky="nsew")
        form.columnconfigure(0, weight=1)
        body.rowconfigure(2, weight=1)
        self.form = form
        ttk.Label(form, name="message_label", text="What is wrong?", style="Field.TLabel").grid(
            row=0, column=0, columnspan=2, sticky="w"
        )
        self.message = self._text(form, "message", height=5, width=64, font="TkTextFont")
        self.message.grid(row=1, column=0, sticky="nsew", pady=(4, 0))
        scroll = ttk.Scrollbar(form, name="message_scroll", command=self.message.yview)
        scroll.grid(row=1, column=1, sticky="ns", pady=(4, 0))
        self.message.configure(yscrollcommand=scroll.set)
        form.rowconfigure(1, weight=1)
        if self.request.message:
            self.message.insert("1.0", self.request.message)
        self.message.edit_reset()
        self.message.mark_set("insert", "end-1c")
        # The hint line doubles as the place for an error about the message.
        self.error = ttk.Label(form, name="error", text=HINT, style="Muted.TLabel", wraplength=600)
        self.error.grid(row=2, column=0, columnspan=2, sticky="w", pady=(2, 0))

        sent = ttk.Labelframe(form, name="sent", text="What will be sent", padding=(12, 6, 12, 10))
        sent.grid(row=3, column=0, columnspan=2, sticky="nsew", pady=(12, 0))
        sent.columnconfigure(1, weight=1)
        self.sent = sent
        ttk.Label(
            sent,
            name="from",
            text=f"Your description, your user name ({self.request.requester}) and:",
            style="Muted.TLabel",
        ).grid(row=0, column=0, columnspan=3, sticky="w", pady=(0, 4))
        self.checkboxes: dict[str, ttk.Checkbutton] = {}
        for row, section in enumerate(self.request.sections, start=1):
            var = tk.BooleanVar(self.root, value=section.name not in self.request.excluded)
            self.included[section.name] = var
            box = ttk.Checkbutton(
                sent,
                name=f"section_{section.name}",
                text=section.title,
                variable=var,
                command=self._sections_changed,
            )
            box.grid(row=row, column=0, sticky="w", pady=1)
            self.checkboxes[section.name] = box
            ttk.Label(
                sent,
                name=f"summary_{section.name}",
                text=section.summary,
                style="Muted.TLabel",
                wraplength=430,
            ).grid(row=row, column=1, columnspan=2, sticky="w", padx=(12, 0))
        last = len(self.request.sections) + 1
        self.showdata = ttk.Button(
            sent, name="showdata", text="Show all data", command=self.toggle_data
        )
        self.showdata.grid(row=last, column=0, sticky="w", pady=(8, 0))
        self.left_out = ttk.Label(sent, name="left_out", text="", style="Muted.TLabel")
        self.left_out.grid(row=last, column=1, columnspan=2, sticky="w", padx=(12, 0), pady=(8, 0))
        self.data = self._text(sent, "data", height=10, width=72, font="TkFixedFont")
        self.data.configure(background="#fafaf8", state="disabled", wrap="none")
        self.data_scroll = ttk.Scrollbar(sent, name="data_scroll", command=self.data.yview)
        self.data.configure(yscrollcommand=self.data_scroll.set)
        self.data_row = last + 1

        buttons = ttk.Frame(body, name="buttons")
        buttons.grid(row=3, column=0, sticky="ew", pady=(14, 0))
        self.buttons = buttons
        self.send_button = ttk.Button(
            buttons, name="send", text="Send", style="Accent.TButton", command=self.on_send
        )
        self.send_button.pack(side="right")
        self.cancel_button = ttk.Button(
            buttons, name="cancel", text="Cancel", command=self.on_close
        )
        self.cancel_button.pack(side="right", padx=(0, 8))
        self.status = ttk.Label(buttons, name="status", text="", style="Muted.TLabel")
        self.status.pack(side="left")
        self.progress = ttk.Progressbar(buttons, name="progress", mode="indeterminate", length=120)

        result = ttk.Frame(body, name="result", padding=(0, 8, 0, 0))
        result.columnconfigure(0, weight=1)
        self.result = result
        self.result_text = ttk.Label(
            result, name="text", text="", style="Result.TLabel", wraplength=620, justify="left"
        )
        self.result_text.grid(row=0, column=0, columnspan=3, sticky="w")
        self.result_next = ttk.Label(
            result, name="next", text="", style="Muted.TLabel", wraplength=620, justify="left"
        )
        self.result_next.grid(row=1, column=0, columnspan=3, sticky="w", pady=(8, 16))
        self.copy_button = ttk.Button(
            result, name="copy", text="Copy number", command=self.copy_reference
        )
        self.copy_button.grid(row=2, column=1, sticky="e", padx=(0, 8))
        self.close_button = ttk.Button(
            result, name="close", text="Close", style="Accent.TButton", command=self.on_close
        )
        self.close_button.grid(row=2, column=2, sticky="e")
        self.copied = ttk.Label(result, name="copied", text="", style="Muted.TLabel")
        self.copied.grid(row=2, column=0, sticky="w")

        self._sections_changed()

    def _fit(self) -> None:
        """Keep the whole window on the screen once the data is shown: fewer data lines
        on a small screen, and move the window up if it would run off the bottom."""
        root = self.root
        root.update_idletasks()
        available = root.winfo_screenheight() - 24
        overflow = root.winfo_reqheight() - available
        if overflow > 0:
            line = tkfont.nametofont("TkFixedFont", root=root).metrics("linespace")
            lines = int(self.data.cget("height")) - -(-overflow // line)
            self.data.configure(height=max(4, lines))
            root.update_idletasks()
        top = root.winfo_y() if root.winfo_ismapped() else 0
        if top + root.winfo_reqheight() > available:
            x = root.winfo_x() if root.winfo_ismapped() else 0
            root.geometry(f"+{x}+{max(0, available - root.winfo_reqheight())}")

    def _place(self) -> None:
        """Centre the window on the screen (a window manager may still move it)."""
        self.root.update_idletasks()
        width, height = self.root.winfo_reqwidth(), self.root.winfo_reqheight()
        x = max(0, (self.root.winfo_screenwidth() - width) // 2)
        y = max(0, (self.root.winfo_screenheight() - height) // 3)
        self.root.geometry(f"+{x}+{y}")
        self.root.minsize(min(width, 560), min(height, 420))

    # --- keyboard -----------------------------------------------------------------------

    def _bind_keys(self) -> None:
        for text in (self.message, self.data):
            # A Tab in a text box moves on, as in every other field; Ctrl+Tab inserts one.
            text.bind("<Tab>", self._focus_next)
            text.bind("<Shift-Tab>", self._focus_prev)
            text.bind("<ISO_Left_Tab>", self._focus_prev)
            text.bind("<Control-Tab>", self._insert_tab)
        self.message.bind("<KeyRelease>", self._typed, add="+")
        buttons = (
            self.showdata,
            self.send_button,
            self.cancel_button,
            self.copy_button,
            self.close_button,
        )
        for button in buttons:
            # Enter presses the focused button, as Space does.
            button.bind("<Return>", self._invoke_key)
            button.bind("<KP_Enter>", self._invoke_key)
        for sequence in ("<Control-Return>", "<Control-KP_Enter>"):
            # Ctrl+Enter sends from anywhere. Bound on the widgets whose own Enter binding
            # would otherwise take it (the text box inserts a newline, a button presses).
            for widget in (self.root, self.message, *buttons):
                widget.bind(sequence, self._send_key)
        self.root.bind("<Escape>", self._escape_key)

    def _focus_next(self, event: tk.Event[Any]) -> str:
        event.widget.tk_focusNext().focus_set()
        return "break"

    def _focus_prev(self, event: tk.Event[Any]) -> str:
        event.widget.tk_focusPrev().focus_set()
        return "break"

    def _insert_tab(self, event: tk.Event[Any]) -> str:
        if str(event.widget.cget("state")) == "normal":
            event.widget.insert("insert", "\t")
        return "break"

    def _send_key(self, _event: tk.Event[Any]) -> str:
        self.on_send()
        return "break"

    def _escape_key(self, _event: tk.Event[Any]) -> str:
        self.on_close()
        return "break"

    def _invoke_key(self, event: tk.Event[Any]) -> str:
        event.widget.invoke()
        return "break"

    def _on_map(self, event: tk.Event[Any]) -> None:
        # Without a window manager (a bare X server, a kiosk) nobody gives the new
        # window the keyboard: take it once, when the window is first shown.
        if event.widget is self.root and not self._mapped_once:
            self._mapped_once = True
            self.root.after_idle(self._take_focus)

    def _take_focus(self) -> None:
        self.root.lift()
        self.root.focus_force()
        self.message.focus_set()

    # --- state --------------------------------------------------------------------------

    def message_text(self) -> str:
        return self.message.get("1.0", "end-1c")

    def _sections_changed(self) -> None:
        self.request.excluded = {name for name, var in self.included.items() if not var.get()}
        left_out = [s.title for s in self.request.sections if s.name in self.request.excluded]
        self.left_out.configure(
            text=("Left out: " + ", ".join(left_out)) if left_out else "Nothing is left out."
        )
        if self.data_shown:
            self._fill_data()

    def _fill_data(self) -> None:
        self.data.configure(state="normal")
        self.data.delete("1.0", "end")
        self.data.insert("1.0", self.request.full_data())
        self.data.configure(state="disabled")

    def toggle_data(self) -> None:
        self.data_shown = not self.data_shown
        if self.data_shown:
            self._fill_data()
            self.data.grid(row=self.data_row, column=0, columnspan=2, sticky="nsew", pady=(8, 0))
            self.data_scroll.grid(row=self.data_row, column=2, sticky="ns", pady=(8, 0))
            self.sent.rowconfigure(self.data_row, weight=1)
            self.showdata.configure(text="Hide data")
            self._fit()
        else:
            self.data.grid_remove()
            self.data_scroll.grid_remove()
            self.sent.rowconfigure(self.data_row, weight=0)
            self.showdata.configure(text="Show all data")

    @property
    def error_text(self) -> str:
        """The error shown about the message, or "" when there is none."""
        return "" if str(self.error.cget("style")) != "Error.TLabel" else self.error.cget("text")

    def show_error(self, text: str) -> None:
        if text:
            self.error.configure(text=text, style="Error.TLabel")
        else:
            self.error.configure(text=HINT, style="Muted.TLabel")

    def _typed(self, _event: tk.Event[Any]) -> None:
        if self.error_text and self.message_text().strip():
            self.show_error("")

    def _disable_inputs(self) -> None:
        self.message.configure(state="disabled", foreground=MUTED)
        for widget in (*self.checkboxes.values(), self.send_button, self.cancel_button):
            widget.state(["disabled"])

    def on_send(self) -> None:
        if self.state != "editing":
            return
        self.request.message = self.message_text()
        try:
            self.request.body("REQ-00000000")  # the same checks as submit, before storing
        except AgentError as exc:
            self.show_error(str(exc)[:1].upper() + str(exc)[1:])
            self.message.focus_set()
            return
        self.show_error("")
        self.state = "sending"
        self._disable_inputs()
        self.status.configure(text="Sending…")
        self.progress.pack(side="left", padx=(12, 0))
        self.progress.start(12)
        self.root.focus_set()  # keep the keyboard in the window while inputs are disabled
        self.task = asyncio.get_running_loop().create_task(self.send_request(self.request))
        self.task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[Submission]) -> None:
        if self.closed:
            return
        self.progress.stop()
        self.progress.pack_forget()
        if task.cancelled():
            self.failure = "sending was interrupted"
        elif (exc := task.exception()) is not None:
            if not isinstance(exc, AgentError):
                log.error("sending the request failed", exc_info=exc)
            self.failure = str(exc) or type(exc).__name__
        else:
            self.submission = task.result()
        if self.submission is not None:
            self.state = "done"
            headline, following = _headline(self.submission)
            created = self.submission.status == "created"
            self.heading.configure(text="Request sent" if created else "Request saved")
        else:
            self.state = "failed"
            headline = "Your request could not be sent."
            reason = (self.failure or "").rstrip(".")
            following = f"{reason[:1].upper()}{reason[1:]}. Please call your help desk."
            self.heading.configure(text="Not sent")
            self.copy_button.grid_remove()
        self.intro.grid_remove()
        self.form.grid_remove()
        self.buttons.grid_remove()
        self.root.minsize(1, 1)
        self.result_text.configure(text=headline)
        self.result_next.configure(text=following)
        self.result.grid(row=2, column=0, sticky="nsew")
        self.close_button.focus_set()

    def copy_reference(self) -> None:
        if self.submission is None:
            return
        self.root.clipboard_clear()
        self.root.clipboard_append(self.submission.reference)
        self.copied.configure(text=f"{self.submission.reference} copied")

    def on_close(self) -> None:
        if self.state == "sending":
            return  # the request is already in the outbox; wait for the answer
        if self.state == "editing":
            self.state = "cancelled"
        self.closed = True
        self.root.destroy()


def _open_root() -> tk.Tk:
    if tk is None:
        raise AgentError("this Python has no Tk for the Get-help window; use --no-gui")
    try:
        root = tk.Tk(className="Backdesk")
    except tk.TclError as exc:
        raise AgentError(f"cannot open the Get-help window ({exc}); use --no-gui") from exc
    root.withdraw()  # show it once laid out and placed
    return root


async def show(root: tk.Tk, request: HelpRequest, send: Submitter) -> GetHelpWindow:
    """Run the window until it is closed; one thread, one event loop."""
    window = GetHelpWindow(root, request, send)
    root.deiconify()
    try:
        while not window.closed:
            try:
                root.update()
            except tk.TclError:  # the window is gone
                break
            await asyncio.sleep(PUMP_INTERVAL)
    finally:
        if not window.closed:
            window.closed = True
            if window.state == "editing":
                window.state = "cancelled"
            try:
                root.destroy()
            except tk.TclError:
                pass
        if window.task is not None and not window.task.done():
            # The window went away mid-send: the request is in the outbox already, so let
            # the attempt finish rather than leave its connection half done.
            try:
                window.submission = await window.task
                window.state = "done"
            except Exception as exc:
                window.failure = str(exc)
                window.state = "failed"
    return window


async def run(agent_dir: AgentDir, message: str, excluded: set[str], as_json: bool = False) -> None:
    """``backdesk-agent get-help`` with a window; prints the result once it is closed."""
    enrollment = agent_dir.load_enrollment()
    request = await asyncio.to_thread(
        HelpRequest.collect,
        message,
        excluded,
        agent_dir.clock_offset(time.time()),
        urlsplit(enrollment.coordinator).hostname,
    )
    root = _open_root()
    window = await show(root, request, lambda r: submit(agent_dir, r))
    if window.state == "cancelled":
        raise AgentError("nothing was sent")
    if window.submission is None:
        raise AgentError(f"the request could not be sent: {window.failure}")
    submission = window.submission
    print(
        json.dumps(asdict(submission)) if as_json else result_sentence(submission),
        flush=True,
    )
