"""Pixel bytes for Krita, in plain Python (no numpy in Krita's Python): whole-row and byte-slice
operations only, never a loop over pixels. Krita's 8-bit RGBA layers take and give pixels as
B, G, R, A bytes (Qt's ARGB32 on a little-endian machine)."""

from __future__ import annotations


def tile(pixels: bytes, width: int, height: int, out_width: int, out_height: int, x0: int = 0, y0: int = 0) -> bytes:
    """Repeat a width x height image (4 bytes a pixel) over an out_width x out_height region whose top
    left corner is canvas pixel (x0, y0). Canvas pixel (x, y) gets image pixel (x mod width,
    y mod height), so fills made at different places line up with each other."""
    if len(pixels) != width * height * 4:
        raise ValueError(f"expected {width}x{height}x4 bytes, got {len(pixels)}")
    row_bytes = width * 4
    ox = (x0 % width) * 4
    reps = (out_width * 4 + ox) // row_bytes + 2
    rows = []
    for y in range(height):
        row = pixels[y * row_bytes : (y + 1) * row_bytes]
        rows.append((row * reps)[ox : ox + out_width * 4])
    return b"".join(rows[(y0 + y) % height] for y in range(out_height))


def is_opaque(bgra: bytes) -> bool:
    alpha = bgra[3::4]
    return alpha.count(255) == len(alpha)


def mask_as_alpha(bgra: bytes, mask: bytes) -> bytes:
    """Opaque pixels (every texture) under a selection mask (one byte a pixel, 255 = fully
    selected): the mask becomes their alpha, with its soft edges. Byte slices, no per-pixel loop."""
    if len(mask) * 4 != len(bgra):
        raise ValueError(f"a mask of {len(mask)} pixels does not fit {len(bgra) // 4} pixels")
    out = bytearray(bgra)
    out[3::4] = mask
    return bytes(out)
