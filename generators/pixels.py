"""Image files shared by every kind: PNG encoding and the picture suffixes training reads."""

from __future__ import annotations

import struct
import zlib

import numpy as np

# What the training commands read from a folder (Pillow opens each of these).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type: grey, grey+alpha, RGB, RGBA
FILTER_UP = 2


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, C) uint8 array, every row with PNG's Up filter.

    One filter for every row, and one a client can undo in a single vectorised pass (a cumulative
    sum down the rows), so a plugin decodes a 2048² result with numpy off its UI thread instead of
    waiting for its host's decoder on it. Against Pillow's per-row adaptive (Paeth) filtering it is
    about twice as fast to write and 3-5% larger (measured on the shipped textures' sample sheets).
    Fast compression, since outputs are made live.
    """
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"encode_png takes an (H, W) or (H, W, C) uint8 array, not {pixels.dtype} {pixels.shape}")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in COLOR_TYPES:
        raise ValueError(f"encode_png takes 1 to 4 channels, not {channels}")
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = FILTER_UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps, as PNG's does
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
