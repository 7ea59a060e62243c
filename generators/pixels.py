"""Image files shared by every kind: PNG encoding and the picture suffixes training reads."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# What the training commands read from a folder (Pillow opens each of these).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, C) uint8 array; fast compression, since outputs are made live."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
