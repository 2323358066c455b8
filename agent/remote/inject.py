"""Input injection: the technician's pointer and keys, replayed on this machine.

Only ever used once the user (or an administrator's policy) granted *control*
(DESIGN.md invariant 1). Keys arrive as ``KeyboardEvent.code`` values — physical
positions, independent of the technician's layout — and are pressed as the X keycode at
that position, so the endpoint's own layout decides which character comes out, as if
the technician were at its keyboard.

On X11 every event goes through the XTEST extension (``Xlib.ext.xtest.fake_input``, the
path pynput's own xorg backend uses for the pointer and for keys it knows by keycode),
all on one X connection so a Shift+click or Ctrl+C arrives in order. pynput's keyboard
``Controller`` is not used for keys there: it types characters with ``XSendEvent``,
which xterm and other programs ignore as synthetic. Elsewhere (Windows, macOS) pynput's
controllers do the work. Both are imported lazily: they need a display at import.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from protocol.remote import Input, Key, PointerButton, PointerMove, Wheel

log = logging.getLogger(__name__)

# KeyboardEvent.code → Linux evdev code (input-event-codes.h). X servers using the evdev
# keymap (Xorg, Xvfb, Xwayland) number keys as evdev + 8.
EVDEV: dict[str, int] = {
    "Escape": 1,
    **{f"Digit{d}": 1 + d for d in range(1, 10)},
    "Digit0": 11,
    "Minus": 12,
    "Equal": 13,
    "Backspace": 14,
    "Tab": 15,
    **{f"Key{c}": 16 + i for i, c in enumerate("QWERTYUIOP")},
    "BracketLeft": 26,
    "BracketRight": 27,
    "Enter": 28,
    "ControlLeft": 29,
    **{f"Key{c}": 30 + i for i, c in enumerate("ASDFGHJKL")},
    "Semicolon": 39,
    "Quote": 40,
    "Backquote": 41,
    "ShiftLeft": 42,
    "Backslash": 43,
    **{f"Key{c}": 44 + i for i, c in enumerate("ZXCVBNM")},
    "Comma": 51,
    "Period": 52,
    "Slash": 53,
    "ShiftRight": 54,
    "NumpadMultiply": 55,
    "AltLeft": 56,
    "Space": 57,
    "CapsLock": 58,
    **{f"F{n}": 58 + n for n in range(1, 11)},
    "NumLock": 69,
    "ScrollLock": 70,
    "Numpad7": 71,
    "Numpad8": 72,
    "Numpad9": 73,
    "NumpadSubtract": 74,
    "Numpad4": 75,
    "Numpad5": 76,
    "Numpad6": 77,
    "NumpadAdd": 78,
    "Numpad1": 79,
    "Numpad2": 80,
    "Numpad3": 81,
    "Numpad0": 82,
    "NumpadDecimal": 83,
    "IntlBackslash": 86,
    "F11": 87,
    "F12": 88,
    "IntlRo": 89,
    "NumpadEnter": 96,
    "ControlRight": 97,
    "NumpadDivide": 98,
    "PrintScreen": 99,
    "AltRight": 100,
    "Home": 102,
    "ArrowUp": 103,
    "PageUp": 104,
    "ArrowLeft": 105,
    "ArrowRight": 106,
    "End": 107,
    "ArrowDown": 108,
    "PageDown": 109,
    "Insert": 110,
    "Delete": 111,
    "NumpadEqual": 117,
    "Pause": 119,
    "NumpadComma": 121,
    "IntlYen": 124,
    "MetaLeft": 125,
    "MetaRight": 126,
    "ContextMenu": 127,
    **{f"F{n}": 170 + n for n in range(13, 25)},
}

# KeyboardEvent.code → the X keysym name at that position on a US keyboard: how a key is
# found on a server whose keycodes are not evdev's (then the endpoint's layout is taken
# to be US-like), and what pynput presses where there is no X.
US_KEYSYM: dict[str, str] = {
    **{f"Key{c}": c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    **{f"Digit{d}": str(d) for d in range(10)},
    **{f"F{n}": f"F{n}" for n in range(1, 25)},
    **{f"Numpad{d}": f"KP_{d}" for d in range(10)},
    "Escape": "Escape",
    "Minus": "minus",
    "Equal": "equal",
    "Backspace": "BackSpace",
    "Tab": "Tab",
    "BracketLeft": "bracketleft",
    "BracketRight": "bracketright",
    "Enter": "Return",
    "ControlLeft": "Control_L",
    "ControlRight": "Control_R",
    "Semicolon": "semicolon",
    "Quote": "apostrophe",
    "Backquote": "grave",
    "ShiftLeft": "Shift_L",
    "ShiftRight": "Shift_R",
    "Backslash": "backslash",
    "Comma": "comma",
    "Period": "period",
    "Slash": "slash",
    "AltLeft": "Alt_L",
    "AltRight": "Alt_R",
    "MetaLeft": "Super_L",
    "MetaRight": "Super_R",
    "ContextMenu": "Menu",
    "Space": "space",
    "CapsLock": "Caps_Lock",
    "NumLock": "Num_Lock",
    "ScrollLock": "Scroll_Lock",
    "PrintScreen": "Print",
    "Pause": "Pause",
    "NumpadMultiply": "KP_Multiply",
    "NumpadSubtract": "KP_Subtract",
    "NumpadAdd": "KP_Add",
    "NumpadDecimal": "KP_Decimal",
    "NumpadDivide": "KP_Divide",
    "NumpadEnter": "KP_Enter",
    "NumpadEqual": "KP_Equal",
    "NumpadComma": "KP_Separator",
    "IntlBackslash": "less",
    "Home": "Home",
    "End": "End",
    "PageUp": "Prior",
    "PageDown": "Next",
    "Insert": "Insert",
    "Delete": "Delete",
    "ArrowUp": "Up",
    "ArrowDown": "Down",
    "ArrowLeft": "Left",
    "ArrowRight": "Right",
}

# Protocol buttons are X's: 1 left, 2 middle, 3 right; wheel notches are buttons 4-7.
WHEEL_UP, WHEEL_DOWN, WHEEL_LEFT, WHEEL_RIGHT = 4, 5, 6, 7


class InjectionUnavailable(RuntimeError):
    """Input cannot be injected here (no X display, no XTEST): control cannot be granted."""


class _XBackend:
    """XTEST on one python-xlib connection."""

    def __init__(self) -> None:
        try:
            import Xlib.display  # type: ignore[import-untyped]
            import Xlib.error  # type: ignore[import-untyped]
            import Xlib.X  # type: ignore[import-untyped]
            import Xlib.XK  # type: ignore[import-untyped]
            from Xlib.ext import xtest  # type: ignore[import-untyped]
        except ImportError as exc:
            raise InjectionUnavailable(f"python-xlib is missing: {exc}") from exc

        self._X = Xlib.X
        self._XK = Xlib.XK
        self._xtest = xtest
        try:
            self.display = Xlib.display.Display()
        except (Xlib.error.DisplayError, OSError) as exc:
            raise InjectionUnavailable(f"cannot open the X display: {exc}") from exc
        if not self.display.has_extension("XTEST"):
            self.display.close()
            raise InjectionUnavailable("the X server has no XTEST extension")
        screen = self.display.screen()
        self.screen_size = (screen.width_in_pixels, screen.height_in_pixels)
        self.evdev = self._uses_evdev_keycodes()
        self._keycodes: dict[str, int | None] = {}

    def _uses_evdev_keycodes(self) -> bool:
        XK = self._XK
        probes = {9: "Escape", 22: "BackSpace", 36: "Return", 50: "Shift_L", 65: "space"}
        return all(
            self.display.keycode_to_keysym(code, 0) == XK.string_to_keysym(name)
            for code, name in probes.items()
        )

    def keycode(self, code: str) -> int | None:
        if code not in self._keycodes:
            found: int | None = None
            if self.evdev and code in EVDEV:
                found = EVDEV[code] + 8
            elif code in US_KEYSYM:
                keysym = self._XK.string_to_keysym(US_KEYSYM[code])
                found = self.display.keysym_to_keycode(keysym) or None if keysym else None
            self._keycodes[code] = found
        return self._keycodes[code]

    def key(self, keycode: int, down: bool) -> None:
        X = self._X
        self._xtest.fake_input(self.display, X.KeyPress if down else X.KeyRelease, keycode)
        self.display.sync()

    def move(self, x: int, y: int) -> None:
        self._xtest.fake_input(self.display, self._X.MotionNotify, x=x, y=y)
        self.display.sync()

    def button(self, button: int, down: bool) -> None:
        X = self._X
        self._xtest.fake_input(self.display, X.ButtonPress if down else X.ButtonRelease, button)
        self.display.sync()

    def close(self) -> None:
        self.display.close()


class _PynputBackend:
    """pynput's controllers, where there is no X server (Windows, macOS)."""

    def __init__(self) -> None:
        try:
            from pynput import keyboard, mouse  # type: ignore[import-untyped]
        except ImportError as exc:  # pynput raises ImportError when it has no backend
            raise InjectionUnavailable(f"pynput cannot inject here: {exc}") from exc

        self._keyboard_mod = keyboard
        self._mouse_mod = mouse
        self.keyboard = keyboard.Controller()
        self.mouse = mouse.Controller()
        self.screen_size: tuple[int, int] | None = None
        self._buttons = {1: mouse.Button.left, 2: mouse.Button.middle, 3: mouse.Button.right}

    def keycode(self, code: str) -> Any:
        name = US_KEYSYM.get(code)
        if name is None:
            return None
        keyboard = self._keyboard_mod
        if len(name) == 1:
            return keyboard.KeyCode.from_char(name)
        special = {
            "Return": "enter",
            "BackSpace": "backspace",
            "Control_L": "ctrl_l",
            "Control_R": "ctrl_r",
            "Shift_L": "shift_l",
            "Shift_R": "shift_r",
            "Alt_L": "alt_l",
            "Alt_R": "alt_r",
            "Super_L": "cmd_l",
            "Super_R": "cmd_r",
            "Caps_Lock": "caps_lock",
            "Prior": "page_up",
            "Next": "page_down",
            "Escape": "esc",
            "Print": "print_screen",
            "Num_Lock": "num_lock",
            "Scroll_Lock": "scroll_lock",
        }
        punctuation = {
            "minus": "-",
            "equal": "=",
            "bracketleft": "[",
            "bracketright": "]",
            "semicolon": ";",
            "apostrophe": "'",
            "grave": "`",
            "backslash": "\\",
            "comma": ",",
            "period": ".",
            "slash": "/",
            "space": " ",
            "less": "<",
        }
        if name in punctuation:
            return keyboard.KeyCode.from_char(punctuation[name])
        attr = special.get(name, name.lower())
        return getattr(keyboard.Key, attr, None)

    def key(self, keycode: Any, down: bool) -> None:
        (self.keyboard.press if down else self.keyboard.release)(keycode)

    def move(self, x: int, y: int) -> None:
        self.mouse.position = (x, y)

    def button(self, button: int, down: bool) -> None:
        if button in self._buttons:
            (self.mouse.press if down else self.mouse.release)(self._buttons[button])
        elif down:
            steps = {WHEEL_UP: (0, 1), WHEEL_DOWN: (0, -1), WHEEL_LEFT: (-1, 0)}
            self.mouse.scroll(*steps.get(button, (1, 0)))

    def close(self) -> None:
        pass


