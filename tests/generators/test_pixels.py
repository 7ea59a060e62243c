"""PNG encoding: lossless for every channel count, one filter a client can undo in one pass."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ganbridge.generators.pixels import encode_png


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (5, 7, 2), (5, 7, 3), (33, 17, 4), (200, 300, 3)])
def test_png_round_trips_exactly_through_pillow(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(encode_png(pixels))))
    assert back.shape == pixels.shape and (back == pixels).all()


def test_every_row_uses_the_up_filter_so_a_cumulative_sum_decodes_it():
    pixels = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    png = encode_png(pixels)
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    rows = np.frombuffer(zlib.decompress(png[41 : 41 + length]), np.uint8).reshape(40, 30 * 3 + 1)
    assert (rows[:, 0] == 2).all()
    assert (np.cumsum(rows[:, 1:], axis=0, dtype=np.uint8).reshape(40, 30, 3) == pixels).all()


def test_refuses_what_is_not_an_8_bit_image():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="channels"):
        encode_png(np.zeros((4, 4, 5), np.uint8))
