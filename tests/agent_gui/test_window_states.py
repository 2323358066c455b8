"""The Get-help window's widgets and states, in this process, on the same X server.

These build the window around fixed diagnostics and a stand-in for ``submit``, so each
state (refused message, sending, sent, queued, failed) is reached on purpose and fast;
test_get_help_window.py drives the real CLI, coordinator and keyboard end to end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.diagnostics import Section
from agent.errors import AgentError
from agent.gethelp import window as gui
from agent.gethelp.request import MAX_MESSAGE, HelpRequest, Submission

from .conftest import TITLE, Screen

SECTIONS = [
    Section("system", "System", "Linux 6.1 on x86_64, up 3.0 h", {"os": "Linux"}),
    Section("cpu", "Processor", "8 CPUs, 12% busy", {"logical": 8}),
    Section("memory", "Memory", "3.1 GiB free of 15.5 GiB", {"total": 16}),
    Section("processes", "Processes", "212 processes", [{"pid": 1, "name": "init"}]),
]


def make_request(message: str = "", excluded: set[str] | None = None) -> HelpRequest:
    return HelpRequest(message, list(SECTIONS), set(excluded or ()), requester="alice")


@pytest.fixture
def root(screen: Screen) -> Iterator[Any]:
    import tkinter as tk

    root = tk.Tk(screenName=screen.display, className="Backdesk")
    root.withdraw()
    yield root
    try:
        root.destroy()
    except tk.TclError:
        pass  # the window closed itself


async def never(_request: HelpRequest) -> Submission:
    raise AssertionError("nothing should be sent")


def open_window(root: Any, request: HelpRequest, send: Any = never) -> gui.GetHelpWindow:
    window = gui.GetHelpWindow(root, request, send)
    root.deiconify()
    root.update()
    return window


async def pump_until(root: Any, done: Any, timeout: float = 5) -> None:
    """Run Tk and the event loop together, as ``show`` does, until ``done()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, "timed out"
        root.update()
        await asyncio.sleep(0.01)


def test_title_names_and_keyboard_order(root: Any) -> None:
    window = open_window(root, make_request("Printer jam"))
    assert root.title() == TITLE
    for path in (
        ".body.form.message",
        ".body.form.error",
        ".body.form.sent.section_cpu",
        ".body.form.sent.showdata",
        ".body.buttons.send",
        ".body.buttons.cancel",
        ".body.result.close",
    ):
        root.nametowidget(path)
    assert window.message_text() == "Printer jam"

    order = []
    widget: Any = window.message
    for _ in range(len(SECTIONS) + 4):
        widget = widget.tk_focusNext()
        order.append(str(widget).rsplit(".", 1)[-1])
    assert order == [
        "section_system",
        "section_cpu",
        "section_memory",
        "section_processes",
        "showdata",
        "send",
        "cancel",
        "message",
    ]


def test_checkboxes_decide_what_is_sent(root: Any) -> None:
    request = make_request("Slow", excluded={"processes"})
    window = open_window(root, request)
    assert window.included["processes"].get() is False
    assert window.included["cpu"].get() is True
    assert "Left out: Processes" in window.left_out.cget("text")

    window.showdata.invoke()
    shown = json.loads(window.data.get("1.0", "end-1c"))
    assert set(shown) == {"system", "cpu", "memory"}
    assert str(window.data.cget("state")) == "disabled"  # read-only

    window.checkboxes["cpu"].invoke()  # leave the processor out too
    assert request.excluded == {"cpu", "processes"}
    assert set(json.loads(window.data.get("1.0", "end-1c"))) == {"system", "memory"}
    assert set(request.body("REQ-1")["diagnostics"]) == {"system", "memory"}
    assert request.body("REQ-1")["excluded"] == ["cpu", "processes"]

    window.showdata.invoke()
    assert not window.data.winfo_ismapped()


def test_empty_or_too_long_message_is_refused_in_place(root: Any) -> None:
    window = open_window(root, make_request("   "))
    window.on_send()
    assert window.state == "editing"
    assert "message is empty" in window.error_text
    assert window.error_text[0].isupper()

    window.message.delete("1.0", "end")
    window.message.insert("1.0", "x" * (MAX_MESSAGE + 1))
    window.on_send()
    assert window.state == "editing"
    assert "too long" in window.error_text

    window.message.delete("1.0", "end")
    window.message.insert("1.0", "Now it is fine")
    window._typed(None)  # type: ignore[arg-type]
    assert window.error_text == ""


async def test_sending_disables_the_form_then_shows_the_reference(root: Any) -> None:
    release = asyncio.Event()

    async def send(request: HelpRequest) -> Submission:
        assert request.message == "VPN drops every hour"
        await release.wait()
        return Submission("BD-000123", "created", "REQ-0A1B2C3D")

    window = open_window(root, make_request("VPN drops every hour"), send)
    window.on_send()
    assert window.state == "sending"
    assert window.status.cget("text") == "Sending…"
    assert window.send_button.instate(["disabled"])
    assert window.checkboxes["cpu"].instate(["disabled"])
    assert str(window.message.cget("state")) == "disabled"
    window.on_close()  # closing mid-send is refused: wait for the answer
    assert window.state == "sending" and not window.closed

    release.set()
    await pump_until(root, lambda: window.state != "sending")
    assert window.state == "done"
    assert window.result_text.cget("text") == "Your reference number is BD-000123"
    root.update()
    assert window.result.winfo_ismapped() and not window.form.winfo_ismapped()

    window.copy_button.invoke()
    assert root.clipboard_get() == "BD-000123"
    window.close_button.invoke()
    assert window.closed


async def test_queued_and_failed_results(root: Any) -> None:
    async def queued(_request: HelpRequest) -> Submission:
        return Submission("REQ-0A1B2C3D", "queued", "REQ-0A1B2C3D")

    window = open_window(root, make_request("No printer"), queued)
    window.on_send()
    await pump_until(root, lambda: window.state != "sending")
    assert window.result_text.cget("text") == (
        "The help desk cannot be reached right now. Your request is saved as "
        "REQ-0A1B2C3D and will be sent automatically."
    )
    assert gui.result_sentence(window.submission) == (  # type: ignore[arg-type]
        "The help desk cannot be reached right now. Your request is saved as "
        "REQ-0A1B2C3D and will be sent as soon as the connection is back."
    )
    window.on_close()


async def test_a_failed_send_says_so(root: Any) -> None:
    async def broken(_request: HelpRequest) -> Submission:
        raise AgentError("the outbox is not writable")

    window = open_window(root, make_request("No printer"), broken)
    window.on_send()
    await pump_until(root, lambda: window.state != "sending")
    assert window.state == "failed"
    assert window.heading.cget("text") == "Not sent"
    assert window.result_next.cget("text") == (
        "The outbox is not writable. Please call your help desk."
    )


async def test_show_returns_when_cancelled(root: Any) -> None:
    request = make_request("Never mind")
    root.after(300, lambda: root.event_generate("<Escape>", when="tail"))
    shown = await asyncio.wait_for(gui.show(root, request, never), 10)
    assert shown.state == "cancelled"
    assert shown.closed


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tkinter")
    monkeypatch.setenv("DISPLAY", ":65000")  # no such X server
    with pytest.raises(AgentError, match=r"cannot open the Get-help window.*--no-gui"):
        gui._open_root()
