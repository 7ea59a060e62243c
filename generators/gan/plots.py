"""Training pictures drawn with Pillow alone: sample sheets and loss curves."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PAD = 8


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str) -> None:
    draw.text(xy, text, fill=(20, 20, 20))


def sample_sheet(exemplar: np.ndarray, samples: list[np.ndarray], tile_repeats: int = 2) -> Image.Image:
    """Exemplar | a sample tiled repeats x repeats (shows the seams) | a grid of samples."""
    cell = samples[0].shape[0]
    cols = 4
    rows = (len(samples) + cols - 1) // cols
    ex = Image.fromarray(exemplar).resize((cell * 2, cell * 2 * exemplar.shape[0] // exemplar.shape[1]))
    tiled = Image.fromarray(np.tile(samples[0], (tile_repeats, tile_repeats, 1)))
    tiled = tiled.resize((cell * 2, cell * 2))
    grid_w, grid_h = cols * cell + (cols - 1) * PAD, rows * cell + (rows - 1) * PAD
    width = ex.width + tiled.width + grid_w + 4 * PAD
    height = max(ex.height, tiled.height, grid_h) + 3 * PAD + 12
    sheet = Image.new("RGB", (width, height), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    y0 = 2 * PAD + 12
    _label(draw, (PAD, PAD), "exemplar")
    sheet.paste(ex, (PAD, y0))
    x = 2 * PAD + ex.width
    _label(draw, (x, PAD), f"sample 1 tiled {tile_repeats}x{tile_repeats}")
    sheet.paste(tiled, (x, y0))
    x += tiled.width + PAD
    _label(draw, (x, PAD), "samples")
    for i, s in enumerate(samples):
        sheet.paste(Image.fromarray(s), (x + (i % cols) * (cell + PAD), y0 + (i // cols) * (cell + PAD)))
    return sheet


def loss_plot(history: list[dict], width: int = 640, height: int = 320) -> Image.Image:
    """Line plot of every numeric `loss_*` series in the history, smoothed over 25 steps."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    keys = sorted({k for h in history for k in h if k.startswith("loss_")})
    if not history or not keys:
        _label(draw, (10, 10), "no steps yet")
        return img
    series = {}
    for k in keys:
        v = np.array([h.get(k, np.nan) for h in history], dtype=np.float64)
        kernel = np.ones(min(25, len(v))) / min(25, len(v))
        series[k] = np.convolve(np.nan_to_num(v), kernel, mode="valid")
    lo = min(float(s.min()) for s in series.values())
    hi = max(float(s.max()) for s in series.values())
    hi = hi if hi > lo else lo + 1
    left, top, right, bottom = 50, 20, width - 10, height - 30
    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    colours = [(200, 40, 40), (40, 90, 200), (30, 150, 60), (160, 90, 10)]
    for i, (k, s) in enumerate(series.items()):
        xs = left + np.linspace(0, 1, len(s)) * (right - left)
        ys = bottom - (s - lo) / (hi - lo) * (bottom - top)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colours[i % 4], width=2)
        _label(draw, (left + 10 + 120 * i, bottom + 8), k)
        draw.line((left + 80 + 120 * i, bottom + 14, left + 100 + 120 * i, bottom + 14), fill=colours[i % 4], width=2)
    _label(draw, (4, top), f"{hi:.2f}")
    _label(draw, (4, bottom - 10), f"{lo:.2f}")
    _label(draw, (right - 120, top + 4), f"steps: {history[-1].get('step', len(history)) + 1}")
    return img


