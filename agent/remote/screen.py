"""The screen half of a remote session: capture, damage, motion, encoding (docs/remote-sessions.md).

:class:`ScreenEncoder` grabs one mss monitor and turns each change into a
:class:`protocol.remote.Frame` whose rects, applied in order on the viewer's canvas,
reproduce the screen:

0. *Hints*: XDamage on the root window (:class:`DamageWatch`) says whether anything was
   drawn since the last grab; an idle screen costs no grab at all (one grab a second
   anyway, in case a hint was missed).
1. *Damage*: the new grab is compared with a model of the viewer's canvas (uint32 views,
   whole-frame ``!=`` then a reduction to 16-px tiles on the changed rows only).
2. *Motion*: when the damage is large, a few distinctive pixel runs of the new frame are
   looked up in the canvas (``bytes.find`` over a bounded band). A consistent shift that
   covers a big rectangle becomes one COPY rect (scrolling, a window being dragged); the
   canvas model is moved the same way and the damage computed again, so only the newly
   exposed strips are left.
3. *Encoding*: dirty tiles are classified from a sample of their pixels: few colours (text,
   UI) go lossless as palette PNG, busy ones (photos, video) as JPEG at :attr:`quality`.
   Tiles of each class are merged into tight rects; a solid rect is a FILL.
4. *Refresh*: a tile sent as JPEG that has not changed for ``refresh_after`` seconds is
   sent again, lossless if it has few colours, else at ``refresh_quality``, a bounded
   area per frame, so what stays on screen ends up crisp.

The pointer is not part of the image (mss grabs without it): :meth:`ScreenEncoder.cursor`
gives a :class:`protocol.remote.Cursor` when it moved, with the shape (XFixes) when the
shape changed and the X server offers it.

The pure functions (:func:`damage_tiles`, :func:`tiles_to_rects`, :func:`find_moves`,
:meth:`ScreenEncoder.encode` on arrays) work without a display, for tests.

One encoder is used by one thread at a time (its X connections are not shared); rects
that do not fit a frame's byte budget stay dirty and go in the next frame, so a frame
never exceeds the sealed-message limit. Figures against x11vnc: ``bench/screen_candidate``.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image

from protocol.remote import (
    MAX_PLAINTEXT,
    Cursor,
    Encoding,
    Frame,
    Monitor,
    Rect,
    Screens,
    copy_data,
    fill_data,
)

TILE = 16
# Below this many changed tiles, motion search is not worth its cost.
MOTION_MIN_TILES = 24
# A copy must cover at least this many pixels to be sent, and repaint at least this
# many that changed (a few glyphs: 17 bytes of COPY beat a PNG of them).
MOTION_MIN_AREA = 4096
MOTION_MIN_GAIN = 256
# Tiles whose sampled pixels show at most this many colours are "text": lossless.
LOW_COLOURS = 28
# Two rects of one class are merged when the merged box wastes at most this many pixels
# (a JPEG's headers cost about as much as 3000 pixels of photo).
MERGE_WASTE_JPEG = 3072
MERGE_WASTE_PNG = 512
# A JPEG rect is cut into bands of at most this many rows (bounded encode latency/size).
JPEG_BAND = 256
# A PNG rect is cut into bands of at most this many rows (a frame stays under the limit).
PNG_BAND = 512
_RECT_OVERHEAD = 13
_FRAME_OVERHEAD = 12
LOSSLESS = 100
# The pointer's shape is looked at no more often than this (seconds).
SHAPE_INTERVAL = 0.25
REFINED = 99  # busy tile sent again at the refresh quality: nothing more to do

Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True, slots=True)
class Move:
    """Copy the w x h area at (src_x, src_y) to (x, y)."""

    x: int
    y: int
    w: int
    h: int
    src_x: int
    src_y: int


# --- damage -----------------------------------------------------------------------------


def damage_tiles(a: np.ndarray, b: np.ndarray, tile: int = TILE) -> np.ndarray | None:
    """Tiles (bool grid, ceil(h/tile) x ceil(w/tile)) where two uint32 images differ.

    None when they are identical. Only the rows that changed are reduced to tiles.
    """
    return _damage(a, b, tile)[0]


def _damage(a: np.ndarray, b: np.ndarray, tile: int) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`damage_tiles` and the pixel mask ``a != b`` it came from (reused by callers)."""
    neq = a != b
    rows = neq.any(axis=1)
    if not rows.any():
        return None, neq
    return _tiles_from_mask(neq, rows, tile), neq


