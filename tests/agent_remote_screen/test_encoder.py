"""The encoder on synthetic screens (no X): damage, copies, encodings, refresh, budget."""

from __future__ import annotations

import numpy as np

from agent.remote.screen import (
    Move,
    ScreenEncoder,
    damage_tiles,
    find_moves,
    merge_rects,
    tiles_to_rects,
)
from protocol.remote import MAX_PLAINTEXT, Encoding, Frame, encode_frame

from .canvas import Canvas
from .images import bgra, photo, text

W, H = 640, 480


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def desktop(seed: int = 0) -> np.ndarray:
    """Photo wallpaper with a text 'window' (RGB)."""
    img = photo(H, W, seed)
    img[60:380, 80:500] = text(320, 420, seed)
    return img


def areas(frame: Frame) -> dict[Encoding, int]:
    out: dict[Encoding, int] = {}
    for r in frame.rects:
        out[r.encoding] = out.get(r.encoding, 0) + r.w * r.h
    return out


def check(canvas: Canvas, rgb: np.ndarray, exact: np.ndarray | None = None) -> None:
    diff = np.abs(canvas.rgb.astype(int) - rgb.astype(int))
    assert diff.mean() < 5.0, diff.mean()
    if exact is not None:
        assert diff[exact].max() == 0


def test_damage_tiles_marks_exactly_the_changed_tiles():
    a = np.zeros((50, 70), np.uint32)
    assert damage_tiles(a, a.copy()) is None
    b = a.copy()
    b[17, 3] = 1
    b[49, 69] = 2  # in the partial last tile row and column
    grid = damage_tiles(a, b)
    assert grid is not None and grid.shape == (4, 5)
    assert sorted(map(tuple, np.argwhere(grid))) == [(1, 0), (3, 4)]


def test_tiles_to_rects_covers_the_tiles_and_nothing_else():
    rng = np.random.default_rng(3)
    grid = rng.random((12, 20)) < 0.3
    rects = tiles_to_rects(grid, 16, 20 * 16 - 5, 12 * 16 - 7)
    cover = np.zeros((12 * 16 - 7, 20 * 16 - 5), int)
    for x, y, w, h in rects:
        cover[y : y + h, x : x + w] += 1
    assert cover.max() == 1
    expected = np.kron(grid, np.ones((16, 16), int))[: 12 * 16 - 7, : 20 * 16 - 5]
    assert (cover == expected).all()
    assert merge_rects([(0, 0, 16, 16), (16, 0, 16, 16)], 0) == [(0, 0, 32, 16)]


def test_first_frame_repaints_everything_and_an_unchanged_screen_sends_nothing():
    enc = ScreenEncoder(quality=70, clock=Clock())
    rgb = desktop()
    frame = enc.encode(bgra(rgb))
    assert frame is not None and (frame.width, frame.height) == (W, H) and frame.seq == 0
    canvas = Canvas(W, H)
    canvas.apply(frame)
    text_area = np.zeros((H, W), bool)
    text_area[64:376, 96:496] = True
    check(canvas, rgb, exact=text_area)  # text goes lossless
    kinds = areas(frame)
    assert kinds.get(Encoding.JPEG, 0) > 0 and kinds.get(Encoding.PNG, 0) > 0
    assert enc.encode(bgra(rgb)) is None


def test_a_typed_character_is_one_small_lossless_rect():
    enc = ScreenEncoder(clock=Clock())
    rgb = desktop()
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(rgb)))
    rgb2 = rgb.copy()
    rgb2[100:110, 200:206] = (20, 20, 20)
    frame = enc.encode(bgra(rgb2))
    assert frame is not None
    assert [(r.x, r.y, r.w, r.h, r.encoding) for r in frame.rects] == [
        (200, 100, 6, 10, Encoding.FILL)
    ]
    canvas.apply(frame)
    rgb3 = rgb2.copy()
    glyph = np.random.default_rng(5).random((12, 7)) < 0.4
    rgb3[100:112, 210:217][glyph] = (40, 90, 200)
    frame = enc.encode(bgra(rgb3))
    assert len(frame.rects) == 1 and frame.rects[0].encoding is Encoding.PNG
    assert len(encode_frame(frame)) < 400
    canvas.apply(frame)
    assert (canvas.rgb[90:130, 190:230] == rgb3[90:130, 190:230]).all()


