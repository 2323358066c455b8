"""Synthetic screens: text-like areas (few colours, sharp edges) and photo-like noise."""

from __future__ import annotations

import numpy as np

PALETTE = np.array(
    [[255, 255, 255], [20, 20, 20], [200, 60, 40], [40, 90, 200], [128, 128, 128]], np.uint8
)


def bgra(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb[..., ::-1]
    return out


def text(h: int, w: int, seed: int = 0, line: int = 16) -> np.ndarray:
    """Black 'glyphs' (random 1-px-stroke boxes) on white, in lines of ``line`` px (RGB)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    for top in range(2, h - line + 1, line):
        x = 4
        while x < w - 10:
            gw = int(rng.integers(4, 8))
            glyph = rng.random((line - 4, gw)) < 0.35
            colour = PALETTE[int(rng.integers(1, 4))]
            img[top : top + line - 4, x : x + gw][glyph] = colour
            x += gw + int(rng.integers(2, 5)) + (8 if rng.random() < 0.15 else 0)
    return img


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with grain: many colours, like a photo (RGB)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            128 + 80 * np.sin(xx / 37.0 + seed),
            128 + 80 * np.cos(yy / 23.0 + xx / 91.0),
            128 + 60 * np.sin((xx + yy) / 51.0),
        ],
        axis=-1,
    )
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