def _tiles_from_mask(neq: np.ndarray, rows: np.ndarray, tile: int) -> np.ndarray:
    h, w = neq.shape
    gh, gw = -(-h // tile), -(-w // tile)
    grid = np.zeros((gh, gw), bool)
    changed = np.flatnonzero(rows)
    t0, t1 = changed[0] // tile, changed[-1] // tile + 1
    y0, y1 = t0 * tile, min(h, t1 * tile)
    band = neq[y0:y1]
    full = (y1 - y0) // tile
    cols = np.zeros((t1 - t0, gw * tile), bool)
    if full:
        cols[:full, :w] = band[: full * tile].reshape(full, tile, w).any(axis=1)
    if full < t1 - t0:
        cols[full, :w] = band[full * tile :].any(axis=0)
    grid[t0:t1] = cols.reshape(t1 - t0, gw, tile).any(axis=2)
    return grid


def tiles_to_rects(grid: np.ndarray, tile: int, width: int, height: int) -> list[Box]:
    """Cover the true tiles with few rects: runs per tile row, stacked when they align."""
    rects: list[Box] = []
    open_: dict[tuple[int, int], list[int]] = {}  # (c0, c1) -> [row0, row1]
    gh = grid.shape[0]
    for r in range(gh + 1):
        runs: set[tuple[int, int]] = set()
        if r < gh:
            row = grid[r]
            if row.any():
                padded = np.concatenate(([False], row, [False]))
                edges = np.flatnonzero(padded[1:] != padded[:-1])
                runs = {(int(edges[i]), int(edges[i + 1])) for i in range(0, len(edges), 2)}
        for key in list(open_):
            if key in runs:
                open_[key][1] = r + 1
                runs.discard(key)
            else:
                r0, r1 = open_.pop(key)
                rects.append(_clip((key[0], r0, key[1], r1), tile, width, height))
        for key in runs:
            open_[key] = [r, r + 1]
    return rects


def _clip(cells: tuple[int, int, int, int], tile: int, width: int, height: int) -> Box:
    c0, r0, c1, r1 = cells
    x0, y0 = c0 * tile, r0 * tile
    return x0, y0, min(width, c1 * tile) - x0, min(height, r1 * tile) - y0


def merge_rects(rects: list[Box], waste: int) -> list[Box]:
    """Greedily merge rects whose bounding box covers at most ``waste`` extra pixels."""
    rects = list(rects)
    if len(rects) > 48:  # quadratic below: many rects, merge neighbours in reading order
        rects.sort(key=lambda r: (r[1], r[0]))
        out = [rects[0]]
        for bx, by, bw, bh in rects[1:]:
            ax, ay, aw, ah = out[-1]
            x0, y0 = min(ax, bx), min(ay, by)
            x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
            if (x1 - x0) * (y1 - y0) - aw * ah - bw * bh <= waste:
                out[-1] = (x0, y0, x1 - x0, y1 - y0)
            else:
                out.append((bx, by, bw, bh))
        return out
    merged = True
    while merged and len(rects) > 1:
        merged = False
        for i in range(len(rects)):
            ax, ay, aw, ah = rects[i]
            for j in range(i + 1, len(rects)):
                bx, by, bw, bh = rects[j]
                x0, y0 = min(ax, bx), min(ay, by)
                x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
                extra = (x1 - x0) * (y1 - y0) - aw * ah - bw * bh
                if extra <= waste:
                    rects[i] = (x0, y0, x1 - x0, y1 - y0)
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return rects


def tighten(neq: np.ndarray, box: Box) -> Box | None:
    """The smallest box inside ``box`` holding every True of ``neq`` in it."""
    x, y, w, h = box
    sub = neq[y : y + h, x : x + w]
    rows = np.flatnonzero(sub.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(sub[rows[0] : rows[-1] + 1].any(axis=0))
    return (
        x + int(cols[0]),
        y + int(rows[0]),
        int(cols[-1] - cols[0] + 1),
        int(rows[-1] - rows[0] + 1),
    )


def low_colour_tiles(img: np.ndarray, cells: np.ndarray, tile: int = TILE) -> np.ndarray:
    """For each (row, col) tile in ``cells``: True when a sample of it has few colours."""
    if not len(cells):
        return np.zeros(0, bool)
    h, w = img.shape
    step = max(1, tile // 8)
    offs = np.arange(0, tile, step)
    ys = np.minimum(cells[:, 0, None] * tile + offs[None, :], h - 1)  # (n, k)
    xs = np.minimum(cells[:, 1, None] * tile + offs[None, :], w - 1)
    samples = img[ys[:, :, None], xs[:, None, :]].reshape(len(cells), -1)
    samples.sort(axis=1)
    distinct = 1 + np.count_nonzero(samples[:, 1:] != samples[:, :-1], axis=1)
    return distinct <= LOW_COLOURS


# --- motion -----------------------------------------------------------------------------


def find_moves(
    prev: np.ndarray,
    cur: np.ndarray,
    box: Box,
    *,
    max_shift: int = 384,
    near: int = 64,
    anchors: int = 6,
    snippet: int = 48,
    wide: bool = True,
    neq: np.ndarray | None = None,
) -> Move | None:
    """One rectangle of ``cur`` inside ``box`` that is ``prev`` shifted, or None.

    ``prev`` and ``cur`` are uint32 (h, w) images. Distinctive runs of ``snippet`` pixels
    from changed rows of ``cur`` are searched in ``prev``: first within ``near`` rows and
    columns, then (``wide``) for a few of them within ``max_shift`` rows. The shift most
    runs agree on is checked and grown into the largest rectangle around its anchor where
    every pixel matches. ``neq``: ``prev != cur`` when the caller has it already.
    """
    _, w = cur.shape
    bx, by, bw, bh = box
    if bw < snippet or bh < 8:
        return None
    if neq is not None:
        sub_neq = neq[by : by + bh, bx : bx + bw]
    else:
        sub_neq = prev[by : by + bh, bx : bx + bw] != cur[by : by + bh, bx : bx + bw]
    changed_rows = np.flatnonzero(sub_neq.any(axis=1))
    if len(changed_rows) < 4:
        return None
    picks = changed_rows[np.linspace(0, len(changed_rows) - 1, anchors + 2).astype(int)[1:-1]]
    runs: list[tuple[int, int, np.ndarray]] = []  # (x, y, pixels) of distinctive runs
    for ry in picks:
        y = by + int(ry)
        line = cur[y, bx : bx + bw]
        cols = np.flatnonzero(sub_neq[ry])
        row_runs = []
        for start in (int(cols[0]), int((cols[0] + cols[-1]) // 2), int(cols[-1]) - snippet + 1):
            start = min(max(start, 0), bw - snippet)
            run = line[start : start + snippet]
            if np.count_nonzero(run[1:] != run[:-1]) >= 4:  # a flat run matches anywhere
                row_runs.append((bx + start, y, run))
        runs.extend(row_runs)
    votes: dict[tuple[int, int], tuple[int, int, int]] = {}

    def vote(shift: tuple[int, int] | None, x: int, y: int) -> bool:
        if shift is None:
            return False
        n, ax, ay = votes.get(shift, (0, x, y))
        votes[shift] = (n + 1, ax, ay)
        return n + 1 >= 2

    agreed = False
    for i, (x, y, run) in enumerate(runs):
        hay = _Haystack(prev, y, max(0, bx - near), min(w, bx + bw + near), near)
        if vote(hay.search(run, x, y), x, y):
            agreed = True
            break
        if i >= 3 and not votes:  # nothing nearby: a new picture, not a move
            break
    if not agreed and wide and not votes:
        # farther, straight up or down only (scrolling by a page): the run's own columns
        for x, y, run in runs[1::2][:3]:
            hay = _Haystack(prev, y, x, x + len(run), max_shift)
            if vote(hay.search(run, x, y), x, y):
                break
    best: Move | None = None
    for (dx, dy), (_n, ax, ay) in sorted(votes.items(), key=lambda kv: -kv[1][0])[:2]:
        move = _grow(prev, cur, box, dx, dy, ax, ay, snippet)
        if move is not None and (best is None or move.w * move.h > best.w * best.h):
            best = move
    return best


class _Haystack:
    """Rows y - rows .. y + rows, columns sx0 .. sx1 of an image, to search runs in.

    The search is vectorised: candidates where the run's first change of colour matches,
    narrowed pixel by pixel (the same hits, in the same order, as a byte search of the
    area, without copying it).
    """

    def __init__(self, img: np.ndarray, y: int, sx0: int, sx1: int, rows: int) -> None:
        h = img.shape[0]
        self.y0 = max(0, y - rows)
        self.sx0, self.cols = sx0, sx1 - sx0
        self.view = img[self.y0 : min(h, y + rows + 1), sx0:sx1]

    def search(self, run: np.ndarray, x: int, y: int) -> tuple[int, int] | None:
        """Shift (dx, dy) with img[y - dy, x - dx : + len(run)] == run, the smallest found."""
        n, view = len(run), self.view
        span = self.cols - n + 1  # start columns a whole run fits after
        if span <= 0 or not view.size:
            return None
        changes = np.flatnonzero(run[1:] != run[:-1])
        k = int(changes[0]) + 1 if len(changes) else 0
        mask = view[:, k : k + span] == run[k]
        if k:
            mask &= view[:, k - 1 : k - 1 + span] == run[k - 1]
        rows, starts = np.nonzero(mask)  # in reading order
        if len(rows) > 2048:  # narrow a pixel at a time while there are many
            for j in range(n):
                ok = view[rows, starts + j] == run[j]
                rows, starts = rows[ok], starts[ok]
                if len(rows) <= 2048:
                    break
        if len(rows):
            full = (view[rows[:, None], starts[:, None] + np.arange(n)] == run).all(axis=1)
            rows, starts = rows[full], starts[full]
        hits: list[tuple[int, int]] = []
        for py, px in zip(rows.tolist(), starts.tolist(), strict=True):
            dx, dy = x - (self.sx0 + px), y - (self.y0 + py)
            if (dx, dy) != (0, 0):
                hits.append((dx, dy))
                if len(hits) == 8:
                    break
        if not hits:
            return None
        return min(hits, key=lambda s: abs(s[1]) + abs(s[0]))


def _grow(
    prev: np.ndarray, cur: np.ndarray, box: Box, dx: int, dy: int, ax: int, ay: int, run: int
) -> Move | None:
    h, w = cur.shape
    bx, by, bw, bh = box
    # destination area where the source is on screen too
    x0, y0 = max(bx, dx), max(by, dy)
    x1, y1 = min(bx + bw, w + dx), min(by + bh, h + dy)
    if x1 - x0 < run or y1 - y0 < 4 or not (x0 <= ax < x1 and y0 <= ay < y1):
        return None
    eq = cur[y0:y1, x0:x1] == prev[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    ry, rx = ay - y0, ax - x0

    def span(ok: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
        """The run of True in ``ok`` that holds lo .. hi - 1 (empty when one of them fails)."""
        if not ok[lo:hi].all():
            return lo, lo
        bad = np.flatnonzero(~ok)
        left, right = bad[bad < lo], bad[bad >= hi]
        return (int(left[-1]) + 1 if len(left) else 0), (int(right[0]) if len(right) else len(ok))

    # start from the anchor run and widen rows and columns in turn (both orders: a tall
    # narrow or a wide flat first guess can each be wrong); every pixel matches
    best: tuple[int, int, int, int, int] | None = None
    for rows_first in (True, False):
        c0, c1 = rx, min(rx + run, eq.shape[1])
        r0, r1 = ry, ry + 1
        for i in range(4):
            if (i % 2 == 0) == rows_first:
                r0, r1 = span(eq[:, c0:c1].all(axis=1), r0, r1)
            else:
                c0, c1 = span(eq[r0:r1].all(axis=0), c0, c1)
            if r1 <= r0 or c1 <= c0:
                break
        if (c1 - c0) * (r1 - r0) < MOTION_MIN_AREA:
            continue
        # worth it only for the pixels it repaints that changed
        gained = np.count_nonzero(
            cur[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1] != prev[y0 + r0 : y0 + r1, x0 + c0 : x0 + c1]
        )
        if best is None or gained > best[0]:
            best = (gained, r0, r1, c0, c1)
    if best is None or best[0] < MOTION_MIN_GAIN:
        return None
    _, r0, r1, c0, c1 = best
    return Move(x0 + c0, y0 + r0, c1 - c0, r1 - r0, x0 + c0 - dx, y0 + r0 - dy)


# --- encoding ---------------------------------------------------------------------------


def encode_png(bgra: np.ndarray, fast: bool = False) -> bytes:
    """Lossless PNG of a (h, w, 4) BGRA area: palette when it has at most 256 colours.

    ``fast``: the quickest zlib level (a big change, when frame rate matters more). The
    palette case is written directly (unfiltered rows, as PIL does for palettes): PIL's
    per-image overhead was most of the cost of the many small rects of a full change.
    """
    h, w = bgra.shape[:2]
    flat32 = np.ascontiguousarray(bgra).view(np.uint32).reshape(-1)
    rgb = Image.frombuffer("RGB", (w, h), flat32, "raw", "BGRX", 0, 1)
    colours = rgb.getcolors(256)
    small = h * w < 65536
    if colours is None:
        buf = io.BytesIO()
        rgb.save(buf, "PNG", compress_level=1 if fast or not small else 6)
        return buf.getvalue()
    values = np.array([(r << 16) | (g << 8) | b for _, (r, g, b) in colours], np.uint32)
    values.sort()
    index = _palette_index(flat32 & 0xFFFFFF, values).reshape(h, w)
    n = len(values)
    bits = 1 if n <= 2 else 2 if n <= 4 else 4 if n <= 16 else 8
    if bits < 8:  # pack 8 // bits pixels a byte, first pixel in the high bits
        per = 8 // bits
        pw = -(-w // per) * per
        if pw != w:
            padded = np.zeros((h, pw), np.uint8)
            padded[:, :w] = index
            index = padded
        groups = index.reshape(h, pw // per, per)
        packed = np.zeros((h, pw // per), np.uint8)
        for k in range(per):
            packed |= groups[:, :, k] << np.uint8(8 - bits * (k + 1))
        index = packed
    rows = np.empty((h, index.shape[1] + 1), np.uint8)
    rows[:, 0] = 0  # filter: none
    rows[:, 1:] = index
    pal = np.stack([(values >> 16) & 0xFF, (values >> 8) & 0xFF, values & 0xFF], axis=1)
    level = 1 if fast else 6 if small else 3
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 3, 0, 0, 0)),
            _png_chunk(b"PLTE", pal.astype(np.uint8).tobytes()),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_HASH_MULTIPLIERS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C)


def _palette_index(flat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each pixel (0xRRGGBB, all in ``values``) in the sorted ``values``, as uint8.

    A multiplicative hash into a 64K table when it has no collision on these colours (a
    few ns a pixel), else (or for a small area, where the table costs more) a binary search.
    """
    if len(flat) < 2048:
        return np.searchsorted(values, flat).astype(np.uint8)
    for mult in _HASH_MULTIPLIERS:
        keys = (values * np.uint32(mult)) >> np.uint32(16)
        if len(np.unique(keys)) == len(values):
            table = np.zeros(1 << 16, np.uint8)
            table[keys] = np.arange(len(values), dtype=np.uint8)
            return table[(flat * np.uint32(mult)) >> np.uint32(16)]
    return np.searchsorted(values, flat).astype(np.uint8)


def encode_jpeg(bgra: np.ndarray, quality: int) -> bytes:
    return simplejpeg.encode_jpeg(
        np.ascontiguousarray(bgra), quality=quality, colorspace="BGRA", colorsubsampling="420"
    )


def _solid(img: np.ndarray, box: Box) -> int | None:
    x, y, w, h = box
    sub = img[y : y + h, x : x + w]
    first = sub[0, 0]
    sh, sw = sub.shape
    if sub[-1, -1] != first or sub[sh // 2, sw // 2] != first:  # most boxes: known at once
        return None
    return int(first) if (sub == first).all() else None


def _fill(value: int) -> bytes:
    return fill_data((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)


# --- the encoder ------------------------------------------------------------------------


class ScreenEncoder:
    """Frames for one monitor, each relative to what the viewer already shows.

    ``next_frame()`` grabs and encodes; ``encode(image)`` does the same for a BGRA
    (h, w, 4) uint8 array (tests, other capture paths). ``quality`` is the JPEG quality of
    changing content (flow control lowers and raises it); ``reset()`` makes the next frame
    a full one (a new viewer, a lost frame).
    """

    def __init__(
        self,
        monitor: int = 1,
        *,
        quality: int = 70,
        min_quality: int = 20,
        max_quality: int = 90,
        refresh_after: float = 1.0,
        refresh_quality: int = 70,
        refresh_area: int = 1920 * 1080 // 6,
        tile: int = TILE,
        motion: bool = True,
        damage_hints: bool = True,
        clock: Callable[[], float] = time.monotonic,
        grabber: Any = None,
    ) -> None:
        self.min_quality, self.max_quality = min_quality, max_quality
        self._quality = quality
        self.quality = quality
        self.refresh_after = refresh_after
        self.refresh_quality = refresh_quality
        self.refresh_area = refresh_area
        self.tile = tile
        self.motion = motion
        self.clock = clock
        self.seq = 0
        self._mss = grabber
        self._monitor = monitor
        self._canvas: np.ndarray | None = None  # uint32 (h, w): what the viewer shows
        self._sent_q = np.zeros((0, 0), np.int16)  # per tile: quality it was last sent at
        self._changed = np.zeros((0, 0), np.float64)  # per tile: when it last changed
        self._cursor: tuple[int, int] | None = None
        self._cursor_serial: int | None = None
        self._shape_checked = -1e9
        self.stats: dict[str, int] = {}
        self.damage_hints = damage_hints
        self._watch: DamageWatch | None = None
        self._last: np.ndarray | None = None  # the last grab
        self._last_grab = 0.0
        self._pending = False  # rects held back by a byte budget
        self._fast = False

    # -- settings --

    @property
    def quality(self) -> int:
        return self._quality

    @quality.setter
    def quality(self, value: int) -> None:
        self._quality = int(min(max(value, self.min_quality), self.max_quality))

    def lower_quality(self, step: int = 10) -> int:
        self.quality = self._quality - step
        return self._quality

    @property
    def monitor(self) -> int:
        return self._monitor

    def select_monitor(self, index: int) -> None:
        if not 0 <= index < len(self._grabber().monitors):
            raise ValueError(f"no monitor {index}")
        self._monitor = index
        self.reset()

    def reset(self) -> None:
        """Forget what the viewer shows: the next frame repaints everything."""
        self._canvas = None
        self._last = None

    # -- capture --

    def _grabber(self) -> Any:
        if self._mss is None:
            import mss

            factory = getattr(mss, "MSS", None) or mss.mss
            self._mss = factory()
        return self._mss

    def geometry(self) -> dict[str, int]:
        return dict(self._grabber().monitors[self._monitor])

    def screens(self) -> Screens:
        mons = self._grabber().monitors
        return Screens(
            tuple(
                Monitor(i, m["left"], m["top"], m["width"], m["height"]) for i, m in enumerate(mons)
            ),
            self._monitor,
        )

    def grab(self) -> np.ndarray:
        """The monitor as a (h, w, 4) BGRA uint8 array (owned: mss allocates each grab)."""
        shot = self._grabber().grab(self.geometry())
        return np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4)

    def next_frame(self, budget: int | None = None) -> Frame | None:
        """Grab and encode; without a grab when XDamage says nothing was drawn since."""
        now = self.clock()
        if self._last is not None and not self._screen_changed(now):
            if self._pending or self._refresh_due(now):
                return self.encode(self._last, now=now, budget=budget)
            return None
        self._last = self.grab()
        self._last_grab = now
        return self.encode(self._last, now=now, budget=budget)

    def _screen_changed(self, now: float) -> bool:
        if not self.damage_hints or now - self._last_grab > 1.0:  # a grab now and then anyway
            return True
        if self._watch is None:
            try:
                self._watch = DamageWatch()
            except Exception:  # no X, no DAMAGE: grab every time
                self.damage_hints = False
                return True
            self._watch.changed()  # the creation reports the whole screen: not news
            return True
        return self._watch.changed()

    def cursor(self) -> Cursor | None:
        """The pointer, relative to the monitor, when it moved or changed shape; else None."""
        mon = self.geometry()
        x, y = pointer()
        x = min(max(x - mon["left"], 0), mon["width"] - 1)
        y = min(max(y - mon["top"], 0), mon["height"] - 1)
        shape = None
        now = self.clock()
        if now - self._shape_checked >= SHAPE_INTERVAL:  # a round trip and an image: not often
            self._shape_checked = now
            shape = _cursor_shape(self._cursor_serial)
        if (x, y) == self._cursor and shape is None:
            return None
        self._cursor = (x, y)
        if shape is None:
            return Cursor(x, y)
        self._cursor_serial, hot_x, hot_y, png = shape
        return Cursor(x, y, hot_x, hot_y, png)

    def close(self) -> None:
        if self._mss is not None and hasattr(self._mss, "close"):
            self._mss.close()
        self._mss = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # -- encoding --

    def encode(
        self, image: np.ndarray, *, now: float | None = None, budget: int | None = None
    ) -> Frame | None:
        """The frame that turns the viewer's canvas into ``image``, or None if nothing to do.

        ``budget`` caps the frame's size in bytes (flow control): rects that do not fit
        stay dirty and go in a later frame. A frame never exceeds the sealed-message limit.
        """
        now = self.clock() if now is None else now
        h, w = image.shape[:2]
        cur = image.view(np.uint32).reshape(h, w)
        t = self.tile
        gh, gw = -(-h // t), -(-w // t)
        limit = MAX_PLAINTEXT - 1024 if budget is None else min(budget, MAX_PLAINTEXT - 1024)
        if self._canvas is None or self._canvas.shape != (h, w):
            self._canvas = np.zeros((h, w), np.uint32)
            self._sent_q = np.full((gh, gw), LOSSLESS, np.int16)
            self._changed = np.full((gh, gw), now)
            grid: np.ndarray | None = np.ones((gh, gw), bool)
            full = True
        else:
            grid, neq = _damage(self._canvas, cur, t)
            full = False
        canvas = self._canvas
        rects: list[Rect] = []
        self._pending = False
        size = _FRAME_OVERHEAD

        if grid is not None and not full:
            self._changed[grid] = now
            if self.motion and int(grid.sum()) >= MOTION_MIN_TILES:
                for _ in range(3):
                    box = _bbox(grid, t, w, h)
                    move = find_moves(canvas, cur, box, wide=not rects, neq=neq)
                    if move is None:
                        break
                    self._apply_move(move, now)
                    rects.append(
                        Rect(
                            move.x,
                            move.y,
                            move.w,
                            move.h,
                            Encoding.COPY,
                            copy_data(move.src_x, move.src_y),
                        )
                    )
                    size += _RECT_OVERHEAD + 4
                    self._count("copy")
                    grid, neq = _damage(canvas, cur, t)
                    if grid is None or int(grid.sum()) < MOTION_MIN_TILES:
                        break

        stale = self._refresh_tiles(now, grid)
        if grid is None:
            if stale is None:
                return self._frame(rects, w, h)
            grid = np.zeros((gh, gw), bool)
        cells = np.argwhere(grid)
        low = low_colour_tiles(cur, cells, t)
        png_grid = np.zeros_like(grid)
        png_grid[tuple(cells[low].T)] = True
        jpeg_grid = grid & ~png_grid
        fine_grid = np.zeros_like(grid)
        exact_grid = np.zeros_like(grid)
        if stale is not None:
            scells = np.argwhere(stale)
            slow = low_colour_tiles(cur, scells, t)
            exact_grid[tuple(scells[slow].T)] = True
            fine_grid[tuple(scells[~slow].T)] = True
            good = fine_grid & (self._sent_q >= self.refresh_quality)
            self._sent_q[good] = REFINED
            fine_grid &= ~good
        if full:
            neq = None  # else: canvas != cur, from the last damage pass (canvas unchanged since)
        # a big change: frame rate first (quicker zlib)
        self._fast = int(grid.sum()) * t * t > w * h // 4
        # busy (lossy) first, so exact rects drawn after them win where they touch
        jobs: list[tuple[Box, str, int]] = []
        for box in self._rects(jpeg_grid, neq, MERGE_WASTE_JPEG, w, h):
            jobs.append((box, "jpeg", self._quality))
        for box in self._rects(fine_grid, None, 0, w, h):
            jobs.append((box, "fine", max(self.refresh_quality, self._quality)))
        for box in self._rects(png_grid, neq, MERGE_WASTE_PNG, w, h):
            jobs.append((box, "png", LOSSLESS))
        for box in self._rects(exact_grid, None, 0, w, h):
            jobs.append((box, "png", LOSSLESS))
        for box, kind, q in jobs:
            for part, rect, quality in self._encode_box(cur, box, kind, q):
                if size + _RECT_OVERHEAD + len(rect.data) > limit and rects:
                    self._pending = True
                    continue  # stays dirty: next frame
                self._count(f"{rect.encoding.name.lower()}_bytes", len(rect.data))
                self._count(f"{rect.encoding.name.lower()}_px", rect.w * rect.h)
                size += _RECT_OVERHEAD + len(rect.data)
                rects.append(rect)
                x, y, rw, rh = part
                canvas[y : y + rh, x : x + rw] = cur[y : y + rh, x : x + rw]
                self._mark(part, quality, refined=kind == "fine")
        return self._frame(rects, w, h)

    def _frame(self, rects: list[Rect], w: int, h: int) -> Frame | None:
        if not rects:
            return None
        frame = Frame(self.seq, self._monitor, w, h, tuple(rects))
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return frame

    def _count(self, what: str, n: int = 1) -> None:
        self.stats[what] = self.stats.get(what, 0) + n

    def _rects(
        self, grid: np.ndarray, neq: np.ndarray | None, waste: int, w: int, h: int
    ) -> list[Box]:
        if not grid.any():
            return []
        boxes = tiles_to_rects(grid, self.tile, w, h)
        if neq is not None:
            tight = [tighten(neq, b) for b in boxes]
            boxes = [b for b in tight if b is not None]
        return merge_rects(boxes, waste)

    def _encode_box(
        self, cur: np.ndarray, box: Box, kind: str, quality: int
    ) -> list[tuple[Box, Rect, int]]:
        x, y, w, h = box
        solid = _solid(cur, box)
        if solid is not None:
            self._count("fill")
            return [(box, Rect(x, y, w, h, Encoding.FILL, _fill(solid)), LOSSLESS)]
        bgra = cur[y : y + h, x : x + w].view(np.uint8).reshape(h, w, 4)
        if kind == "png":
            out = []
            for part in _bands(box, PNG_BAND):
                px, py, pw, ph = part
                sub = bgra[py - y : py - y + ph]
                self._count("png")
                data = encode_png(sub, fast=self._fast)
                out.append((part, Rect(px, py, pw, ph, Encoding.PNG, data), LOSSLESS))
            return out
        out = []
        for part in _bands(box, JPEG_BAND):
            px, py, pw, ph = part
            data = encode_jpeg(
                cur[py : py + ph, px : px + pw].view(np.uint8).reshape(ph, pw, 4), quality
            )
            self._count("jpeg")
            out.append((part, Rect(px, py, pw, ph, Encoding.JPEG, data), quality))
        return out

    def _mark(self, box: Box, quality: int, *, refined: bool = False) -> None:
        t = self.tile
        x, y, w, h = box
        height, width = self._canvas.shape  # type: ignore[union-attr]
        c0, r0, c1, r1 = x // t, y // t, -(-(x + w) // t), -(-(y + h) // t)
        # tiles wholly inside take the new state; edges keep the worse of old and new
        ic0, ir0 = -(-x // t), -(-y // t)
        ic1 = (x + w) // t if x + w < width else c1
        ir1 = (y + h) // t if y + h < height else r1
        if quality < LOSSLESS:
            sub = self._sent_q[r0:r1, c0:c1]
            np.minimum(sub, quality, out=sub)
        if quality >= LOSSLESS or refined:
            self._sent_q[ir0:ir1, ic0:ic1] = REFINED if refined else LOSSLESS

    def _apply_move(self, move: Move, now: float) -> None:
        canvas = self._canvas
        assert canvas is not None
        src = canvas[move.src_y : move.src_y + move.h, move.src_x : move.src_x + move.w].copy()
        canvas[move.y : move.y + move.h, move.x : move.x + move.w] = src
        # the destination's tiles are as exact as the worst source tile they take pixels from
        t = self.tile
        q = self._sent_q
        gh, gw = q.shape
        r0, r1 = move.y // t, -(-(move.y + move.h) // t)
        c0, c1 = move.x // t, -(-(move.x + move.w) // t)
        rows = np.arange(r0, r1)
        cols = np.arange(c0, c1)
        dy, dx = move.y - move.src_y, move.x - move.src_x
        ys = np.clip(np.stack([(rows * t - dy) // t, (rows * t + t - 1 - dy) // t]), 0, gh - 1)
        xs = np.clip(np.stack([(cols * t - dx) // t, (cols * t + t - 1 - dx) // t]), 0, gw - 1)
        worst = np.minimum.reduce(
            [q[ys[i][:, None], xs[j][None, :]] for i in range(2) for j in range(2)]
        )
        q[r0:r1, c0:c1] = np.minimum(worst, q[r0:r1, c0:c1])
        self._changed[r0:r1, c0:c1] = now

    def _refresh_due(self, now: float) -> bool:
        if self.refresh_after <= 0:
            return False
        lossy = self._sent_q < REFINED
        return bool(lossy.any() and (now - self._changed[lossy] >= self.refresh_after).any())

    def _refresh_tiles(self, now: float, dirty: np.ndarray | None) -> np.ndarray | None:
        """Lossy tiles that stopped changing, at most ``refresh_area`` pixels of them."""
        if self.refresh_after <= 0 or not (self._sent_q < REFINED).any():
            return None
        stale = (self._sent_q < REFINED) & (now - self._changed >= self.refresh_after)
        if dirty is not None:
            stale &= ~dirty
        if not stale.any():
            return None
        budget = max(1, self.refresh_area // (self.tile * self.tile))
        if int(stale.sum()) > budget:
            rows = np.flatnonzero(stale.any(axis=1))
            cum = np.cumsum(stale[rows].sum(axis=1))
            stop = rows[min(len(rows) - 1, int(np.searchsorted(cum, budget)))]
            stale[stop + 1 :] = False
        return stale


def _bbox(grid: np.ndarray, tile: int, w: int, h: int) -> Box:
    rows = np.flatnonzero(grid.any(axis=1))
    cols = np.flatnonzero(grid.any(axis=0))
    x0, y0 = int(cols[0]) * tile, int(rows[0]) * tile
    x1, y1 = min(w, (int(cols[-1]) + 1) * tile), min(h, (int(rows[-1]) + 1) * tile)
    return x0, y0, x1 - x0, y1 - y0


def _bands(box: Box, rows: int) -> list[Box]:
    x, y, w, h = box
    return [(x, y + o, w, min(rows, h - o)) for o in range(0, h, rows)]


# --- change hints -----------------------------------------------------------------------


class DamageWatch:
    """Whether anything was drawn on the X screen since the last call (XDamage on the root).

    The check costs microseconds, so an idle screen costs no grab. ``changed()`` re-arms
    before it answers True: a change while the caller grabs raises the next event.
    """

    def __init__(self, display_name: str | None = None) -> None:
        from Xlib import X, display
        from Xlib.ext import damage

        self._none = X.NONE
        self.d = display.Display(display_name)
        if not self.d.has_extension("DAMAGE"):
            self.d.close()
            raise RuntimeError("the X server has no DAMAGE extension")
        self.d.damage_query_version()
        self.damage = self.d.screen().root.damage_create(damage.DamageReportNonEmpty)
        self.d.sync()

    def changed(self) -> bool:
        got = False
        while self.d.pending_events():
            self.d.next_event()
            got = True
        if got:
            self.d.damage_subtract(self.damage, self._none, self._none)
            self.d.flush()
        return got

    def close(self) -> None:
        self.d.close()


# --- pointer ----------------------------------------------------------------------------

_display: Any = None


def _xdisplay() -> Any:
    global _display
    if _display is None:
        from Xlib import display

        _display = display.Display()
    return _display


def pointer() -> tuple[int, int]:
    """The X pointer's position on the root window (all monitors)."""
    reply = _xdisplay().screen().root.query_pointer()
    return int(reply.root_x), int(reply.root_y)


def _cursor_shape(known_serial: int | None) -> tuple[int, int, int, bytes] | None:
    """(serial, hot_x, hot_y, png) of the pointer's image when it differs from the known one.

    XFixes ``GetCursorImage``; None when unchanged or when the server does not offer it.
    """
    try:
        d = _xdisplay()
        if not d.has_extension("XFIXES"):
            return None
        if not getattr(d, "_backdesk_xfixes", False):
            d.xfixes_query_version()
            d._backdesk_xfixes = True
        img = d.xfixes_get_cursor_image(d.screen().root)
    except Exception:  # an X server without XFixes or an Xlib without it: no shape
        return None
    if img.cursor_serial == known_serial or not img.width or not img.height:
        return None
    argb = np.asarray(img.cursor_image, np.uint32).reshape(img.height, img.width)
    rgba = np.stack([(argb >> 16) & 0xFF, (argb >> 8) & 0xFF, argb & 0xFF, argb >> 24], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(buf, "PNG")
    return int(img.cursor_serial), int(img.xhot), int(img.yhot), buf.getvalue()
