"""A viewer's canvas in numpy: applies decoded frames the way the browser viewer does."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from protocol.remote import Encoding, Frame, decode, encode_frame


class Canvas:
    """RGB (h, w, 3) uint8 pixels; rects applied in order, copies from the canvas as it is."""

    def __init__(self, width: int, height: int) -> None:
        self.rgb = np.zeros((height, width, 3), np.uint8)

    def apply(self, frame: Frame, *, through_codec: bool = True) -> None:
        if through_codec:  # what the viewer gets is what the wire carries
            decoded = decode(encode_frame(frame))
            assert isinstance(decoded, Frame), decoded
            frame = decoded
        assert (frame.width, frame.height) == (self.rgb.shape[1], self.rgb.shape[0])
        for r in frame.rects:
            dst = self.rgb[r.y : r.y + r.h, r.x : r.x + r.w]
            if r.encoding is Encoding.COPY:
                sx, sy = int.from_bytes(r.data[:2], "big"), int.from_bytes(r.data[2:], "big")
                dst[...] = self.rgb[sy : sy + r.h, sx : sx + r.w].copy()
            elif r.encoding is Encoding.FILL:
                dst[...] = np.frombuffer(r.data, np.uint8)
            else:
                img = Image.open(io.BytesIO(r.data))
                assert img.format == ("JPEG" if r.encoding is Encoding.JPEG else "PNG")
                assert img.size == (r.w, r.h), (img.size, r)
                dst[...] = np.asarray(img.convert("RGB"))


def bgra_to_rgb(bgra: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgra[..., 2::-1])


def rgb_to_bgra(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = rgb[..., ::-1]
    return out
