"""The banner a live session keeps on the endpoint's screen: always there while the
session lives, gone when it ends, and the user's way out (button, hotkey, closing it)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from agent.remote.banner import TITLE, Banner, BannerError, BannerEvent
from tests.agent_gui.conftest import Screen
from tests.conftest import wait_for

from .conftest import click, wait_gone, wm_state


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def started(screen: Screen, scope: str = "view") -> tuple[Banner, str]:
    await asyncio.to_thread(screen.xdotool, "mousemove", "1279", "799")
    banner = Banner()
    await banner.start("Alice Martin", "BD-1042", scope)
    window = await asyncio.to_thread(screen.find_window, TITLE)
    return banner, window


@pytest.fixture
def display(screen, monkeypatch):
    monkeypatch.setenv("DISPLAY", screen.display)
    return screen


def test_banner_is_a_strip_at_the_top_and_end_session_ends(display, tmp_path):
    screen = display

    async def main() -> BannerEvent:
        banner, window = await started(screen)
        try:
            g = screen.geometry(window)
            assert g["Y"] == 0 and abs(g["X"] + g["WIDTH"] / 2 - 640) <= 2, g
            assert g["HEIGHT"] < 120 and g["WIDTH"] < 900, g
            assert "_NET_WM_STATE_ABOVE" in wm_state(screen, window), "always on top"
            await asyncio.sleep(0.2)
            screen.screenshot(tmp_path / "banner.png", window)
            assert screen.colours_in(window) > 4, "the banner looks blank"
            await asyncio.to_thread(click, screen, banner.layout["end"])
            return await banner.wait_event()
        finally:
            await banner.close()

    assert run(main()) == BannerEvent("end", "user")
    wait_gone(screen, TITLE)


def test_ctrl_alt_shift_e_on_the_banner_ends(display, monkeypatch):
    screen = display
    monkeypatch.setenv("BACKDESK_NO_GLOBAL_HOTKEY", "1")

    async def main() -> BannerEvent:
        banner, window = await started(screen, "control")
        try:
            assert not banner.hotkey
            await asyncio.to_thread(screen.focus, window)
            await asyncio.to_thread(screen.key, "ctrl+alt+shift+e")
            return await banner.wait_event()
        finally:
            await banner.close()

    assert run(main()) == BannerEvent("end", "user")
    wait_gone(screen, TITLE)


def test_the_global_hotkey_ends_while_another_window_has_the_keyboard(display, xterm):
    screen = display
    other = subprocess.Popen(
        [xterm, "-title", "elsewhere", "-geometry", "40x5+0+300"], env=screen.env
    )

    async def main() -> BannerEvent:
        banner, _ = await started(screen)
        try:
            assert banner.hotkey, "pynput's GlobalHotKeys did not start on Xvfb"
            term = await asyncio.to_thread(screen.find_window, "elsewhere")
            await asyncio.to_thread(screen.focus, term)
            assert screen.xdotool("getwindowfocus").strip() == term
            await asyncio.to_thread(screen.key, "ctrl+alt+shift+e")
            return await banner.wait_event()
        finally:
            await banner.close()

    try:
        assert run(main()) == BannerEvent("end", "user")
    finally:
        other.kill()
        other.wait()


def test_close_takes_the_banner_away(display):
    screen = display

    async def main() -> None:
        banner, _ = await started(screen)
        waiting = asyncio.create_task(banner.wait_event())
        await asyncio.sleep(0.1)
        await banner.close()
        assert not banner.running
        assert await waiting == BannerEvent("end", "closed")
        await banner.close()  # twice is fine

    run(main())
    assert screen.windows(TITLE) == []


def test_chat_both_ways(display):
    screen = display

    async def main() -> BannerEvent:
        banner, window = await started(screen, "control")
        try:
            height = screen.geometry(window)["HEIGHT"]
            entry = dict(banner.layout)["entry"]
            await banner.show_chat("I am opening the printer settings now")
            await asyncio.to_thread(
                wait_for,
                lambda: screen.geometry(window)["HEIGHT"] > height,
                5,
                0.05,
                "the message to be shown",
            )
            await asyncio.to_thread(wait_for, lambda: banner.layout["entry"] != entry, 5, 0.05)
            await asyncio.to_thread(click, screen, banner.layout["entry"])
            await asyncio.to_thread(screen.type, "thanks")
            await asyncio.to_thread(screen.key, "Return")
            return await banner.wait_event()
        finally:
            await banner.close()

    assert run(main()) == BannerEvent("chat", "thanks")


def test_a_banner_that_dies_ends_the_session(display):
    screen = display

    async def main() -> list[BannerEvent]:
        banner, window = await started(screen)
        try:
            await asyncio.to_thread(screen.xdotool, "windowkill", window)
            return [event async for event in banner]
        finally:
            await banner.close()

    assert run(main()) == [BannerEvent("end", "gone")]


def test_no_display_no_banner(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    async def main() -> None:
        banner = Banner()
        with pytest.raises(BannerError, match="could not be shown"):
            await banner.start("Alice Martin", "BD-1042", "view")
        assert not banner.running

    run(main())
