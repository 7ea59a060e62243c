"""Pixel bytes for Krita, in plain Python (no numpy in Krita's Python).

Krita's 8-bit RGBA layers take and give pixels as B, G, R, A bytes; Qt decodes PNGs to R, G, B, A.
"""

from __future__ import annotations


def rgba_to_bgra(rgba: bytes) -> bytes:
    """Swap the red and blue bytes of every pixel (the same function turns BGRA back into RGBA)."""
    if len(rgba) % 4:
        raise ValueError(f"{len(rgba)} bytes is not a whole number of 4-byte pixels")
    out = bytearray(rgba)
    out[0::4], out[2::4] = rgba[2::4], rgba[0::4]
    return bytes(out)


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


def apply_mask(bgra: bytes, mask: bytes) -> bytes:
    """Multiply each pixel's alpha by a selection mask (one byte a pixel, 255 = fully selected)."""
    if len(mask) * 4 != len(bgra):
        raise ValueError(f"a mask of {len(mask)} pixels does not fit {len(bgra) // 4} pixels")
    out = bytearray(bgra)
    alpha = bgra[3::4]
    if alpha.count(255) == len(alpha):
        out[3::4] = mask  # opaque pixels (every texture): the mask is the new alpha
    else:
        out[3::4] = bytes(a * m // 255 for a, m in zip(alpha, mask))
    return bytes(out)
