"""PNG bytes -> the flat float RGBA rows Blender's `Image.pixels` takes, with numpy (Blender ships it).

Runs on a worker thread, so that Blender never decodes a result on its UI thread. It reads the
PNGs the bridge writes (8-bit grey, grey+alpha, RGB or RGBA, not interlaced) and undoes the
filters that vectorise: None, Sub and Up, a whole image at a time or a row at a time. Any other
PNG gets `None`, and the caller lets Blender decode it instead.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> channels
NONE, SUB, UP = 0, 1, 2


class PngError(ValueError):
    """Bytes that are not a PNG image; the message is for the artist."""


@dataclass
class Pixels:
    width: int
    height: int
    rgba: np.ndarray  # float32, width * height * 4, bottom row first (Blender's order)


def decode(png: bytes) -> Pixels | None:
    """The image's pixels, or None for a valid PNG this decoder does not vectorise."""
    width, height, color_type, data = _read_chunks(png)
    if data is None:
        return None
    channels = CHANNELS[color_type]
    stride = width * channels
    try:
        raw = zlib.decompress(data)
    except zlib.error as e:
        raise PngError(f"the PNG's image data is damaged ({e})") from None
    if len(raw) != height * (stride + 1):
        raise PngError("the PNG's image data does not match its size")
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    values = _unfilter(rows[:, 0], rows[:, 1:], channels)
    if values is None:
        return None
    image = values.reshape(height, width, channels)[::-1]  # PNG is top row first, Blender bottom first
    rgba8 = np.empty((height, width, 4), np.uint8)
    rgba8[..., :3] = image[..., :1] if channels <= 2 else image[..., :3]
    rgba8[..., 3] = image[..., channels - 1] if channels in (2, 4) else 255
    rgba = np.empty(rgba8.shape, np.float32)
    np.multiply(rgba8, np.float32(1 / 255), out=rgba)
    return Pixels(width, height, rgba.reshape(-1))


def _read_chunks(png: bytes) -> tuple[int, int, int, bytes | None]:
    """(width, height, colour type, the joined image data), with None for the data of a valid PNG
    this decoder does not read (16-bit, interlaced)."""
    if not png.startswith(SIGNATURE) or png[12:16] != b"IHDR":
        raise PngError("not a PNG image")
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", png[16:29])
    if width == 0 or height == 0 or color_type not in CHANNELS:
        raise PngError(f"a PNG of {width}x{height} with colour type {color_type} is not an image Blender can use")
    if depth != 8 or interlace != 0:
        return width, height, color_type, None
    parts, at = [], 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        if kind == b"IDAT":
            parts.append(png[at + 8 : at + 8 + length])
        elif kind == b"IEND":
            break
        at += 12 + length
    if not parts:
        raise PngError("the PNG has no image data")
    return width, height, color_type, b"".join(parts)


def _unfilter(filters: np.ndarray, rows: np.ndarray, channels: int) -> np.ndarray | None:
    """Filtered rows -> pixel bytes, a row at a time (each row one numpy operation: a few ms for
    2048 rows), or None when a row uses Average or Paeth, which depend on the pixel to their left."""
    if filters.max() > UP:
        return None
    out = np.empty_like(rows)
    previous = np.zeros(rows.shape[1], np.uint8)
    for y, kind in enumerate(filters.tolist()):
        if kind == SUB:
            np.cumsum(rows[y].reshape(-1, channels), axis=0, dtype=np.uint8, out=out[y].reshape(-1, channels))
        elif kind == UP:
            np.add(previous, rows[y], out=out[y])
        else:
            out[y] = rows[y]
        previous = out[y]
    return out


def thumbnail(pixels: Pixels, size: int) -> Pixels:
    """The image shrunk so that its longer side is `size` (aspect kept; never enlarged), each
    thumbnail pixel the mean of the block of pixels it covers."""
    w, h = pixels.width, pixels.height
    scale = min(1.0, size / max(w, h))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    image = pixels.rgba.reshape(h, w, 4)
    ys = np.linspace(0, h, th + 1).astype(int)
    xs = np.linspace(0, w, tw + 1).astype(int)
    rows = np.add.reduceat(image, ys[:-1], axis=0) / np.diff(ys)[:, None, None]
    small = np.add.reduceat(rows, xs[:-1], axis=1) / np.diff(xs)[None, :, None]
    return Pixels(tw, th, np.ascontiguousarray(small, dtype=np.float32).reshape(-1))