def image_grid(images: list[np.ndarray], columns: int = 8, scale: int = 2, checker: int = 8) -> Image.Image:
    """RGBA images on a light checkerboard (so transparency shows), `scale`x nearest-neighbour."""
    h, w = images[0].shape[:2]
    rows = (len(images) + columns - 1) // columns
    gap = 4
    sheet = Image.new("RGB", (columns * (w * scale + gap) + gap, rows * (h * scale + gap) + gap), (240, 240, 240))
    yy, xx = np.mgrid[0 : h * scale, 0 : w * scale]
    board = np.where(((yy // checker) + (xx // checker)) % 2 == 0, 255, 214).astype(np.uint8)
    board_img = Image.fromarray(np.stack([board] * 3, axis=-1), "RGB").convert("RGBA")
    for i, img in enumerate(images):
        tile = Image.fromarray(img, "RGBA").resize((w * scale, h * scale), Image.Resampling.NEAREST)
        cell = Image.alpha_composite(board_img, tile).convert("RGB")
        r, c = divmod(i, columns)
        sheet.paste(cell, (gap + c * (w * scale + gap), gap + r * (h * scale + gap)))
    return sheet


def data_vs_samples(real: list[np.ndarray], fake: list[np.ndarray], columns: int = 12) -> Image.Image:
    """A sheet a person can judge: held-out training images above, generated samples below."""
    top, bottom = image_grid(real, columns), image_grid(fake, columns)
    label_h = 22
    sheet = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height + 2 * label_h), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    _label(draw, (PAD, 4), "held-out training images (not seen in training)")
    sheet.paste(top, (0, label_h))
    _label(draw, (PAD, label_h + top.height + 4), "generated samples (EMA generator, random seeds and categories)")
    sheet.paste(bottom, (0, 2 * label_h + top.height))
    return sheet


def class_sheet(
    classes: list[str], real: dict[int, np.ndarray], fake: dict[int, list[np.ndarray]], band: int = 26
) -> Image.Image:
    """A sheet for a model with categories: per category a column, a held-out image on top and the
    model's samples of that category below; the categories in bands of `band` columns."""
    h, w = next(iter(fake.values()))[0].shape[:2]
    blank = np.zeros((h, w, 4), dtype=np.uint8)
    rows = 1 + max(len(v) for v in fake.values())
    label_h = 22
    parts = []
    for start in range(0, len(classes), band):
        cols = list(range(start, min(start + band, len(classes))))
        cells = [real.get(c, blank) for c in cols]
        for r in range(rows - 1):
            cells += [fake[c][r] if r < len(fake[c]) else blank for c in cols]
        title = f"{classes[cols[0]]} ... {classes[cols[-1]]}: held-out image (top row), generated samples below"
        parts.append((title, image_grid(cells, columns=len(cols), scale=1)))
    width = max(g.width for _, g in parts)
    sheet = Image.new("RGB", (width, sum(g.height + label_h for _, g in parts)), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for title, grid in parts:
        _label(draw, (PAD, y + 4), title)
        sheet.paste(grid, (0, y + label_h))
        y += label_h + grid.height
    return sheet


TRACK_COLOURS = [(200, 40, 40), (40, 120, 200), (30, 150, 60), (150, 80, 180), (200, 140, 20), (60, 60, 60)]


def piano_roll(
    notes: list[tuple[int, int, int, int]], steps: int, low: int, pitches: int, scale: int = 3
) -> Image.Image:
    """Notes (track, pitch, start, length) drawn as coloured bars, one colour per track, bar lines
    every 16 steps; each note is one pixel shorter than its length so repeated notes show."""
    img = Image.new("RGB", (steps * scale, pitches * scale), "white")
    draw = ImageDraw.Draw(img)
    for bar in range(0, steps, 16):
        draw.line((bar * scale, 0, bar * scale, pitches * scale), fill=(190, 190, 190))
    for octave_c in range(low + (-low) % 12, low + pitches, 12):
        y = (low + pitches - 1 - octave_c) * scale
        draw.line((0, y + scale - 1, steps * scale, y + scale - 1), fill=(235, 235, 235))
    for track, pitch, start, length in notes:
        y = (low + pitches - 1 - pitch) * scale
        x0, x1 = start * scale, (start + length) * scale - 2
        draw.rectangle((x0, y, max(x0, x1), y + scale - 1), fill=TRACK_COLOURS[track % len(TRACK_COLOURS)])
    return img


def alphabet_rows(rows: list[tuple[str, list[np.ndarray]]], classes: list[str], band: int = 31) -> Image.Image:
    """Rows of RGBA cells (one latent each, a cell per category), labelled, in bands of `band`
    categories so the sheet stays readable; each band is headed by its first and last category."""
    parts = []
    for start in range(0, len(classes), band):
        stop = min(start + band, len(classes))
        title = f"{classes[start]} ... {classes[stop - 1]}: each row one latent, each column a category"
        cells = [cell for _, row in rows for cell in row[start:stop]]
        parts.append((title, image_grid(cells, columns=stop - start, scale=1)))
    label_w, label_h = 70, 22
    width = label_w + max(g.width for _, g in parts)
    sheet = Image.new("RGB", (width, sum(g.height + label_h for _, g in parts)), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for title, grid in parts:
        _label(draw, (PAD, y + 4), title)
        sheet.paste(grid, (label_w, y + label_h))
        row_h = grid.height // len(rows)
        for r, (name, _) in enumerate(rows):
            _label(draw, (PAD, y + label_h + r * row_h + row_h // 2 - 6), name)
        y += label_h + grid.height
    return sheet


def roll_sheet(rows: list[tuple[str, list[Image.Image]]], columns: int = 4) -> Image.Image:
    """Labelled groups of piano rolls, e.g. held-out real phrases above generated ones."""
    cell_w, cell_h = rows[0][1][0].size
    label_h = 22
    lines = sum((len(imgs) + columns - 1) // columns for _, imgs in rows)
    width = columns * (cell_w + PAD) + PAD
    height = lines * (cell_h + PAD) + len(rows) * label_h + PAD
    sheet = Image.new("RGB", (width, height), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for label, imgs in rows:
        _label(draw, (PAD, y + 5), label)
        y += label_h
        for i, img in enumerate(imgs):
            r, c = divmod(i, columns)
            sheet.paste(img, (PAD + c * (cell_w + PAD), y + r * (cell_h + PAD)))
        y += ((len(imgs) + columns - 1) // columns) * (cell_h + PAD)
    return sheet


def direction_sheet(rows: list[tuple[str, list[Image.Image]]], values: list[float], bases: int) -> Image.Image:
    """One row per direction, its name on the left: for each of `bases` starting outputs, that
    output moved by each of `values` along the direction; the values head the columns."""
    cell_w, cell_h = rows[0][1][0].size
    label_w, head_h, group_gap = 84, 18, 2 * PAD
    group_w = len(values) * (cell_w + PAD)
    sheet = Image.new("RGB", (label_w + bases * (group_w + group_gap), head_h + len(rows) * (cell_h + PAD) + PAD), (240, 240, 240))  # fmt: skip
    draw = ImageDraw.Draw(sheet)
    for base in range(bases):
        for i, value in enumerate(values):
            _label(
                draw,
                (label_w + base * (group_w + group_gap) + i * (cell_w + PAD) + cell_w // 2 - 8, 4),
                f"{value:+g}" if value else "0",
            )
    for r, (label, cells) in enumerate(rows):
        y = head_h + r * (cell_h + PAD)
        _label(draw, (PAD, y + cell_h // 2 - 6), label)
        for i, cell in enumerate(cells):
            base, column = divmod(i, len(values))
            sheet.paste(cell, (label_w + base * (group_w + group_gap) + column * (cell_w + PAD), y))
    return sheet
