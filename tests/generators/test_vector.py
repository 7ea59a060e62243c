"""Glyphs as SVG outlines: traced from the same field the smooth upscale draws, checked against
real DejaVu glyphs, carried through the bridge's recipe and credentials, and read by real
Blender's SVG importer."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ganbridge.core.provenance import read_recipe, without_credentials
from ganbridge.generators.image.adapter import finish
from ganbridge.generators.image.vector import TOLERANCE, TRACE_SCALE, outline_field, svg_outline, thinned, trace
from tests.cli.test_cli import ganbridge
from tests.conftest import missing_host
from tests.plugins.blender_support import blender_python

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def native_glyph(char: str, face: str = "DejaVuSerif.ttf") -> tuple[np.ndarray, np.ndarray]:
    """(the glyph at 512 px, alpha 0-255; the same boxed down to 64 px as RGBA ink)."""
    if not (DEJAVU / face).is_file():
        missing_host("the DejaVu fonts", "apt-get install fonts-dejavu-core")
    big = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(big).text((256, 330), char, font=ImageFont.truetype(str(DEJAVU / face), 300), fill=255, anchor="ms")
    native = np.zeros((64, 64, 4), np.uint8)
    native[..., 3] = np.asarray(big.resize((64, 64), Image.Resampling.BOX))
    return np.asarray(big), native


def loops_of(native: np.ndarray) -> list[np.ndarray]:
    return [thinned(loop / TRACE_SCALE, TOLERANCE) for loop in trace(outline_field(native[..., 3]))]


def even_odd(loops: list[np.ndarray], size: int, scale: float) -> np.ndarray:
    """Which pixel centres of a size x size raster lie inside the loops (native units x `scale`),
    by the even-odd rule an SVG fill uses (the loops' points joined by straight lines)."""
    centres = (np.arange(size) + 0.5) / scale
    inside = np.zeros((size, size), bool)
    for loop in loops:
        for (x0, y0), (x1, y1) in zip(loop, np.roll(loop, -1, axis=0)):
            rows = (centres >= min(y0, y1)) & (centres < max(y0, y1))
            if y0 != y1 and rows.any():
                crossing = x0 + (centres[rows] - y0) * (x1 - x0) / (y1 - y0)
                inside[rows] ^= centres[None, :] < crossing[:, None]
    return inside


def test_the_outline_is_the_smooth_upscales_edge_and_near_the_fonts_own():
    for char, holes in (("o", 1), ("8", 2), ("B", 2), ("g", 1), ("l", 0), ("i", 0)):
        font, native = native_glyph(char)
        loops = loops_of(native)
        assert len(loops) == 1 + holes + (char == "i"), (char, len(loops))  # an i's dot is a loop of its own
        inside = even_odd(loops, 512, 8)
        smooth = finish(native, 512, "smooth", "transparent")[..., 3] > 127
        assert (inside != smooth).mean() < 0.002, char  # measured 0.03-0.07%: the same edge
        assert (inside != (font > 127)).mean() < 0.004, char  # measured 0.11-0.28%; the PNG 0.10-0.25%


def test_one_outline_at_every_size_in_one_colour_on_its_background():
    _, native = native_glyph("R")
    native[native[..., 3] > 0, :3] = (200, 30, 30)
    small, large = (svg_outline(native, size, "transparent") for size in (64, 2048))
    assert small.startswith(b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">')
    assert small.replace(b'"64" height="64"', b'"2048" height="2048"', 1) == large  # only the size differs
    assert b'fill="#c81e1e"' in small and b"<rect" not in small  # the ink's colour; nothing behind it
    assert svg_outline(native, 64, "#FFEEDD").count(b'<rect width="64" height="64" fill="#ffeedd"/>') == 1
    path = re.search(rb' d="([^"]+)"', small).group(1).decode()
    assert re.fullmatch(r"(M[-\d. ]+(Q[-\d. ]+)+Z)+", path), path[:80]  # closed runs of quadratic curves
    empty = np.zeros((64, 64, 4), np.uint8)
    assert b"<path" not in svg_outline(empty, 64, "transparent")


def test_an_svg_glyph_carries_its_recipe_and_credentials_and_verifies(tmp_path):
    r = ganbridge("generate", "image", "--param", "format=svg", "--param", "category=upper-R", "--seed", "4",
                  "-o", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.svg")
    data = path.read_bytes()
    assert data.startswith(b"<svg ") and b"<c2pa:manifest>" in data
    recipe = read_recipe(data)
    assert recipe["params"]["format"] == "svg" and recipe["seed"] == 4
    unsigned = without_credentials(data)
    assert b"c2pa" not in unsigned and read_recipe(unsigned) == recipe
    r = ganbridge("verify", str(path))
    assert r.returncode == 0 and "verified: remade byte-identically" in r.stdout, r.stdout + r.stderr
    # a moved point is a changed file
    tampered = re.sub(rb'd="M(\d)', lambda m: b'd="M' + bytes([m.group(1)[0] ^ 1]), data, count=1)
    path.write_bytes(tampered)
    r = ganbridge("verify", str(path))
    assert r.returncode == 1 and "not verified" in r.stdout, r.stdout


@pytest.mark.real_host
def test_real_blender_imports_an_svg_glyph_as_curves_with_its_counters(tmp_path):
    python = blender_python("4.5", "4.5.*")
    r = ganbridge("generate", "image", "--param", "format=svg", "--param", "category=upper-B", "--seed", "2",
                  "-o", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("*.svg")
    script = (
        "import sys, bpy, addon_utils\n"
        'addon_utils.enable("io_curve_svg", default_set=True)\n'
        "bpy.ops.import_curve.svg(filepath=sys.argv[-1])\n"
        '(curve,) = [o for o in bpy.data.objects if o.type == "CURVE"]\n'
        'print("SPLINES", len(curve.data.splines), min(len(s.bezier_points) for s in curve.data.splines))\n'
        'print("SIZE", *curve.dimensions[:2])\n'
    )
    out = subprocess.run([str(python), "-c", script, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line[:5] in ("SPLIN", "SIZE ")}
    splines, fewest_points = map(int, lines["SPLINES"])
    assert splines == 3 and fewest_points >= 8, out.stdout  # a B: its outline and its two counters, curved
    # Blender reads an SVG pixel as 1/90 inch; the glyph's outline spans its ink's box (a native
    # pixel is 4 SVG pixels at the default size 256)
    width, height = (float(v) / (0.0254 / 90) / 4 for v in lines["SIZE"])
    assert 10 < width < 45 and 20 < height < 50, (width, height)


def test_the_bridge_serves_svg_glyphs_as_items_like_any_other(ws):
    import base64

    params = {"format": "svg", "size": 512, "category": "lower-a"}
    ws.send({"type": "generate", "id": "svg-1", "generator": "image", "count": 2, "params": params, "seed": 11})
    msgs = ws.until_final("svg-1")
    assert msgs[-1]["type"] == "done", msgs[-1]
    items = [item for m in msgs if m["type"] == "result" for item in m["items"]]
    assert len(items) == 2
    for item in items:
        assert (item["format"], item["mime"], item["width"], item["category"]) == (
            "svg",
            "image/svg+xml",
            512,
            "lower-a",
        )
        data = base64.b64decode(item["data"])
        assert data.startswith(b'<svg xmlns="http://www.w3.org/2000/svg" width="512"') and b"<path" in data
        assert item["file"].endswith(".svg") and Path(item["file"]).read_bytes() == data
        assert read_recipe(data)["params"]["format"] == "svg"
    # variations of an SVG glyph are SVG glyphs
    ws.send({"type": "variations", "id": "svg-2", "item": items[0]["item"], "count": 1, "strength": 0.2})
    varied = [i for m in ws.until_final("svg-2") if m["type"] == "result" for i in m["items"]]
    assert [i["format"] for i in varied] == ["svg"]


def test_saddles_join_as_the_cells_centre_says_and_every_loop_closes():
    # two inside corners on one diagonal, their cell's centre the mean of its corners (0.5): above
    # a level of 0.4 the two join into one blob, below a level of 0.6 they are two apart
    field = np.array([[1.0, 0.0], [0.0, 1.0]])
    for level, loops in ((0.4, 1), (0.6, 2)):
        traced = trace(field, level)
        assert len(traced) == loops, (level, traced)
        for loop in traced:
            assert len(loop) >= 4 and len({tuple(p) for p in loop}) == len(loop)  # a closed walk, no point twice


def test_an_svg_an_editor_resaved_with_a_declaration_still_reads():
    from ganbridge.core.provenance import embed

    recipe = {"ganbridge": 1, "generator": "image", "checkpoint": {"name": "g", "sha256": "0"}, "params": {"a": "<&>"}}
    plain = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><path d="M0 0Z"/></svg>\n'
    svg = embed(plain, "svg", recipe)
    assert read_recipe(svg) == recipe and read_recipe(b'\xef\xbb\xbf<?xml version="1.0"?>\n' + svg) == recipe