def test_find_moves_finds_a_vertical_scroll():
    rgb = text(H, W, seed=1)
    prev = bgra(rgb).view(np.uint32).reshape(H, W)
    scrolled = rgb.copy()
    scrolled[40:400] = rgb[88:448]  # the region 40..448 scrolled up by 48 px
    scrolled[352:400] = text(48, W, seed=9)
    cur = bgra(scrolled).view(np.uint32).reshape(H, W)
    move = find_moves(prev, cur, (0, 0, W, H))
    assert move is not None
    assert (move.x, move.src_x) == (0, 0) and move.y - move.src_y == -48
    assert move.y <= 40 + 16 and move.y + move.h >= 352 - 16 and move.w >= W - 16
    dst = cur[move.y : move.y + move.h, move.x : move.x + move.w]
    src = prev[move.src_y : move.src_y + move.h, move.src_x : move.src_x + move.w]
    assert (dst == src).all()


def test_find_moves_finds_a_window_moved_over_a_photo():
    wall = photo(H, W, seed=2)
    win = text(200, 260, seed=3)
    before, after = wall.copy(), wall.copy()
    before[100:300, 100:360] = win
    after[117:317, 91:351] = win  # moved by (-9, +17)
    prev = bgra(before).view(np.uint32).reshape(H, W)
    cur = bgra(after).view(np.uint32).reshape(H, W)
    move = find_moves(prev, cur, (0, 0, W, H))
    assert move == Move(91, 117, 260, 200, 100, 100)


def test_scroll_is_sent_as_a_copy_and_the_new_strip():
    enc = ScreenEncoder(clock=Clock())
    rgb = desktop()
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(rgb)))
    rgb2 = rgb.copy()
    rgb2[60:348, 80:500] = rgb[92:380, 80:500]  # window content up by two lines
    rgb2[348:380, 80:500] = text(32, 420, seed=11)
    frame = enc.encode(bgra(rgb2))
    assert frame is not None
    assert frame.rects[0].encoding is Encoding.COPY
    first = frame.rects[0]
    assert first.w * first.h >= 400 * 250
    rest = [r for r in frame.rects[1:]]
    assert all(r.encoding is not Encoding.COPY for r in rest)
    assert sum(r.w * r.h for r in rest) <= 420 * 48  # the strip, not the window
    canvas.apply(frame)
    check(canvas, rgb2, exact=_box(60, 380, 96, 496))


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_window_move_is_a_copy_and_the_exposed_wallpaper():
    enc = ScreenEncoder(clock=Clock())
    wall = photo(H, W, seed=4)
    win = text(200, 260, seed=6)
    before, after = wall.copy(), wall.copy()
    before[100:300, 100:360] = win
    after[110:310, 120:380] = win
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(before)))
    frame = enc.encode(bgra(after))
    assert frame.rects[0].encoding is Encoding.COPY
    assert (frame.rects[0].w, frame.rects[0].h) == (260, 200)
    assert sum(r.w * r.h for r in frame.rects[1:]) < 260 * 200 // 2
    canvas.apply(frame)
    check(canvas, after, exact=_box(126, 294, 136, 364))  # edge tiles mixed photo: JPEG


def test_lowered_quality_is_refreshed_once_the_area_stops_changing():
    clock = Clock()
    enc = ScreenEncoder(quality=70, refresh_after=0.5, clock=clock)
    rgb = photo(H, W, seed=7)
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(rgb)))
    assert enc.encode(bgra(rgb)) is None  # sent at the refresh quality already
    enc.quality = 20
    assert enc.quality == 20
    rgb2 = photo(H, W, seed=8)
    coarse = enc.encode(bgra(rgb2))
    canvas.apply(coarse)
    err_coarse = np.abs(canvas.rgb.astype(int) - rgb2.astype(int)).mean()
    clock.now += 0.2
    assert enc.encode(bgra(rgb2)) is None  # still settling
    clock.now += 0.5
    sizes = []
    for _ in range(20):
        frame = enc.encode(bgra(rgb2))
        if frame is None:
            break
        assert all(r.encoding is Encoding.JPEG for r in frame.rects)
        sizes.append(len(encode_frame(frame)))
        canvas.apply(frame)
    assert sizes and frame is None
    err_fine = np.abs(canvas.rgb.astype(int) - rgb2.astype(int)).mean()
    direct = Canvas(W, H)
    direct.apply(ScreenEncoder(quality=70).encode(bgra(rgb2)))
    err_70 = np.abs(direct.rgb.astype(int) - rgb2.astype(int)).mean()
    assert err_fine < err_coarse and abs(err_fine - err_70) < 0.1


