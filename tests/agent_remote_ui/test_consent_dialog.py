"""The consent dialog as the person at the endpoint meets it (DESIGN.md invariant 1):
it names who asks for what, only a click on an Allow button allows, and every other way
out (Deny, Escape, closing, the clock, a dead or impossible window) is a no."""

from __future__ import annotations

import asyncio
import time

import pytest
from Xlib import X
from Xlib import display as xdisplay
from Xlib.protocol import event as xevent

from agent.remote import consent
from agent.remote.consent import TITLE, ConsentAnswer, ConsentRequest, ask
from tests.agent_gui.conftest import Screen

from .conftest import Dialog, click, wait_gone, wm_state

CONTROL = {
    "technician": "Alice Martin",
    "role": "L2",
    "ticket": "BD-1042",
    "subject": "Printer offline",
    "scope": "control",
    "code": "123456",
    "timeout": 30,
}
VIEW = {**CONTROL, "scope": "view"}


def open_dialog(screen: Screen, dialogs: list[Dialog], request: dict) -> tuple[Dialog, str]:
    dialog = Dialog(screen, request)
    dialogs.append(dialog)
    window = screen.find_window(TITLE)
    dialog.ready()
    return dialog, window


def test_control_request_shows_the_dialog_and_allow_control_allows_control(
    screen, dialogs, tmp_path
):
    dialog, window = open_dialog(screen, dialogs, CONTROL)
    assert screen.xdotool("getwindowname", window).rstrip("\n") == TITLE
    assert screen.xdotool("getwindowfocus").strip() == window, "the dialog takes the keyboard"
    assert "_NET_WM_STATE_ABOVE" in wm_state(screen, window), "the dialog stays on top"
    assert set(dialog.buttons) == {"deny", "allow_view", "allow_control"}
    screen.screenshot(tmp_path / "consent-control.png", window)
    assert screen.colours_in(window) > 8, "the dialog looks blank"
    click(screen, dialog.buttons["allow_control"])
    assert dialog.answer() == {"decision": "allow", "scope": "control", "reason": None}
    wait_gone(screen, TITLE)


def test_allow_view_on_a_control_request_grants_only_view(screen, dialogs):
    dialog, _ = open_dialog(screen, dialogs, CONTROL)
    click(screen, dialog.buttons["allow_view"])
    assert dialog.answer()["scope"] == "view"


def test_a_view_request_has_no_allow_control(screen, dialogs):
    dialog, _ = open_dialog(screen, dialogs, VIEW)
    assert set(dialog.buttons) == {"deny", "allow_view"}
    click(screen, dialog.buttons["allow_view"])
    assert dialog.answer() == {"decision": "allow", "scope": "view", "reason": None}


def test_deny(screen, dialogs):
    dialog, _ = open_dialog(screen, dialogs, CONTROL)
    click(screen, dialog.buttons["deny"])
    assert dialog.answer() == {"decision": "deny", "scope": None, "reason": None}
    wait_gone(screen, TITLE)


def test_escape_denies(screen, dialogs):
    dialog, window = open_dialog(screen, dialogs, CONTROL)
    screen.focus(window)
    screen.key("Escape")
    assert dialog.answer()["decision"] == "deny"


def test_no_answer_is_a_timeout(screen, dialogs):
    dialog = Dialog(screen, {**CONTROL, "timeout": 1.5})
    dialogs.append(dialog)
    screen.find_window(TITLE)
    started = time.monotonic()
    assert dialog.answer()["decision"] == "timeout"
    assert time.monotonic() - started < 5
    wait_gone(screen, TITLE)


def test_closing_the_window_denies(screen, dialogs):
    dialog, window = open_dialog(screen, dialogs, CONTROL)
    d = xdisplay.Display(screen.display)
    try:
        w = d.create_resource_object("window", int(window))
        message = xevent.ClientMessage(
            window=w,
            client_type=d.intern_atom("WM_PROTOCOLS"),
            data=(32, [d.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]),
        )
        w.send_event(message, event_mask=X.NoEventMask)
        d.sync()
    finally:
        d.close()
    answer = dialog.answer()
    assert answer["decision"] == "deny" and answer["scope"] is None


def _run(coro):
    return asyncio.run(coro)


REQUEST = ConsentRequest("Alice Martin", "L2", "BD-1042", "Printer offline", "control", "123456")


def test_ask_from_the_keyboard(screen, monkeypatch):
    """Through the agent's wrapper: Tab to "Allow view", Space."""
    monkeypatch.setenv("DISPLAY", screen.display)
    screen.xdotool("mousemove", "1279", "799")

    async def person() -> None:
        window = await asyncio.to_thread(screen.find_window, TITLE)
        await asyncio.sleep(consent.ARM_DELAY + 0.4)
        await asyncio.to_thread(screen.focus, window)
        await asyncio.to_thread(screen.key, "Tab", "Tab", "space")

    async def main() -> ConsentAnswer:
        helper = asyncio.create_task(person())
        answer = await ask(REQUEST, timeout=20)
        await helper
        return answer

    assert _run(main()) == ConsentAnswer("allow", "view", None)


def test_enter_before_anything_is_chosen_does_not_allow(screen, dialogs):
    dialog, window = open_dialog(screen, dialogs, {**CONTROL, "timeout": 2})
    screen.focus(window)
    screen.key("Return", "space")
    assert dialog.answer()["decision"] == "timeout"


def test_a_killed_dialog_is_a_deny(screen, monkeypatch):
    monkeypatch.setenv("DISPLAY", screen.display)

    async def main() -> ConsentAnswer:
        task = asyncio.create_task(ask(REQUEST, timeout=20))
        window = await asyncio.to_thread(screen.find_window, TITLE)
        await asyncio.to_thread(screen.xdotool, "windowkill", window)
        return await task

    answer = _run(main())
    assert answer.decision == "deny" and answer.scope is None and answer.reason


def test_a_short_timeout_through_ask(screen, monkeypatch):
    monkeypatch.setenv("DISPLAY", screen.display)
    answer = _run(ask(REQUEST, timeout=1))
    assert answer.decision == "timeout" and not answer.allowed


def test_cancelling_ask_leaves_no_window(screen, monkeypatch):
    monkeypatch.setenv("DISPLAY", screen.display)

    async def main() -> None:
        task = asyncio.create_task(ask(REQUEST, timeout=20))
        await asyncio.to_thread(screen.find_window, TITLE)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(main())
    assert screen.windows(TITLE) == []


def test_no_display_is_a_deny(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    answer = _run(ask(REQUEST, timeout=5))
    assert answer.decision == "deny" and answer.scope is None
    assert "cannot show" in (answer.reason or "")


@pytest.mark.parametrize(
    ("line", "asked", "expected"),
    [
        ('{"decision": "allow", "scope": "control"}', "view", ConsentAnswer("allow", "view")),
        ('{"decision": "allow", "scope": null}', "control", None),
        ('{"decision": "allow", "scope": "all"}', "control", None),
        ("not json", "control", None),
        ('["allow"]', "control", None),
        ('{"decision": "yes"}', "control", None),
    ],
)
def test_odd_answers_never_grant_more_than_asked(line, asked, expected):
    answer = consent.parse_answer(line, asked)
    if expected is None:
        assert answer.decision == "deny" and answer.scope is None
    else:
        assert answer == expected
