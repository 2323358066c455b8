"""A small real X server (Xvfb, 640x480) for the screen pipeline, drawn on with python-xlib.

Without Xvfb or python-xlib the X tests are skipped, except in CI (``CI=true``) where
they fail. The pure tests in this folder need neither.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.agent_gui.conftest import _require, xvfb

WIDTH, HEIGHT = 640, 480


class Painter:
    """One override-redirect window over the whole screen; draws BGRA arrays into it."""

    def __init__(self, display: Any) -> None:
        from Xlib import X

        self.d = display
        screen = self.d.screen()
        self.window = screen.root.create_window(
            0,
            0,
            WIDTH,
            HEIGHT,
            0,
            screen.root_depth,
            X.InputOutput,
            X.CopyFromParent,
            override_redirect=True,
            background_pixel=screen.black_pixel,
        )
        self.gc = self.window.create_gc()
        self.window.map()
        self.d.sync()
        time.sleep(0.1)

    def put(self, bgra: np.ndarray, x: int = 0, y: int = 0) -> None:
        """Draw a (h, w, 4) BGRA uint8 array at (x, y), in bands under the request limit."""
        from Xlib import X

        h, w = bgra.shape[:2]
        rows = max(1, 60000 // (w * 4))
        for top in range(0, h, rows):
            band = np.ascontiguousarray(bgra[top : top + rows])
            self.window.put_image(
                self.gc, x, y + top, w, band.shape[0], X.ZPixmap, 24, 0, band.tobytes()
            )
        self.d.sync()

    def copy(self, src_x: int, src_y: int, w: int, h: int, x: int, y: int) -> None:
        self.window.copy_area(self.gc, self.window, src_x, src_y, w, h, x, y)
        self.d.sync()

    def sync(self) -> None:
        self.d.sync()
        # a round trip: the server has drawn everything asked before it answers
        self.d.screen().root.get_geometry()


@pytest.fixture(scope="session")
def xserver() -> Iterator[str]:
    _require("Xvfb", shutil.which("Xvfb") is not None)
    try:
        import mss  # noqa: F401
        from Xlib import display
    except ImportError:
        _require("mss and python-xlib", False)
    old = os.environ.get("DISPLAY")
    try:
        with xvfb(f"{WIDTH}x{HEIGHT}") as display:
            os.environ["DISPLAY"] = display
            yield display
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture(scope="session")
def painter(xserver: str) -> Iterator[Painter]:
    from Xlib import display

    d = display.Display(xserver)
    try:
        yield Painter(d)
    finally:
        d.close()