def _backend() -> _XBackend | _PynputBackend:
    if sys.platform in ("win32", "darwin"):
        return _PynputBackend()
    return _XBackend()  # Linux and the BSDs: X11 (Xorg, or Xwayland for X clients)


class Injector:
    """Replays protocol input events on the monitor the viewer is shown.

    Coordinates are relative to that monitor (``set_monitor`` when the viewer picks
    another one) and clamped to it. Every key and button pressed is remembered so
    ``release_all`` can let go of them when the session ends: no Shift or Ctrl stays down.
    Raises :class:`InjectionUnavailable` when input cannot be injected on this display.
    """

    def __init__(
        self,
        monitor_left: int = 0,
        monitor_top: int = 0,
        monitor_width: int | None = None,
        monitor_height: int | None = None,
    ) -> None:
        self._backend = _backend()
        self._keys_down: dict[Any, None] = {}
        self._buttons_down: set[int] = set()
        self.set_monitor(monitor_left, monitor_top, monitor_width, monitor_height)

    def set_monitor(
        self, left: int, top: int, width: int | None = None, height: int | None = None
    ) -> None:
        if width is None or height is None:
            size = self._backend.screen_size or (1 << 15, 1 << 15)
            width = size[0] - left if width is None else width
            height = size[1] - top if height is None else height
        self.left, self.top = left, top
        self.width, self.height = max(1, width), max(1, height)

    def apply(self, event: Input) -> bool:
        """Inject one event; False when it means nothing here (an unknown key code)."""
        match event:
            case PointerMove(x=x, y=y):
                x = min(max(x, 0), self.width - 1)
                y = min(max(y, 0), self.height - 1)
                self._backend.move(self.left + x, self.top + y)
                return True
            case PointerButton(button=button, down=down):
                if button not in (1, 2, 3):
                    return False
                if down:
                    self._buttons_down.add(button)
                elif button not in self._buttons_down:
                    return True  # never pressed here: nothing to release
                else:
                    self._buttons_down.discard(button)
                self._backend.button(button, down)
                return True
            case Wheel(dx=dx, dy=dy):
                # Browser deltas: positive dy scrolls down, positive dx scrolls right.
                for notch, count in (
                    (WHEEL_DOWN if dy > 0 else WHEEL_UP, abs(dy)),
                    (WHEEL_RIGHT if dx > 0 else WHEEL_LEFT, abs(dx)),
                ):
                    for _ in range(min(count, 100)):
                        self._backend.button(notch, True)
                        self._backend.button(notch, False)
                return True
            case Key(code=code, down=down):
                keycode = self._backend.keycode(code)
                if keycode is None:
                    log.debug("ignoring unknown key code %r", code)
                    return False
                if down:
                    self._keys_down[keycode] = None
                elif keycode not in self._keys_down:
                    return True
                else:
                    del self._keys_down[keycode]
                self._backend.key(keycode, down)
                return True
        return False

    def release_all(self) -> None:
        """Let go of every key and button still down (the session is ending)."""
        for keycode in reversed(list(self._keys_down)):
            try:
                self._backend.key(keycode, False)
            except Exception:  # keep releasing the others
                log.exception("could not release key %r", keycode)
        self._keys_down.clear()
        for button in sorted(self._buttons_down):
            try:
                self._backend.button(button, False)
            except Exception:
                log.exception("could not release button %r", button)
        self._buttons_down.clear()

    def close(self) -> None:
        self.release_all()
        self._backend.close()
