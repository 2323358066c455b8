"""Done-when of remote sessions, in Chromium: the consent dialog answered through its real
window, the Xvfb screen's pixels on the page's canvas, a click in the canvas moving the
real X pointer to the right spot, typing reaching a real X window, and ending from
either side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.conftest import ApiClient, wait_for
from tests.e2e_remote.conftest import CONSENT_TITLE, Desk, pointer

PASSWORD = "correct horse battery staple"
BLOCKS = {
    (100, 100): (0xE0, 0x20, 0x20),
    (220, 100): (0x20, 0xC0, 0x40),
    (100, 220): (0x20, 0x40, 0xE0),
    (220, 220): (0xF0, 0xD0, 0x20),
}
SCREENSHOTS = os.environ.get("BACKDESK_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def technician(desk: Desk) -> dict[str, str]:
    admin = ApiClient(desk.coordinator, desk.coordinator.api_key("admin"))
    status, user = admin.request(
        "POST",
        "/api/v1/users",
        {"name": "ada", "role": "l2", "password": PASSWORD, "full_name": "Ada Lovelace"},
    )
    assert status == 201, user
    totp = pyotp.parse_uri(user["totp_uri"])
    return {"name": "ada", "secret": totp.secret}


@pytest.fixture(scope="module")
def page(browser: Any, desk: Desk, technician: dict[str, str]) -> Any:
    """One sign-in for the module (a TOTP code is accepted once)."""
    context = browser.new_context(
        ignore_https_errors=True,
        base_url=desk.coordinator.url,
        viewport={"width": 1440, "height": 900},
        locale="en-GB",
        timezone_id="UTC",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=name]", technician["name"])
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", pyotp.TOTP(technician["secret"]).now())
    page.click("button[type=submit]")
    page.wait_for_url("**/queue**")
    yield page
    context.close()


def open_session(desk: Desk, page: Any, button: str, scope_button: str) -> str:
    """From the ticket page to a live session; returns the session id."""
    reference = desk.ticket(take=False)
    status, body = desk.technician.request(
        "POST", f"/api/v1/tickets/{reference}/actions", {"action": "assign", "assignee": "ada"}
    )
    assert status == 200, body
    page.goto(f"/tickets/{reference}")
    since = desk.log_size()
    page.click(f"[data-action=request-{scope_button}]")
    page.wait_for_url("**/sessions/*")
    session_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function("() => window.backdeskViewer && window.backdeskViewer.code")
    shown = page.inner_text("#code").replace(" ", "")
    assert shown == page.evaluate("window.backdeskViewer.code") and len(shown) == 6
    desk.answer(since, button)
    page.wait_for_function("() => window.backdeskViewer.state === 'live'")
    consent = desk.session(session_id)["consent"]["receipt"]
    assert consent["code"] == shown, "both ends showed the same verification code"
    return session_id


def canvas_pixel(page: Any, x: int, y: int) -> tuple[int, int, int]:
    rgba = page.evaluate(
        """([x, y]) => Array.from(document.getElementById('screen')
            .getContext('2d').getImageData(x, y, 1, 1).data)""",
        [x, y],
    )
    return rgba[0], rgba[1], rgba[2]


def click_remote(page: Any, x: int, y: int) -> None:
    """Click the canvas where the remote pixel (x, y) is shown (the canvas is scaled)."""
    box = page.evaluate(
        """() => { const c = document.getElementById('screen');
                   const r = c.getBoundingClientRect();
                   return [r.left, r.top, r.width, r.height, c.width, c.height]; }"""
    )
    left, top, width, height, cw, ch = box
    page.mouse.click(left + (x + 0.5) * width / cw, top + (y + 0.5) * height / ch)


def test_control_in_the_browser(desk: Desk, page: Any, xterm_file: Any) -> None:
    window, typed = xterm_file
    session_id = open_session(desk, page, "allow_control", "control")
    assert desk.banner_shown()

    def pattern_drawn() -> bool:
        return all(
            max(abs(a - b) for a, b in zip(canvas_pixel(page, x, y), colour, strict=True)) <= 24
            for (x, y), colour in BLOCKS.items()
        )

    wait_for(pattern_drawn, 20, what="the pattern on the page's canvas")
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / "remote-session.png"))

    click_remote(page, 321, 123)
    wait_for(
        lambda: max(abs(a - b) for a, b in zip(pointer(desk.screen), (321, 123), strict=True)) <= 1,
        5,
        what="the X pointer at the clicked spot",
    )
    # Keys go to the xterm (focused, as there is no window manager), typed in the page.
    desk.screen.xdotool("windowfocus", "--sync", window)
    page.focus("#screen")
    page.keyboard.press("Shift+KeyH")  # the physical keys, as a person presses them
    page.keyboard.type("i5-")
    page.keyboard.press("Enter")
    wait_for(
        lambda: typed.read_text() == "Hi5-\n",
        10,
        what=f"the typed line in the xterm (so far {typed.read_text()!r})",
    )

    page.click("#end-session")
    page.wait_for_function("() => window.backdeskViewer.state === 'ended'")
    assert desk.wait_ended(session_id)["reason"] == "ended_by_technician"
    desk.no_banner()
    assert "Ended" in page.inner_text("#state-text")
    # The ticket keeps the session: listed with its end, and the signed receipt in the
    # timeline.
    page.click("#ticket-link")
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "remote-session-ticket.png"), full_page=True)
    assert "ended by technician" in page.inner_text("[data-testid=sessions]").lower()
    timeline = page.inner_text("[data-testid=timeline]")
    assert "allowed" in timeline and "Signed receipt" in timeline and "session ended" in timeline


def test_the_user_ends_it_and_the_page_says_so(desk: Desk, page: Any) -> None:
    session_id = open_session(desk, page, "allow_view", "view")
    page.wait_for_function("() => window.backdeskViewer.framesDrawn > 0")
    assert page.evaluate("window.backdeskViewer.scope") == "view"
    assert not desk.screen.windows(CONSENT_TITLE)
    desk.screen.xdotool("key", "ctrl+alt+shift+e")
    page.wait_for_function("() => window.backdeskViewer.state === 'ended'")
    assert page.evaluate("window.backdeskViewer.reason") == "ended_by_user"
    assert desk.wait_ended(session_id)["reason"] == "ended_by_user"
    desk.no_banner()
