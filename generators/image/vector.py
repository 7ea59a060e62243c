"""An image's ink as a vector outline (SVG), for glyphs and icons that must scale to any size.

The outline is the one the smooth upscale draws (adapter.smooth_upscale): the alpha, blurred by
EDGE_BLUR native pixels, upscaled (Lanczos) to TRACE_SCALE times the native size as a smooth
field, and the line where that field crosses one half. It is traced by marching squares into
closed loops, thinned where straight (Douglas-Peucker, to TOLERANCE native pixels) and drawn as
quadratic curves through the midpoints of its points, so it has no corners the field did not
have. Loops nest (a counter of an "o" is a loop inside a loop) and fill even-odd. The whole
outline is filled with one colour, the ink's mean (alpha-weighted): a vector glyph is a
silhouette, as a font's is. Coordinates are native pixels (viewBox 0 0 64 64 for a 64 px model),
so the same image gives the same outline at every `size`; only the SVG's width and height change.
"""

from __future__ import annotations

import numpy as np

from ganbridge.generators.image.field import upscaled

TRACE_SCALE = 4  # the field is traced at 4x the native size: points every quarter native pixel
TOLERANCE = 0.05  # native pixels: the most a thinned outline strays from the traced one
LEVEL = 0.5  # the field's level that is the edge, as in smooth_upscale

# Marching squares: for each cell's corners inside the outline (top-left 8, top-right 4,
# bottom-right 2, bottom-left 1), the pairs of the cell's sides its outline joins. The two saddles
# (5 and 10) are settled by the cell's centre below (a value of two entries: outside, inside).
_SIDES: dict[int, tuple] = {
    1: (("left", "bottom"),),
    2: (("bottom", "right"),),
    3: (("left", "right"),),
    4: (("top", "right"),),
    5: ((("left", "bottom"), ("top", "right")), (("left", "top"), ("bottom", "right"))),
    6: (("top", "bottom"),),
    7: (("left", "top"),),
    8: (("left", "top"),),
    9: (("top", "bottom"),),
    10: ((("left", "top"), ("bottom", "right")), (("top", "right"), ("left", "bottom"))),
    11: (("top", "right"),),
    12: (("left", "right"),),
    13: (("bottom", "right"),),
    14: (("left", "bottom"),),
}


def outline_field(alpha: np.ndarray) -> np.ndarray:
    """The smooth field whose half-level line is the outline, at TRACE_SCALE times the size of
    `alpha` (0-255, square)."""
    return upscaled(alpha.astype(np.float32) / 255.0, len(alpha) * TRACE_SCALE).astype(np.float64)


def trace(field: np.ndarray, level: float = LEVEL) -> list[np.ndarray]:
    """The closed loops where `field` crosses `level`, each an (N, 2) array of (x, y) in the
    field's pixels (a pixel's centre at its index plus 1/2). Outside the field counts as below
    the level, so every loop closes."""
    f = np.pad(field.astype(np.float64), 1, constant_values=min(float(field.min()), level) - 1.0)
    inside = f > level
    case = 8 * inside[:-1, :-1] + 4 * inside[:-1, 1:] + 2 * inside[1:, 1:] + inside[1:, :-1]
    # an edge point's key: ("h", i, j) on the edge from (i, j) to (i, j + 1), ("v", i, j) from (i, j) to (i + 1, j)
    links: dict[tuple, list[tuple]] = {}
    for i, j in zip(*np.nonzero((case > 0) & (case < 15))):
        side = {"top": ("h", i, j), "bottom": ("h", i + 1, j), "left": ("v", i, j), "right": ("v", i, j + 1)}
        pairs = _SIDES[int(case[i, j])]
        if int(case[i, j]) in (5, 10):
            centre = (f[i, j] + f[i, j + 1] + f[i + 1, j] + f[i + 1, j + 1]) / 4 > level
            pairs = pairs[int(centre)]
        for a, b in pairs:
            links.setdefault(side[a], []).append(side[b])
            links.setdefault(side[b], []).append(side[a])
    loops = []
    while links:  # every edge point joins two segments (the field is padded), so each walk closes
        start = next(iter(links))
        loop, previous, point = [], None, start
        while not loop or point != start:
            loop.append(point)
            ends = links.pop(point)
            previous, point = point, ends[1] if ends[0] == previous else ends[0]
        loops.append(np.array([_position(f, key, level) for key in loop]))
    return loops


