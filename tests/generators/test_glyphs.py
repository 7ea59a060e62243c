"""`ganbridge data glyphs` on Debian's real DejaVu fonts: layout, licence filter, bad input, and a
conditional model trained on the result."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from ganbridge.generators.image.adapter import ImageGenerator
from ganbridge.generators.image.glyphs import BASELINE, CAP_HEIGHT, MARGIN, SIZE, class_name
from ganbridge.generators.image.model import load_image_network
from tests.cli.test_cli import ganbridge
from tests.conftest import missing_host

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(scope="module")
def dejavu() -> Path:
    if not (DEJAVU / "DejaVuSans.ttf").is_file():
        missing_host("the DejaVu fonts", "apt-get install fonts-dejavu-core")
    return DEJAVU


@pytest.fixture(scope="module")
def glyph_folder(dejavu, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("glyphs")
    r = ganbridge("data", "glyphs", "--out", str(out), "--fonts", str(dejavu), "--chars", "AHg8")
    assert r.returncode == 0, r.stderr
    assert "categories" in r.stdout and "Bitstream Vera (DejaVu)" in r.stdout
    return out


def ink_rows(path: Path) -> np.ndarray:
    alpha = np.asarray(Image.open(path))[..., 3]
    return np.nonzero(alpha.max(axis=1) > 127)[0]


def test_every_face_draws_every_character_on_one_layout(glyph_folder):
    folders = sorted(p.name for p in glyph_folder.iterdir() if p.is_dir())
    assert folders == sorted(class_name(c) for c in "AHg8") == ["digit-8", "lower-g", "upper-A", "upper-H"]
    faces = {p.name for p in (glyph_folder / "upper-A").glob("*.png")}
    assert len(faces) >= 20 and all({p.name for p in (glyph_folder / f).glob("*.png")} == faces for f in folders)
    for face in faces:
        h = ink_rows(glyph_folder / "upper-H" / face)
        assert abs(h[-1] + 1 - BASELINE) <= 1  # H sits on the baseline...
        assert CAP_HEIGHT - 3 <= len(h) <= CAP_HEIGHT + 1  # ...at the cap height (smaller only if it had to shrink)
        assert ink_rows(glyph_folder / "lower-g" / face)[-1] > BASELINE + 2  # the descender goes below it
        for folder in folders:
            img = np.asarray(Image.open(glyph_folder / folder / face))
            assert img.shape == (SIZE, SIZE, 4) and img[..., :3].max() == 0  # black ink, opacity in alpha
            border = np.ones((SIZE, SIZE), dtype=bool)
            border[MARGIN - 1 : SIZE - MARGIN + 1, MARGIN - 1 : SIZE - MARGIN + 1] = False
            assert img[..., 3][border].max() == 0, f"{folder}/{face} touches the edge"
    record = json.loads((glyph_folder / "dataset.json").read_text())
    assert record["images"] == 4 * len(faces) and record["license"].startswith("Bitstream Vera (DejaVu)")
    fonts = json.loads((glyph_folder / "fonts.json").read_text())
    assert len(fonts) == len(faces) and all(f["licence"] == "Bitstream Vera (DejaVu)" and f["copyright"] for f in fonts)


@pytest.mark.real_host
def test_a_font_without_an_accepted_licence_is_skipped_and_named(dejavu, tmp_path):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name, licence in (("Open", "https://openfontlicense.org"), ("Closed", "All rights reserved")):
        font = TTFont(dejavu / "DejaVuSans.ttf")
        table = font["name"]
        for record in list(table.names):
            if record.nameID in (13, 14):
                table.removeNames(nameID=record.nameID)
        table.setName(licence, 14, 3, 1, 0x409)
        table.setName(f"Test {name}", 4, 3, 1, 0x409)
        font.save(fonts / f"{name}.ttf")
    out = tmp_path / "out"
    r = ganbridge("data", "glyphs", "--out", str(out), "--fonts", str(fonts), "--chars", "Ab")
    assert r.returncode == 0, r.stderr
    assert "skipped font: Test Closed (Closed.ttf: licence not one of" in r.stdout
    assert sorted(p.name for p in (out / "upper-A").iterdir()) == ["test-open.png"]
    assert json.loads((out / "fonts.json").read_text())[0]["licence"] == "SIL OFL 1.1"


@pytest.mark.real_host
def test_a_face_that_draws_another_faces_glyphs_is_left_out_and_named(dejavu, tmp_path):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        (fonts / name).write_bytes((dejavu / name).read_bytes())
    twin = TTFont(dejavu / "DejaVuSans.ttf")  # the same outlines under another name, as Noto Sans Math is
    twin["name"].setName("DejaVu Sans Twin", 4, 3, 1, 0x409)
    twin.save(fonts / "Twin.ttf")
    out = tmp_path / "out"
    r = ganbridge("data", "glyphs", "--out", str(out), "--fonts", str(fonts), "--chars", "AHg8")
    assert r.returncode == 0, r.stderr
    assert "left out DejaVu Sans Twin: draws the glyphs of DejaVu Sans (median RMS 0.0)" in r.stdout
    assert sorted(p.name for p in (out / "upper-A").iterdir()) == ["dejavu-sans-bold.png", "dejavu-sans.png"]
    record = json.loads((out / "dataset.json").read_text())
    assert record["images"] == 8 and [t["face"] for t in record["twin_faces"]] == ["DejaVu Sans Twin"]
    assert [f["name"] for f in json.loads((out / "fonts.json").read_text())] == ["DejaVu Sans", "DejaVu Sans Bold"]


def test_glyphs_are_held_out_by_face(glyph_folder):
    """Evaluation meets faces the model never trained on: every held-out face with all its characters."""
    from ganbridge.generators.image.data import faces_of, font_of_files, held_out_mask, load_folder

    files = sorted(glyph_folder.glob("*/*.png"))
    names = [str(p.relative_to(glyph_folder)) for p in files]
    face_of = faces_of(font_of_files(glyph_folder, files))
    assert len(face_of) == len(names) and len(set(face_of.values())) >= 20
    mask = held_out_mask(names, face_of)
    held = {face_of[n] for n, m in zip(names, mask) if m}
    assert 2 <= len(held) <= len(set(face_of.values())) // 5
    assert all(m == (face_of[n] in held) for n, m in zip(names, mask))  # a held face: all 4 characters
    assert len(load_folder(glyph_folder).held_out) == 4 * len(held)
    # a folder of few faces, or of other images, is held out image by image, as before
    few = {n: f for n, f in face_of.items() if f in sorted(held)[:1]}
    assert held_out_mask(names, few).sum() == -(-len(names) // 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chars", "A!"], "--chars must be ASCII letters and digits"),
        (["--fonts", "/no/such/fonts"], "no such font folder: /no/such/fonts"),
        (["--fonts", "{empty}"], "apt-get install fonts-dejavu-core"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_nothing_written(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    r = ganbridge("data", "glyphs", "--out", str(out), *[a.replace("{empty}", str(tmp_path / "empty")) for a in args])
    assert r.returncode == 1 and message in r.stderr
    assert not out.exists()


def test_a_conditional_model_trains_on_the_glyphs_and_offers_each_character(glyph_folder, tmp_path):
    r = ganbridge(
        "train", "image", "--data", str(glyph_folder), "--out", str(tmp_path), "--name", "glyphs",
        "--steps", "2", "--batch", "8", "--width", "8", "--sample-every", "2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = tmp_path / "glyphs.safetensors"
    card = json.loads(path.with_suffix(".json").read_text())
    assert (
        card["data"]["license"].startswith("Bitstream Vera (DejaVu)") and "DejaVu Sans Bold" in card["data"]["source"]
    )
    gen = ImageGenerator([load_image_network(path)])
    schema = json.dumps(gen.params_model.model_json_schema())
    assert all(name in schema for name in ("upper-A", "upper-H", "lower-g", "digit-8"))
    params = gen.params_model.model_validate({"model": "glyphs", "category": "lower-g"})
    assert gen.render([params], [gen.random_latent(params, 3)])[0].data.startswith(b"\x89PNG")
    # training ends by making the model's steering gallery, and the install copies it too
    assert (
        "making the steering gallery of glyphs" in r.stdout
        and "glyphs.gallery.safetensors" in r.stdout.splitlines()[-1]
    )
    assert json.loads(path.with_suffix(".json").read_text())["gallery"]["count"] == 2048


SHIPPED = Path(__file__).resolve().parents[2] / "generators" / "weights" / "image" / "glyphs.safetensors"


def test_shipped_glyph_model_draws_the_character_asked_for():
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert "SIL OFL 1.1" in card["data"]["license"] and "DejaVu Sans Bold (Bitstream Vera" in card["data"]["source"]
    table = card["metrics"]["eval"]
    assert table["generated"]["class_agreement"] > 10 * table["untrained (ceiling)"]["class_agreement"]
    gen = ImageGenerator([load_image_network(SHIPPED)])
    params = gen.params_model.model_validate({"model": "glyphs", "category": "upper-O", "size": 64, "seed": 1})
    out = gen.render([params], [gen.random_latent(params, 1)])[0]
    img = np.asarray(Image.open(io.BytesIO(out.data)))
    assert out.extra["category"] == "upper-O" and img.shape == (64, 64, 4)
    assert img[..., 3].min() == 0 and img[..., 3].max() > 200  # ink on transparency


def glyph_alphas(edges: str, count: int = 124, margin: int = 0, truncation: float = 1.0) -> np.ndarray:
    gen = ImageGenerator([load_image_network(SHIPPED)])
    params = gen.params_model.model_validate(
        {"model": "glyphs", "size": 64, "edges": edges, "margin": margin, "truncation": truncation}
    )
    outs = gen.render([params] * count, [gen.random_latent(params, seed) for seed in range(count)])
    return np.stack([np.asarray(Image.open(io.BytesIO(o.data)))[..., 3] for o in outs]).astype(int)


def test_crisp_edges_clear_the_haze_the_network_leaves():
    soft, crisp = glyph_alphas("soft"), glyph_alphas("crisp")
    faint = lambda a: float(((a >= 1) & (a <= 15)).mean())  # noqa: E731
    assert faint(soft) > 0.05  # what the network draws: a faint veil over much of the canvas
    assert faint(crisp) < 0.01  # the goal; what is left is the ramp of an edge, next to ink
    # the glyph itself stays: where the network drew it solidly, it is solid; where not at all, empty
    assert (crisp[soft >= 232] == 255).all() and (crisp[soft < 24] == 0).all()
    inked = lambda a: (a > 128).sum(axis=(1, 2))  # noqa: E731
    assert np.abs(inked(crisp) - inked(soft)).max() <= 0.02 * 64 * 64


def test_a_margin_clears_the_box_the_network_draws_at_the_canvas_edge():
    def ring(alphas: np.ndarray, width: int) -> np.ndarray:
        inner = np.zeros(alphas.shape[1:], bool)
        inner[width:-width, width:-width] = True
        return alphas[:, ~inner]

    drawn, kept = glyph_alphas("crisp"), glyph_alphas("crisp", margin=1)
    assert (ring(drawn, 1) > 0).any(axis=1).mean() > 0.15  # the network inks the outermost pixel often
    assert (ring(kept, 1) == 0).all()  # the default margin: nothing there
    assert (kept[:, 1:-1, 1:-1] == drawn[:, 1:-1, 1:-1]).all()  # and nothing inside it changed
    wide = glyph_alphas("soft", margin=3)
    assert (ring(wide, 3) == 0).all() and (ring(wide, 4) > 0).any()


def test_any_picks_every_character_about_as_often():
    gen = ImageGenerator([load_image_network(SHIPPED)])
    params = gen.params_model.model_validate({"model": "glyphs"})
    classes = gen.models["glyphs"].net.config.classes
    counts = {}
    for draw in (1, 2):
        latents = [gen.random_latent(params, seed, draw) for seed in range(3100)]
        counts[draw] = np.bincount([gen.label(params, z) for z in latents], minlength=len(classes))
    assert counts[1].max() / counts[1].min() > 2.5  # as seeds were drawn before: 3.5x in 1,240
    assert counts[2].max() / counts[2].min() < 2.2 and float((((counts[2] - 50) ** 2) / 50).sum()) < 100
    # only the choice moved: the rest of a seed's latent is what it was
    old, new = gen.random_latent(params, 7, 1), gen.random_latent(params, 7)
    assert np.array_equal(old["z"], new["z"]) and not np.array_equal(old["class"], new["class"])


def test_a_seeded_recipe_remakes_with_the_draw_it_was_made_with(tmp_path):
    """A recipe without `latent_draw` was drawn before discrete parts were evened out: remade so."""
    from ganbridge.cli.generate import write_file
    from ganbridge.core.provenance import make_recipe

    gen = ImageGenerator([load_image_network(SHIPPED)])
    plain = gen.params_model.model_validate({"model": "glyphs"})
    # a seed whose character the two draws pick differently, so the draw a remake uses shows
    seed = next(s for s in range(50) if gen.label(plain, gen.random_latent(plain, s, 1)) != gen.label(
        plain, gen.random_latent(plain, s)))  # fmt: skip
    params = gen.params_model.model_validate({"model": "glyphs", "size": 64, "seed": seed})
    path = tmp_path / "glyph.png"
    recipe = make_recipe("image", gen.checkpoint_for(params).as_dict(), params.model_dump(mode="json"), seed)
    assert recipe["latent_draw"] == 2
    for draw, written in ((2, recipe), (1, {k: v for k, v in recipe.items() if k != "latent_draw"})):
        out = gen.render([params], [gen.random_latent(params, seed, draw)])[0]
        write_file(path, out.data, out.format, written, None, None)
        r = ganbridge("verify", str(path))
        assert "remade byte-identically from its recipe" in r.stdout, (draw, r.stdout + r.stderr)
    write_file(path, out.data, out.format, dict(recipe, latent_draw=9), None, None)
    r = ganbridge("verify", str(path))
    assert r.returncode != 0 and "latent_draw 9 is not one this version knows (1-2)" in r.stdout, r.stdout + r.stderr


def test_a_recipe_from_before_edges_existed_is_remade_soft(tmp_path):
    """Recipes store every param, so one without `edges` and `margin` was made before them, with
    the network's own alpha to the canvas's edge: remade (and verified) so, byte for byte."""
    from ganbridge.cli.generate import write_file
    from ganbridge.core.provenance import make_recipe

    gen = ImageGenerator([load_image_network(SHIPPED)])
    params = gen.params_model.model_validate({"model": "glyphs", "size": 64, "seed": 5, "edges": "soft", "margin": 0})
    out = gen.render([params], [gen.random_latent(params, 5)])[0]
    old = {k: v for k, v in params.model_dump(mode="json").items() if k not in ("edges", "margin")}
    recipe = make_recipe("image", gen.checkpoint_for(params).as_dict(), old, 5)
    path = tmp_path / "old.png"
    write_file(path, out.data, out.format, recipe, None, None)
    r = ganbridge("verify", str(path))  # unsigned here, so not "verified", but the pixels are the same
    assert "remade byte-identically from its recipe" in r.stdout, r.stdout + r.stderr
    crisp = gen.render([params.model_copy(update={"edges": "crisp"})], [gen.random_latent(params, 5)])[0]
    write_file(path, crisp.data, crisp.format, recipe, None, None)
    r = ganbridge("verify", str(path))
    assert r.returncode == 1 and "byte-identically" not in r.stdout, r.stdout


def test_smooth_upscaling_draws_the_glyph_a_font_draws_at_that_size(dejavu):
    """A glyph rendered at 512 px, boxed down to the model's 64 and upscaled again: smooth comes
    back far nearer the 512 px render than nearest (steps) or Lanczos (a ramp 8 pixels wide), with
    an edge as narrow as the font's own."""
    from ganbridge.generators.image.adapter import finish

    errors: dict[str, list[float]] = {"nearest": [], "lanczos": [], "smooth": []}
    edges: dict[str, list[float]] = {m: [] for m in errors}
    for name in ("DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans-Oblique.ttf"):
        font = ImageFont.truetype(str(dejavu / name), 300)
        for char in "AgR8s":
            big = Image.new("L", (512, 512), 0)
            ImageDraw.Draw(big).text((256, 300), char, font=font, fill=255, anchor="ms")
            truth = np.asarray(big, np.float32) / 255
            native = np.zeros((64, 64, 4), np.uint8)
            native[..., 3] = np.asarray(big.resize((64, 64), Image.Resampling.BOX))
            grey = lambda a: float(((a > 0.02) & (a < 0.98)).sum())  # noqa: E731
            for mode in errors:
                alpha = finish(native, 512, mode, "transparent")[..., 3].astype(np.float32) / 255
                errors[mode].append(float(np.abs(alpha - truth).mean()))
                edges[mode].append(grey(alpha) / grey(truth))
    mean = {m: float(np.mean(v)) for m, v in errors.items()}
    assert mean["smooth"] < 0.3 * min(mean["nearest"], mean["lanczos"]), mean
    assert np.mean(edges["smooth"]) < 1.5 < 5 < np.mean(edges["lanczos"]), edges


