"""The plugins' shared work queue and Blender's PNG decoder, in plain Python (both are host-free)."""

from __future__ import annotations

import importlib.util
import io
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbridge.generators.pixels import encode_png
from plugins.client.ganbridge_work import NEXT_TICK, Work, WorkQueue

BLENDER_PNG = Path(__file__).resolve().parents[2] / "plugins" / "blender" / "png.py"
_spec = importlib.util.spec_from_file_location("blender_plugin_png", BLENDER_PNG)
png = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = png
_spec.loader.exec_module(png)


def wait_until_idle(queue: WorkQueue, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while queue.busy:
        queue.run()
        assert time.monotonic() < end, "the queue did not finish"
        time.sleep(0.001)


# --- work queue ---------------------------------------------------------------------------------


def test_works_apply_in_arrival_order_even_when_a_later_one_is_ready_first():
    release = threading.Event()
    done: list[str] = []
    queue = WorkQueue()
    queue.add(Work(prepare=lambda: release.wait(5) and "slow", apply=done.append))
    queue.add(Work(apply=lambda _: done.append("cheap")))
    queue.run()
    assert done == []  # the first is still preparing: nothing behind it may go first
    release.set()
    wait_until_idle(queue)
    assert done == ["slow", "cheap"]
    queue.close()


def test_a_generator_apply_runs_one_slice_per_step_and_the_budget_ends_a_tick():
    steps: list[int] = []

    def sliced(_):
        for i in range(3):
            steps.append(i)
            time.sleep(0.02)  # longer than a tick's budget
            yield

    queue = WorkQueue()
    queue.add(Work(apply=sliced))
    assert queue.run(budget=0.001) == 1 and steps == [0]
    assert queue.run(budget=0.001) == 1 and steps == [0, 1]
    wait_until_idle(queue)
    assert steps == [0, 1, 2] and queue.longest_slice >= 0.02
    queue.close()


def test_a_failed_prepare_calls_fail_and_the_queue_goes_on():
    failures: list[str] = []
    done: list[str] = []
    queue = WorkQueue()
    queue.add(Work(prepare=lambda: 1 / 0, apply=done.append, fail=lambda e: failures.append(type(e).__name__)))
    queue.add(Work(apply=lambda _: done.append("next")))
    wait_until_idle(queue)
    assert failures == ["ZeroDivisionError"] and done == ["next"]
    queue.close()


def test_a_bug_in_apply_propagates_once_and_does_not_wedge_the_queue():
    done: list[str] = []
    queue = WorkQueue()
    queue.add(Work(apply=lambda _: [][1]))
    queue.add(Work(apply=lambda _: done.append("next")))
    with pytest.raises(IndexError):
        queue.run()
    wait_until_idle(queue)
    assert done == ["next"]
    queue.close()


def test_a_slice_yielding_next_tick_ends_the_tick():
    """What follows NEXT_TICK is one long host call: it starts a tick rather than ending a full one."""
    steps: list[str] = []

    def sliced(_):
        steps.append("band")
        yield
        steps.append("last band")
        yield NEXT_TICK
        steps.append("add the layer")

    queue = WorkQueue()
    queue.add(Work(apply=sliced))
    assert queue.run(budget=10.0) == 2 and steps == ["band", "last band"]
    assert queue.run(budget=10.0) == 1 and steps[-1] == "add the layer" and not queue.busy
    queue.close()


def test_a_run_from_inside_a_slice_returns_at_once():
    """A host call that spins a nested event loop lets the host's timer call run() again: that
    inner run must not start the next work in the middle of the current slice."""
    order: list[str] = []
    queue = WorkQueue()

    def nested(_):
        order.append("first starts")
        order.append(f"inner run ran {queue.run()} slices")
        order.append("first ends")

    queue.add(Work(apply=nested))
    queue.add(Work(apply=lambda _: order.append("second")))
    wait_until_idle(queue)
    assert order == ["first starts", "inner run ran 0 slices", "first ends", "second"]
    queue.close()


def test_clear_closes_a_work_part_way_so_its_cleanup_runs():
    cleaned: list[bool] = []

    def sliced(_):
        try:
            yield
            yield
        finally:
            cleaned.append(True)

    queue = WorkQueue()
    queue.add(Work(apply=sliced))
    queue.run(budget=0.0001)
    queue.clear()
    assert cleaned == [True] and not queue.busy
    queue.close()


# --- Blender's PNG decoder ----------------------------------------------------------------------


def _expected_rgba(pixels: np.ndarray) -> np.ndarray:
    """Blender's layout: RGBA, bottom row first; grey copied to R, G and B, alpha 255 if none."""
    img = pixels if pixels.ndim == 3 else pixels[..., None]
    c = img.shape[2]
    out = np.empty(img.shape[:2] + (4,), np.uint8)
    out[..., :3] = img[..., :1] if c <= 2 else img[..., :3]
    out[..., 3] = img[..., c - 1] if c in (2, 4) else 255
    return out[::-1]


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 2), (6, 5, 3), (9, 7, 4)])
def test_the_bridges_pngs_decode_exactly(shape):
    pixels = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    decoded = png.decode(encode_png(pixels))
    assert (decoded.width, decoded.height) == (shape[1], shape[0])
    got = np.round(decoded.rgba.reshape(shape[0], shape[1], 4) * 255).astype(np.uint8)
    assert (got == _expected_rgba(pixels)).all()


def test_rows_filtered_with_none_sub_and_up_decode_and_paeth_falls_back():
    """Pillow picks a filter per row; a flat image gets None/Sub/Up rows, noise gets Paeth."""
    flat = np.zeros((8, 8, 3), np.uint8)
    flat[:, :, 0] = np.arange(8) * 30  # a ramp along each row: Sub
    buf = io.BytesIO()
    Image.fromarray(flat).save(buf, "PNG")
    decoded = png.decode(buf.getvalue())
    assert decoded is not None
    assert (np.round(decoded.rgba.reshape(8, 8, 4) * 255).astype(np.uint8) == _expected_rgba(flat)).all()
    noise = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    assert png.decode(buf.getvalue()) is None  # Blender decodes this one itself


def test_damaged_pngs_get_one_clear_error():
    good = encode_png(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(png.PngError, match="not a PNG"):
        png.decode(b"GIF89a" + good[6:])
    with pytest.raises(png.PngError, match="damaged"):
        png.decode(good[:41] + b"\0" * 8 + good[49:])
    with pytest.raises(png.PngError, match="colour type"):
        png.decode(good[:25] + b"\x03" + good[26:])