def _position(f: np.ndarray, key: tuple, level: float) -> tuple[float, float]:
    """Where on its edge the field crosses the level, linearly, in the unpadded field's pixels."""
    kind, i, j = key
    a, b = f[i, j], (f[i, j + 1] if kind == "h" else f[i + 1, j])
    t = (level - a) / (b - a)  # a crossing: one end at or below the level, the other above
    x, y = (j + t, i) if kind == "h" else (j, i + t)
    return x - 1 + 0.5, y - 1 + 0.5  # less the padding; a pixel's centre is at its index + 1/2


def thinned(loop: np.ndarray, tolerance: float) -> np.ndarray:
    """A closed loop with the points dropped that lie within `tolerance` of the line through
    their neighbours kept (Douglas-Peucker, on the loop cut at its two farthest-apart points)."""
    if len(loop) < 4:
        return loop
    first = 0
    second = int(np.argmax(((loop - loop[first]) ** 2).sum(1)))
    halves = [loop[first : second + 1], np.vstack([loop[second:], loop[:1]])]
    kept = [_douglas_peucker(half, tolerance) for half in halves]
    return np.vstack([kept[0][:-1], kept[1][:-1]])


def _douglas_peucker(points: np.ndarray, tolerance: float) -> np.ndarray:
    keep = np.zeros(len(points), bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        a, b = points[lo], points[hi]
        span = b - a
        length = float(np.hypot(*span))
        rest = points[lo + 1 : hi] - a
        if length < 1e-12:
            distance = np.hypot(rest[:, 0], rest[:, 1])
        else:
            distance = np.abs(span[0] * rest[:, 1] - span[1] * rest[:, 0]) / length
        far = int(np.argmax(distance))
        if distance[far] > tolerance:
            keep[lo + 1 + far] = True
            stack += [(lo, lo + 1 + far), (lo + 1 + far, hi)]
    return points[keep]


def path_data(loops: list[np.ndarray]) -> str:
    """SVG path data: each loop a closed run of quadratic curves, from the midpoint of each pair
    of neighbouring points to the next, with the point between them as the control point."""
    parts = []
    for loop in loops:
        if len(loop) < 3:
            continue
        middles = (loop + np.roll(loop, -1, axis=0)) / 2
        steps = [f"M{_xy(middles[-1])}"]
        steps += [f"Q{_xy(point)} {_xy(middle)}" for point, middle in zip(loop, middles)]
        parts.append("".join(steps) + "Z")
    return "".join(parts)


def _xy(point: np.ndarray) -> str:
    return f"{_number(point[0])} {_number(point[1])}"


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def ink_colour(pixels: np.ndarray) -> str:
    """The alpha-weighted mean colour of an RGBA image's ink, as #rrggbb (black without ink)."""
    alpha = pixels[..., 3].astype(np.float64)
    if alpha.sum() == 0:
        return "#000000"
    mean = (pixels[..., :3].astype(np.float64) * alpha[..., None]).sum((0, 1)) / alpha.sum()
    return "#" + "".join(f"{int(round(c)):02x}" for c in mean)


def svg_outline(pixels: np.ndarray, size: int, background: str) -> bytes:
    """A native RGBA image's ink as an SVG document `size` pixels a side (see module docstring)."""
    h, w = pixels.shape[:2]
    loops = [thinned(loop / TRACE_SCALE, TOLERANCE) for loop in trace(outline_field(pixels[..., 3]))]
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {w} {h}">'
    body = "" if background == "transparent" else f'<rect width="{w}" height="{h}" fill="{background.lower()}"/>'
    d = path_data(loops)
    if d:
        body += f'<path fill="{ink_colour(pixels)}" fill-rule="evenodd" d="{d}"/>'
    return (head + body + "</svg>\n").encode("ascii")