def test_text_inside_jpeg_is_refreshed_lossless():
    clock = Clock()
    enc = ScreenEncoder(refresh_after=0.5, clock=clock)
    island = np.full((16, 32, 3), 255, np.uint8)
    island[np.random.default_rng(4).random((16, 32)) < 0.3] = (20, 20, 20)
    rgb = photo(H, W, seed=1)
    rgb[208:224, 192:224] = island
    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(rgb)))
    rgb2 = photo(H, W, seed=2)  # everything around the unchanged island changes:
    rgb2[208:224, 192:224] = island  # one JPEG covers it (cheaper than cutting around)
    frame = enc.encode(bgra(rgb2))
    assert any(
        r.encoding is Encoding.JPEG
        and r.x <= 192
        and r.x + r.w >= 224
        and r.y <= 208 <= r.y + r.h - 16
        for r in frame.rects
    )
    canvas.apply(frame)
    clock.now += 1
    frames = []
    while (frame := enc.encode(bgra(rgb2))) is not None and len(frames) < 10:
        frames.append(frame)
        canvas.apply(frame)
    assert any(r.encoding is Encoding.PNG for f in frames for r in f.rects)
    assert (canvas.rgb[208:224, 192:224] == island).all()


def test_a_byte_budget_defers_what_does_not_fit():
    enc = ScreenEncoder(clock=Clock())
    rgb = photo(H, W, seed=5)
    canvas = Canvas(W, H)
    n = 0
    while (frame := enc.encode(bgra(rgb), budget=20_000)) is not None:
        assert len(frame.rects) == 1 or len(encode_frame(frame)) <= 20_000
        canvas.apply(frame)
        n += 1
        assert n < 100
    assert n >= 2
    check(canvas, rgb)


def test_frames_stay_under_the_message_limit():
    enc = ScreenEncoder(quality=90, clock=Clock())
    big = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), np.uint8)
    frame = enc.encode(bgra(big))
    assert len(encode_frame(frame)) <= MAX_PLAINTEXT
    assert enc.encode(bgra(big)) is not None  # the rest follows


def test_a_big_lossless_screen_is_cut_to_fit_the_message_limit():
    enc = ScreenEncoder(clock=Clock())
    big = np.tile(text(400, 1600, seed=2), (6, 2, 1))  # 2400 x 3200 of text
    canvas = Canvas(3200, 2400)
    frames = 0
    while (frame := enc.encode(bgra(big))) is not None:
        assert len(encode_frame(frame)) <= MAX_PLAINTEXT
        assert all(r.encoding in (Encoding.PNG, Encoding.FILL) for r in frame.rects)
        canvas.apply(frame)
        frames += 1
    assert frames >= 1
    assert (canvas.rgb == big).all()


def test_quality_is_clamped_and_lowered():
    enc = ScreenEncoder(quality=70, min_quality=20, max_quality=90)
    enc.quality = 5
    assert enc.quality == 20
    enc.quality = 70
    assert enc.lower_quality() == 60


def test_palette_index_is_exact():
    from agent.remote.screen import _palette_index

    rng = np.random.default_rng(1)
    for n in (1, 2, 16, 255, 256):
        values = np.unique(rng.integers(0, 1 << 24, n).astype(np.uint32))
        flat = values[rng.integers(0, len(values), 10_000)]
        assert (_palette_index(flat, values) == np.searchsorted(values, flat)).all()


def test_a_new_picture_is_not_mistaken_for_a_move():
    a = bgra(photo(H, W, seed=1)).view(np.uint32).reshape(H, W)
    b = bgra(photo(H, W, seed=2)).view(np.uint32).reshape(H, W)
    assert find_moves(a, b, (0, 0, W, H)) is None


def test_a_scroll_partly_under_another_window_is_still_copies():
    """A window on top hides the lower left of a scrolling terminal: the visible rest still
    moves by copies (two of them), only the new line is drawn."""
    enc = ScreenEncoder(clock=Clock())
    lines = text(640, 420, seed=21)
    cover = photo(200, 200, seed=22)

    def screen(top: int) -> np.ndarray:
        img = photo(H, W, seed=0)
        img[60:380, 80:500] = lines[top : top + 320]
        img[280:480, 0:200] = cover  # the window on top
        return img

    canvas = Canvas(W, H)
    canvas.apply(enc.encode(bgra(screen(0))))
    frame = enc.encode(bgra(screen(32)))
    copies = [r for r in frame.rects if r.encoding is Encoding.COPY]
    assert 1 <= len(copies) <= 3
    drawn = sum(r.w * r.h for r in frame.rects if r.encoding is not Encoding.COPY)
    assert drawn <= 420 * 32 + 16 * 420, drawn  # the new line (and a tile row of slack)
    canvas.apply(frame)
    # tiles 192.. and 496.. hold wallpaper too: sent as JPEG
    assert (canvas.rgb[60:380, 208:496] == screen(32)[60:380, 208:496]).all()