def test_smooth_upscaling_keeps_a_colour_to_its_edge():
    from ganbridge.generators.image.adapter import finish

    yy, xx = np.mgrid[:64, :64]
    disc = np.zeros((64, 64, 4), np.uint8)
    disc[(yy - 32) ** 2 + (xx - 32) ** 2 < 20**2] = (230, 40, 20, 255)
    out = finish(disc, 256, "smooth", "transparent").astype(int)
    drawn = out[..., 3] > 0
    assert np.abs(out[drawn][:, :3] - (230, 40, 20)).max() <= 2  # no dark fringe where it meets nothing
    assert ((out[..., 3] > 0) & (out[..., 3] < 255)).sum() < 3 * 2 * np.pi * 80  # an edge about a pixel wide


def test_weight_moves_the_outline_in_or_out_alike_and_keeps_its_colour(dejavu):
    """Real glyphs in red ink, boxed to the native 64 px: their strokes widen with `weight`, new
    ink takes the glyph's colour and lies along its outline, and `weight_for_width` finds the
    weight of a width asked for."""
    from PIL import ImageFilter

    from ganbridge.generators.image.adapter import stroke_width, weight_for_width, weighted

    red = np.array([200, 30, 30])
    for name, char in (("DejaVuSans.ttf", "R"), ("DejaVuSerif.ttf", "g"), ("DejaVuSans-Bold.ttf", "8")):
        big = Image.new("L", (512, 512), 0)
        ImageDraw.Draw(big).text(
            (256, 330), char, font=ImageFont.truetype(str(dejavu / name), 300), fill=255, anchor="ms"
        )
        native = np.zeros((64, 64, 4), np.uint8)
        native[..., 3] = np.asarray(big.resize((64, 64), Image.Resampling.BOX))
        native[native[..., 3] > 0, :3] = red
        assert weighted(native, 0.0) is native
        widths = [stroke_width(weighted(native, w)) for w in (-1.0, -0.5, 0.0, 0.5, 1.0)]
        assert all(a < b for a, b in zip(widths, widths[1:])), (name, widths)
        assert widths[-1] - widths[2] > 0.5 and widths[2] - widths[0] > 0.3, (name, widths)
        bold = weighted(native, 1.0)
        new = (bold[..., 3] > 0) & (native[..., 3] == 0)
        assert new.sum() > 20 and np.abs(bold[new, :3].astype(int) - red).max() < 40  # red, not black
        near = np.asarray(Image.fromarray((native[..., 3] > 0).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5)))
        assert not (bold[..., 3] > 0)[near == 0].any()  # along the outline only: no halo, no haze
        wanted = 1.15 * widths[2]
        assert abs(stroke_width(weighted(native, weight_for_width(native, wanted))) - wanted) < 0.02 * wanted
        assert weight_for_width(native, 100.0) == 1.0 and weight_for_width(native, 0.1) == -1.0
