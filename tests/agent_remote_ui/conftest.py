"""The endpoint's remote-session windows on a real X server (Xvfb), used with xdotool.

The X server and its helpers come from tests/agent_gui/conftest.py: one Xvfb for this
folder, xdotool as the person at the keyboard. Missing Xvfb, xdotool or xterm skips these
tests, except in CI (``CI=true``) where it fails them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_gui import conftest as _gui
from tests.agent_gui.conftest import Screen, _require

screen = _gui.screen  # the Xvfb fixture, one for this folder too

ROOT = Path(__file__).resolve().parents[2]


def wait_gone(screen: Screen, title: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while screen.windows(title):
        if time.monotonic() > deadline:
            raise AssertionError(f"a window titled {title!r} is still shown")
        time.sleep(0.1)


def click(screen: Screen, box: list[int]) -> None:
    x, y, w, h = box
    screen.xdotool("mousemove", "--sync", str(x + w // 2), str(y + h // 2))
    screen.xdotool("click", "1")


def child_env(screen: Screen, **extra: str) -> dict[str, str]:
    env = dict(screen.env, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class Dialog:
    """``python -m agent.remote.consent`` run by hand: request in, layout on stderr."""

    def __init__(self, screen: Screen, request: dict[str, Any], **extra_env: str) -> None:
        self.screen = screen
        screen.xdotool("mousemove", "1279", "799")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.remote.consent"],
            env=child_env(screen, **extra_env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not flush it
        self.buttons: dict[str, list[int]] = {}

    def ready(self) -> dict[str, list[int]]:
        """Wait until the buttons accept clicks; their positions on screen."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith('{"ready"'):
                self.buttons = json.loads(line)["buttons"]
                return self.buttons
        raise AssertionError(f"the dialog never got ready: {self.answer()}")

    def answer(self, timeout: float = 15) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=timeout)
        lines = out.splitlines()
        assert len(lines) == 1, f"stdout: {out!r}, stderr: {err!r}"
        return json.loads(lines[0])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def dialogs() -> Iterator[list[Dialog]]:
    started: list[Dialog] = []
    yield started
    for dialog in started:
        dialog.kill()


@pytest.fixture(scope="session")
def xterm() -> str:
    _require("xterm", shutil.which("xterm") is not None)
    return "xterm"


def wm_state(screen: Screen, window: str) -> list[str]:
    """The window's _NET_WM_STATE atoms (``_NET_WM_STATE_ABOVE`` = always on top)."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(screen.display)
    try:
        w = d.create_resource_object("window", int(window))
        prop = w.get_full_property(d.intern_atom("_NET_WM_STATE"), 0)
        return [d.get_atom_name(atom) for atom in prop.value] if prop else []
    finally:
        d.close()
