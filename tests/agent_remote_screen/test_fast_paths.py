"""The full-screen-change fast paths: direct palette PNGs, the reused damage mask, solids."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from agent.remote.screen import ScreenEncoder, _palette_index, _solid, encode_png, find_moves
from protocol.remote import Encoding

from .canvas import Canvas
from .images import bgra, photo, text

W, H = 640, 480


def _decode(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"))


def test_palette_png_is_exact_for_every_bit_depth_and_odd_widths():
    rng = np.random.default_rng(5)
    for colours in (1, 2, 3, 4, 5, 16, 17, 200, 256):
        values = rng.integers(0, 256, (colours, 3)).astype(np.uint8)
        for w, h in ((1, 1), (3, 7), (7, 5), (13, 2), (50, 10), (333, 41)):
            rgb = values[rng.integers(0, colours, (h, w))]
            for fast in (False, True):
                data = encode_png(bgra(rgb), fast=fast)
                assert (_decode(data) == rgb).all(), (colours, w, h, fast)


def test_png_of_a_view_with_many_colours_is_exact():
    rgb = photo(64, 80, seed=3)
    big = bgra(photo(100, 200, seed=3))
    big[10:74, 30:110] = bgra(rgb)
    assert (_decode(encode_png(big[10:74, 30:110])) == rgb).all()


def test_palette_index_small_and_large_areas_agree_with_a_binary_search():
    rng = np.random.default_rng(2)
    values = np.unique(rng.integers(0, 1 << 24, 100).astype(np.uint32))
    for n in (1, 100, 2047, 2048, 50_000):
        flat = values[rng.integers(0, len(values), n)]
        assert (_palette_index(flat, values) == np.searchsorted(values, flat)).all()


def test_solid_looks_at_every_pixel():
    img = np.full((40, 40), 7, np.uint32)
    assert _solid(img, (0, 0, 40, 40)) == 7
    img[3, 5] = 8  # neither a corner nor the centre
    assert _solid(img, (0, 0, 40, 40)) is None
    assert _solid(img, (10, 10, 30, 30)) == 7


def _screen(seed: int) -> np.ndarray:
    img = photo(H, W, seed)
    img[60:380, 80:500] = text(320, 420, seed + 50)
    return img


def test_a_full_change_has_no_copies_and_the_canvas_shows_the_new_screen():
    enc = ScreenEncoder()
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(_screen(0))))
    for seed in (1, 2, 3):
        rgb = _screen(seed)
        frame = enc.encode(bgra(rgb))
        assert frame is not None
        assert not [r for r in frame.rects if r.encoding is Encoding.COPY]
        canvas.apply(frame)
        # the text window's whole tiles are lossless, the photo around it close
        assert (canvas.rgb[64:368, 80:496] == rgb[64:368, 80:496]).all()
        assert np.abs(canvas.rgb.astype(int) - rgb.astype(int)).mean() < 5.0


def test_find_moves_with_the_callers_mask_agrees_without_it():
    page = text(H + 64, W, seed=9)
    a = bgra(page[:H]).view(np.uint32).reshape(H, W)
    b = bgra(page[40 : H + 40]).view(np.uint32).reshape(H, W)
    without = find_moves(a, b, (0, 0, W, H))
    assert without is not None and without.src_y - without.y == 40
    assert find_moves(a, b, (0, 0, W, H), neq=a != b) == without


def _byte_search(img, y, sx0, sx1, rows, run, x):
    """The reference: a byte search of the area's copy (what _Haystack used to do)."""
    h = img.shape[0]
    y0 = max(0, y - rows)
    cols = sx1 - sx0
    data = np.ascontiguousarray(img[y0 : min(h, y + rows + 1), sx0:sx1]).tobytes()
    needle, row_bytes, hits = run.tobytes(), cols * 4, []
    pos = data.find(needle)
    while pos >= 0 and len(hits) < 8:
        if pos % 4 == 0 and pos % row_bytes + len(needle) <= row_bytes:
            py, px = divmod(pos // 4, cols)
            dx, dy = x - (sx0 + px), y - (y0 + py)
            if (dx, dy) != (0, 0):
                hits.append((dx, dy))
        pos = data.find(needle, pos + 1)
    return min(hits, key=lambda s: abs(s[1]) + abs(s[0])) if hits else None


def test_haystack_search_finds_what_a_byte_search_finds():
    from agent.remote.screen import _Haystack

    rng = np.random.default_rng(11)
    page = text(H + 200, W, seed=4)
    pic = photo(H, W, seed=4)
    cases = 0
    for img_rgb in (page[:H], page[37 : H + 37], pic, np.full((H, W, 3), 255, np.uint8)):
        img = bgra(img_rgb).view(np.uint32).reshape(H, W)
        src = bgra(page[60 : H + 60]).view(np.uint32).reshape(H, W)
        for _ in range(60):
            y = int(rng.integers(0, H))
            n = int(rng.choice([8, 48]))
            x = int(rng.integers(0, W - n))
            run = (src if rng.random() < 0.7 else img)[y, x : x + n].copy()
            sx0 = int(rng.integers(0, 64))
            sx1 = W - int(rng.integers(0, 64))
            for rows in (0, 5, 64, 384):
                got = _Haystack(img, y, sx0, sx1, rows).search(run, x, y)
                assert got == _byte_search(img, y, sx0, sx1, rows, run, x), (y, x, n, rows)
                cases += got is not None
    assert cases > 50  # not only misses
