"""Input injection on a real X server: keys by physical position through XTEST (xterm
ignores synthetic XSendEvent keys, so text arriving in xterm proves it), the pointer
relative to the monitor shown and clamped to it, and nothing left held down at the end."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.remote.inject import EVDEV, US_KEYSYM, InjectionUnavailable, Injector
from protocol.remote import Key, PointerButton, PointerMove, Wheel
from tests.conftest import wait_for

TEXT = "Hello, World1"
PUNCTUATION = {",": "Comma", " ": "Space", "1": "Digit1"}

TARGET = r"""
import sys, tkinter as tk
root = tk.Tk()
root.title("inject-target")
root.geometry("400x300+0+0")
def say(*words):
    print(*words, flush=True)
root.bind("<ButtonPress>", lambda e: say("press", e.num, e.x_root, e.y_root))
root.bind("<ButtonRelease>", lambda e: say("release", e.num, e.x_root, e.y_root))
root.after(100, lambda: say("ready"))
root.mainloop()
"""


@pytest.fixture
def injector(screen, monkeypatch) -> Iterator[Injector]:
    monkeypatch.setenv("DISPLAY", screen.display)
    injector = Injector(0, 0)
    yield injector
    injector.close()


def keys_for(text: str) -> list[Key]:
    events = []
    for ch in text:
        code = PUNCTUATION.get(ch) or f"Key{ch.upper()}"
        if ch.isupper():
            events.append(Key("ShiftLeft", True))
        events += [Key(code, True), Key(code, False)]
        if ch.isupper():
            events.append(Key("ShiftLeft", False))
    return events


def test_typing_into_xterm(screen, injector, xterm, tmp_path):
    out = tmp_path / "typed.txt"
    term = subprocess.Popen(
        [
            xterm,
            "-title",
            "inject-xterm",
            "-geometry",
            "60x5+0+420",
            "-e",
            "sh",
            "-c",
            f"cat > {out}",
        ],
        env=screen.env,
    )
    try:
        window = screen.find_window("inject-xterm")
        screen.focus(window)
        time.sleep(0.2)  # let cat start reading
        for event in [*keys_for(TEXT), Key("Enter", True), Key("Enter", False)]:
            assert injector.apply(event)
        wait_for(lambda: out.exists() and out.read_text() == TEXT + "\n", 5, 0.05, "the text")
        assert out.read_text() == TEXT + "\n"
    finally:
        term.kill()
        term.wait()


def mouse(screen) -> tuple[int, int]:
    values = dict(part.split(":") for part in screen.xdotool("getmouselocation").split())
    return int(values["x"]), int(values["y"])


def test_pointer_moves_relative_to_the_monitor_and_stays_on_it(screen, injector):
    injector.set_monitor(100, 50, 400, 300)
    injector.apply(PointerMove(10, 20))
    assert mouse(screen) == (110, 70)
    injector.apply(PointerMove(5000, 5000))
    assert mouse(screen) == (499, 349)


def test_the_default_monitor_is_the_whole_screen(screen, monkeypatch):
    monkeypatch.setenv("DISPLAY", screen.display)
    injector = Injector(200, 100)
    try:
        injector.apply(PointerMove(60000, 60000))
        assert mouse(screen) == (1279, 799)
    finally:
        injector.close()


@pytest.fixture
def target(screen) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", TARGET], env=screen.env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.kill()
    process.wait()


def test_buttons_and_wheel_reach_the_window_under_the_pointer(injector, target):
    injector.set_monitor(0, 0, 400, 300)
    for event in [
        PointerMove(50, 60),
        PointerButton(1, True),
        PointerButton(1, False),
        PointerButton(3, True),
        PointerButton(3, False),
        Wheel(0, 2),
        Wheel(0, -1),
    ]:
        assert injector.apply(event)
    lines = [target.stdout.readline().split() for _ in range(10)]
    assert lines == [
        ["press", "1", "50", "60"],
        ["release", "1", "50", "60"],
        ["press", "3", "50", "60"],
        ["release", "3", "50", "60"],
        ["press", "5", "50", "60"],
        ["release", "5", "50", "60"],
        ["press", "5", "50", "60"],
        ["release", "5", "50", "60"],
        ["press", "4", "50", "60"],
        ["release", "4", "50", "60"],
    ]


def held_keycodes(injector: Injector) -> set[int]:
    keymap = injector._backend.display.query_keymap()
    return {
        byte * 8 + bit for byte, bits in enumerate(keymap) for bit in range(8) if bits >> bit & 1
    }


def test_release_all_lets_go_of_everything(screen, injector):
    injector.apply(PointerMove(1000, 700))  # away from every window
    for event in [Key("ShiftLeft", True), Key("ControlRight", True), PointerButton(1, True)]:
        injector.apply(event)
    shift, ctrl = EVDEV["ShiftLeft"] + 8, EVDEV["ControlRight"] + 8
    assert {shift, ctrl} <= held_keycodes(injector)
    pointer = injector._backend.display.screen().root.query_pointer()
    assert pointer.mask & (1 << 8), "button 1 is down"
    injector.release_all()
    assert not ({shift, ctrl} & held_keycodes(injector))
    pointer = injector._backend.display.screen().root.query_pointer()
    assert not pointer.mask & (1 << 8)


def test_unknown_codes_are_ignored(injector):
    assert injector.apply(Key("Bogus", True)) is False
    assert injector.apply(Key("Fn", False)) is False
    assert injector.apply(Key("KeyQ", False)) is True  # never pressed: nothing sent
    assert not held_keycodes(injector) & {EVDEV["KeyQ"] + 8}


def test_physical_positions_match_a_us_keyboard(injector):
    """On Xvfb's evdev/us keymap, each code's keycode carries the US keysym for it."""
    from Xlib import XK

    backend = injector._backend
    assert backend.evdev
    wrong = {}
    for code, name in US_KEYSYM.items():
        # F13-F24 carry XF86 keysyms; the keypad comma (Brazilian, Japanese keyboards)
        # has nothing on a US keymap.
        if code not in EVDEV or code in {*(f"F{n}" for n in range(13, 25)), "NumpadComma"}:
            continue
        keycode = backend.keycode(code)
        found = {backend.display.keycode_to_keysym(keycode, i) for i in range(4)}
        if XK.string_to_keysym(name) not in found:
            wrong[code] = [XK.keysym_to_string(k) for k in found]
    assert wrong == {}


def test_keysym_lookup_finds_the_same_keys_when_keycodes_are_not_evdev(injector):
    backend = injector._backend
    evdev_codes = {
        code: backend.keycode(code) for code in ("KeyA", "Digit1", "Enter", "ShiftLeft", "Slash")
    }
    backend.evdev = False
    backend._keycodes.clear()
    assert {code: backend.keycode(code) for code in evdev_codes} == evdev_codes


def test_no_display_means_no_injection(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(InjectionUnavailable, match="X display"):
        Injector(0, 0)
