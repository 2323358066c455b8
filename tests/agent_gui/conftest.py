"""A real X server (Xvfb) for the agent's windows, and a person at its keyboard (xdotool).

Xvfb picks a free display itself (``-displayfd``) and keeps its framebuffer in an XWD file
(``-fbdir``), which ``Screen.screenshot`` turns into a PNG with the standard library only.
Without Xvfb or xdotool the tests are skipped, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI

TITLE = "Backdesk — Get help"
# Screenshots go to the test's tmp dir, and also here when set (to look at them).
SCREENSHOT_DIR = os.environ.get("BACKDESK_SCREENSHOT_DIR")


def _require(what: str, ok: bool) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


@dataclass
class Screen:
    display: str
    fbdir: Path

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, DISPLAY=self.display)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def xdotool(self, *args: str, timeout: float = 20) -> str:
        result = subprocess.run(
            ["xdotool", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"xdotool {args} failed: {result.stderr}")
        return result.stdout

    def find_window(self, title: str = TITLE, timeout: float = 20) -> str:
        """The id of the visible window with exactly this title, once it is shown.

        Tk stores a title that is not Latin-1 (the em dash) as COMPOUND_TEXT in WM_NAME,
        which ``xdotool search --name`` matches byte for byte: search with the ASCII words
        around it, then compare the decoded name exactly.
        """
        words = [re.escape(w) for w in title.split() if w.isascii()]
        pattern = "^" + ".+".join(words) + "$"
        out = self.xdotool("search", "--sync", "--onlyvisible", "--name", pattern, timeout=timeout)
        for window in out.split():
            if self.xdotool("getwindowname", window).rstrip("\n") == title:
                return window
        raise AssertionError(f"no window titled {title!r}: {out.split()}")

    def windows(self, title: str) -> list[str]:
        """The visible windows whose decoded name is exactly ``title`` (maybe none). A
        window that closes while we look is simply not in the list."""
        words = [re.escape(w) for w in title.split() if w.isascii()]
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "^" + ".+".join(words) + "$"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.split()
        named = []
        for window in found:
            name = subprocess.run(
                ["xdotool", "getwindowname", window],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if name.stdout.rstrip("\n") == title:
                named.append(window)
        return named

    def focus(self, window: str) -> None:
        self.xdotool("windowfocus", "--sync", window)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "20", text)

    def key(self, *keys: str) -> None:
        self.xdotool("key", "--delay", "40", *keys)

    def geometry(self, window: str) -> dict[str, int]:
        out = self.xdotool("getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in out.split())
        return {k: int(v) for k, v in values.items() if k in ("X", "Y", "WIDTH", "HEIGHT")}

    def pixels(self) -> tuple[int, int, bytes]:
        """The screen as width, height and RGB bytes, read from Xvfb's XWD framebuffer."""
        raw = (self.fbdir / "Xvfb_screen0").read_bytes()
        fields = struct.unpack(">25I", raw[:100])
        header_size, width, height = fields[0], fields[4], fields[5]
        byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
        ncolors = fields[19]
        assert bits_per_pixel == 32, f"unexpected XWD depth {bits_per_pixel}"
        start = header_size + ncolors * 12
        rows = []
        for y in range(height):
            line = raw[start + y * bytes_per_line : start + y * bytes_per_line + width * 4]
            if byte_order == 0:  # LSBFirst: B G R X
                b, g, r = line[0::4], line[1::4], line[2::4]
            else:  # X R G B
                r, g, b = line[1::4], line[2::4], line[3::4]
            rgb = bytearray(width * 3)
            rgb[0::3], rgb[1::3], rgb[2::3] = r, g, b
            rows.append(bytes(rgb))
        return width, height, b"".join(rows)

    def screenshot(self, path: Path, window: str | None = None) -> Path:
        """A PNG of the screen, or of one window's area."""
        width, height, rgb = self.pixels()
        x0, y0, w, h = 0, 0, width, height
        if window is not None:
            g = self.geometry(window)
            x0, y0 = max(0, g["X"]), max(0, g["Y"])
            w, h = min(g["WIDTH"], width - x0), min(g["HEIGHT"], height - y0)
        scanlines = b"".join(
            b"\x00" + rgb[(y * width + x0) * 3 : (y * width + x0 + w) * 3]
            for y in range(y0, y0 + h)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        png = (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(scanlines, 6))
            + chunk(b"IEND", b"")
        )
        path.write_bytes(png)
        if SCREENSHOT_DIR:
            Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
            (Path(SCREENSHOT_DIR) / path.name).write_bytes(png)
        return path

    def colours_in(self, window: str) -> int:
        """How many distinct colours a window shows: a blank or unpainted one has one or two."""
        width, _height, rgb = self.pixels()
        g = self.geometry(window)
        seen: set[bytes] = set()
        for y in range(g["Y"], g["Y"] + g["HEIGHT"], 3):
            row = rgb[(y * width + g["X"]) * 3 : (y * width + g["X"] + g["WIDTH"]) * 3]
            seen.update(row[i : i + 3] for i in range(0, len(row), 9))
        return len(seen)


@contextlib.contextmanager
def xvfb(size: str, fbdir: Path | None = None) -> Iterator[str]:
    """A private Xvfb (``WIDTHxHEIGHT``, no TCP, on a display number it picks itself,
    its framebuffer in ``fbdir`` when given); yields the display name, e.g. ``:3``."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{size}x24",
            "-nolisten",
            "tcp",
            "-noreset",
            *(["-fbdir", str(fbdir)] if fbdir else []),
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            _, err = process.communicate(timeout=5)
            raise AssertionError(f"Xvfb did not start: {err.decode(errors='replace')}")
        socket_path = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"Xvfb socket {socket_path} did not appear")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def screen() -> Iterator[Screen]:
    """One Xvfb for the folder, 1280x800, no TCP, on a display number it picks itself."""
    _require("Xvfb", shutil.which("Xvfb") is not None)
    _require("xdotool", shutil.which("xdotool") is not None)
    try:
        import tkinter  # noqa: F401  (the agent's window needs Tk in this Python)
    except ImportError:
        _require("tkinter", False)
    fbdir = Path(tempfile.mkdtemp(prefix="backdesk-xvfb-"))
    try:
        with xvfb("1280x800", fbdir) as display:
            yield Screen(display, fbdir)
    finally:
        shutil.rmtree(fbdir, ignore_errors=True)
