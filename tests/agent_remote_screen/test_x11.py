"""The encoder on a real X server: what it grabs, the viewer reproduces."""

from __future__ import annotations

import numpy as np
import pytest

from agent.remote.screen import ScreenEncoder, pointer
from protocol.remote import Cursor, Encoding

from .canvas import Canvas
from .conftest import HEIGHT, WIDTH, Painter
from .images import bgra, photo, text


@pytest.fixture
def encoder(painter: Painter):
    enc = ScreenEncoder(1)
    yield enc
    enc.close()


def desktop(seed: int) -> np.ndarray:
    img = photo(HEIGHT, WIDTH, seed)
    img[64:384, 80:496] = text(320, 416, seed)
    return img


def settle(enc: ScreenEncoder, canvas: Canvas) -> None:
    for _ in range(20):
        frame = enc.next_frame()
        if frame is None:
            return
        canvas.apply(frame)
    raise AssertionError("the screen does not settle")


def test_grab_matches_what_was_drawn(painter: Painter, encoder: ScreenEncoder):
    rgb = desktop(1)
    painter.put(bgra(rgb))
    painter.sync()
    got = encoder.grab()
    assert got.shape == (HEIGHT, WIDTH, 4)
    assert (got[..., 2::-1] == rgb).all()
    screens = encoder.screens()
    assert screens.current == 1 and screens.monitors[1].width == WIDTH


def test_frames_reproduce_the_screen_and_stop_when_nothing_changes(
    painter: Painter, encoder: ScreenEncoder
):
    rgb = desktop(2)
    painter.put(bgra(rgb))
    painter.sync()
    canvas = Canvas(WIDTH, HEIGHT)
    frame = encoder.next_frame()
    assert frame is not None and (frame.width, frame.height) == (WIDTH, HEIGHT)
    canvas.apply(frame)
    settle(encoder, canvas)
    assert encoder.next_frame() is None
    diff = np.abs(canvas.rgb.astype(int) - rgb.astype(int))
    assert diff.mean() < 5
    assert diff[64:384, 80:496].max() == 0  # text: lossless

    # a change in the text and one in the photo
    rgb2 = rgb.copy()
    rgb2[100:116, 100:300] = text(16, 200, seed=9)
    rgb2[400:470, 500:620] = photo(70, 120, seed=9)
    painter.put(bgra(rgb2[100:116]), 0, 100)
    painter.put(bgra(rgb2[400:470]), 0, 400)
    painter.sync()
    frame = encoder.next_frame()
    assert frame is not None
    assert sum(r.w * r.h for r in frame.rects) < 2 * (16 * 200 + 80 * 128)
    canvas.apply(frame)
    diff = np.abs(canvas.rgb.astype(int) - rgb2.astype(int))
    assert diff[64:384, 80:496].max() == 0
    assert diff[400:470, 500:620].mean() < 6


def test_scrolling_is_a_copy_and_a_strip(painter: Painter, encoder: ScreenEncoder):
    rgb = desktop(3)
    painter.put(bgra(rgb))
    painter.sync()
    canvas = Canvas(WIDTH, HEIGHT)
    settle(encoder, canvas)
    # the 'terminal' scrolls by two lines: the server copies, the client draws the new ones
    painter.copy(80, 96, 416, 256, 80, 64)
    strip = text(32, 416, seed=33)
    painter.put(bgra(strip), 80, 320)
    painter.sync()
    frame = encoder.next_frame()
    assert frame is not None
    copies = [r for r in frame.rects if r.encoding is Encoding.COPY]
    assert len(copies) == 1 and frame.rects[0] is copies[0]
    c = copies[0]
    assert int.from_bytes(c.data[2:], "big") - c.y == 32 and c.w * c.h >= 400 * 200
    assert sum(r.w * r.h for r in frame.rects[1:]) <= 416 * 64
    canvas.apply(frame)
    expected = rgb.copy()
    expected[64:320, 80:496] = rgb[96:352, 80:496]
    expected[320:352, 80:496] = strip
    assert (canvas.rgb[64:384, 80:496] == expected[64:384, 80:496]).all()


def test_pointer_is_sent_apart_from_the_image(painter: Painter, encoder: ScreenEncoder):
    from Xlib import X
    from Xlib.ext import xtest

    d = painter.d
    xtest.fake_input(d, X.MotionNotify, x=123, y=45)
    d.sync()
    assert pointer() == (123, 45)
    cur = encoder.cursor()
    assert isinstance(cur, Cursor) and (cur.x, cur.y) == (123, 45)
    # the first one carries the shape (XFixes), as a PNG with its hot spot
    assert cur.png.startswith(b"\x89PNG") and 0 <= cur.hot_x < 64 and 0 <= cur.hot_y < 64
    assert encoder.cursor() is None  # unchanged
    xtest.fake_input(d, X.MotionNotify, x=200, y=300)
    d.sync()
    cur = encoder.cursor()
    assert cur is not None and (cur.x, cur.y) == (200, 300)


def test_no_grab_while_nothing_is_drawn(painter: Painter):
    enc = ScreenEncoder(1, damage_hints=True)
    try:
        painter.put(bgra(desktop(5)))
        painter.sync()
        canvas = Canvas(WIDTH, HEIGHT)
        settle(enc, canvas)
        grabs = 0
        grab = enc.grab

        def counting_grab():
            nonlocal grabs
            grabs += 1
            return grab()

        enc.grab = counting_grab  # type: ignore[method-assign]
        for _ in range(5):
            assert enc.next_frame() is None
        assert grabs == 0
        painter.put(bgra(text(16, 64, seed=8)), 300, 420)
        painter.sync()
        frame = enc.next_frame()
        assert grabs == 1 and frame is not None
        canvas.apply(frame)
        assert (canvas.rgb[420:436, 300:364] == text(16, 64, seed=8)).all()
    finally:
        enc.close()
