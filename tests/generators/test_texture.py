"""The texture generator: seamless tiling, maps, training, and safe checkpoint loading."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from ganbridge.core.registry import load_generators
from ganbridge.generators.checkpoint import CheckpointError, load_weights
from ganbridge.generators.gan import metrics
from ganbridge.generators.gan.losses import patch_distribution_loss
from ganbridge.generators.texture.data import load_exemplars, random_crops, resolve_exemplar
from ganbridge.generators.texture.evaluate import appearance_gap, cell_edge_contrast, evaluate
from ganbridge.generators.texture.model import load_texture_network
from ganbridge.generators.texture.train import TextureTrainer, TextureTrainSettings
from tests.conftest import missing_host


@pytest.fixture(scope="module")
def texture():
    return load_generators(None, "cpu")["texture"]


def render(gen, seed=3, **params):
    p = gen.params_model.model_validate(params)
    out = gen.render([p], [gen.random_latent(p, seed)])[0]
    return np.asarray(Image.open(io.BytesIO(out.data)).convert("RGB"), dtype=np.float64), out


def seam_ratio(images: list[np.ndarray], axis: int, stride: int = 16) -> float:
    """Mean |difference| across the wrap seam over that across interior cell boundaries.

    The seam lies on a boundary of the generator's 16-pixel latent cells, so it is compared
    with the interior pairs at the same phase (15|16, 31|32, ...), averaged over many samples:
    for a seamless texture the ratio is about 1; an unrelated edge (a crop of a photo) gives 3-10.
    """
    seams, interior = [], []
    for img in images:
        a = np.moveaxis(img, axis, 0)
        seams.append(np.abs(a[-1] - a[0]).mean())
        idx = np.arange(stride, a.shape[0], stride)
        interior.append(np.abs(a[idx] - a[idx - 1]).mean())
    return float(np.mean(seams) / np.mean(interior))


SEAM_LIMIT = 1.5
SEEDS = range(32)


def renders(gen, seeds=SEEDS, **params) -> list:
    return [render(gen, seed=s, **params)[1] for s in seeds]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.float64)


@pytest.mark.parametrize(("w", "h"), [(64, 64), (160, 96), (256, 256), (512, 320)])
def test_tileable_output_is_seamless_at_requested_size(texture, w, h):
    for model in [c.name for c in texture.checkpoints()]:
        images = [pixels(o.data) for o in renders(texture, model=model, width=w, height=h)]
        assert images[0].shape[:2] == (h, w)
        for axis in (0, 1):
            ratio = seam_ratio(images, axis)
            assert ratio <= SEAM_LIMIT, f"{model} {w}x{h} axis {axis}: seam/interior = {ratio:.2f}"


def test_generator_is_a_function_on_the_torus(texture):
    """Exact check: shifting the latent grid one cell shifts the image 16 px, wrapping around.

    Any seam at the image edge would break this. The periodic channels' phase is moved by the
    (whole-cycle) wave vector so that they shift along with the grid.
    """
    for loaded in texture.models.values():
        net = loaded.net
        p = texture.params_model.model_validate({"model": loaded.ref.name, "width": 160, "height": 96})
        z = texture.random_latent(p, 9)
        h, w = z["local"].shape[1:]
        with torch.no_grad():
            k = net.wave(torch.from_numpy(z["global"])[None]).view(-1, 2).numpy()
        cycles = np.round(k * np.array([h, w]) / (2 * np.pi))
        ky, kx = (2 * np.pi * cycles / np.array([h, w])).T
        pcount = net.config.periodic_dim
        angle = np.arctan2(z["phase"][:pcount], z["phase"][pcount:]) - kx - ky  # one cell right and down
        shifted = dict(z, local=np.roll(z["local"], (1, 1), axis=(1, 2)).copy())
        shifted["phase"] = np.concatenate([np.sin(angle), np.cos(angle)]).astype(np.float32)
        a = net.sample([z], [1.0])[0].astype(int)
        b = net.sample([shifted], [1.0])[0].astype(int)
        diff = np.abs(np.roll(a, (16, 16), axis=(0, 1)) - b)
        assert diff.max() <= 2 and diff.mean() < 0.05, f"{loaded.ref.name}: max {diff.max()}, mean {diff.mean():.3f}"


def test_cell_edge_contrast_sees_the_block_pattern_of_nearest_upsampling(texture):
    """Nearest-neighbour upsampling repeats each cell's features, so neighbours across a 16 px
    cell's edge differ more than others: the shipped brick (upsampled so) shows it, a photo does
    not, and a photo's cells blown up by nearest-neighbour show nothing else."""
    paths, _ = resolve_exemplar("skimage:gravel")
    photo = np.asarray(Image.open(paths[0]).convert("RGB"))[:256, :256]
    assert abs(cell_edge_contrast([photo], 16) - 1) < 0.03
    blocks = photo[::16, ::16].repeat(16, axis=0).repeat(16, axis=1)
    assert cell_edge_contrast([blocks], 16) > 100
    brick = texture.models["brick"]
    p = texture.params_model.model_validate({"model": "brick", "width": 256, "height": 256})
    images = [brick.net.sample([texture.random_latent(p, seed)], [1.0])[0] for seed in range(8)]
    assert cell_edge_contrast(images, 16) > 1.03


def wrap_ratio(images: list[np.ndarray], axis: int) -> float:
    """Mean |difference| across the wrap seam over that between all interior neighbours: for a
    size that is not whole latent cells the output is resampled, so no boundary phase is special."""
    seams, interior = [], []
    for img in images:
        a = np.moveaxis(img, axis, 0)
        seams.append(np.abs(a[-1] - a[0]).mean())
        interior.append(np.abs(np.diff(a, axis=0)).mean())
    return float(np.mean(seams) / np.mean(interior))


@pytest.mark.parametrize(("w", "h", "seeds"), [(300, 200, 16), (777, 513, 10), (33, 47, 32), (100, 1000, 16)])
def test_any_size_is_served_exactly_and_seamless(texture, w, h, seeds):
    for model in [c.name for c in texture.checkpoints()]:
        images = [pixels(o.data) for o in renders(texture, seeds=range(seeds), model=model, width=w, height=h)]
        assert images[0].shape[:2] == (h, w)
        for axis in (0, 1):
            ratio = wrap_ratio(images, axis)
            assert ratio <= SEAM_LIMIT, f"{model} {w}x{h} axis {axis}: seam/interior = {ratio:.2f}"
    plain = [pixels(o.data) for o in renders(texture, seeds=range(6), width=w, height=h, tileable=False)]
    assert plain[0].shape[:2] == (h, w)  # cut from a larger render: its edges do not wrap
    assert max(wrap_ratio(plain, 0), wrap_ratio(plain, 1)) > 2 * SEAM_LIMIT


def test_every_small_size_is_served():
    gen = load_generators(None, "cpu")["texture"]
    for side in range(32, 81):
        for tileable in (True, False):
            image, _ = render(gen, width=side, height=113 - side, tileable=tileable)
            assert image.shape[:2] == (113 - side, side)


def test_at_an_odd_size_a_latent_shift_rolls_the_output(texture):
    """777x513 is rendered at 784x528 (49 x 33 cells) and resampled: a shift of 7 cells across
    (112 px) is 111 px at 777 and one of 11 down (176 px) is 171 px at 513, so shifting the
    latent by whole periods of the resampling rolls the output by whole pixels."""
    loaded = texture.models["brick"]
    p = texture.params_model.model_validate({"model": "brick", "width": 777, "height": 513})
    z = texture.random_latent(p, 4)
    h, w = z["local"].shape[1:]
    assert (h, w) == (33, 49)
    with torch.no_grad():
        k = loaded.net.wave(torch.from_numpy(z["global"])[None]).view(-1, 2).numpy()
    cycles = np.round(k * np.array([h, w]) / (2 * np.pi))
    ky, kx = (2 * np.pi * cycles / np.array([h, w])).T
    pcount = loaded.net.config.periodic_dim
    angle = np.arctan2(z["phase"][:pcount], z["phase"][pcount:]) - 7 * kx - 11 * ky
    shifted = dict(z, local=np.roll(z["local"], (11, 7), axis=(1, 2)).copy())
    shifted["phase"] = np.concatenate([np.sin(angle), np.cos(angle)]).astype(np.float32)
    a, b = (pixels(texture.render([p], [latent])[0].data) for latent in (z, shifted))
    diff = np.abs(np.roll(a, (171, 111), axis=(0, 1)) - b)
    assert diff.max() <= 3 and diff.mean() < 0.05, f"max {diff.max()}, mean {diff.mean():.3f}"


def test_seam_check_catches_a_real_seam():
    import skimage.data

    photo = skimage.data.brick().astype(np.float64)
    rng = np.random.default_rng(0)
    crops = [photo[y : y + 128, x : x + 128] for y, x in rng.integers(0, 384, size=(32, 2))]
    assert min(seam_ratio(crops, 0), seam_ratio(crops, 1)) > 2 * SEAM_LIMIT


def test_non_tileable_output_does_not_wrap(texture):
    tiled, _ = render(texture, width=128, height=128, tileable=True)
    plain, _ = render(texture, width=128, height=128, tileable=False)
    assert plain.shape == tiled.shape and not np.array_equal(plain, tiled)


def test_maps_are_seamless_and_well_formed(texture):
    outs = renders(texture, width=128, height=96, maps=["height", "normal"])
    heights = [pixels(o.attachments["height"]) for o in outs]
    normal = pixels(outs[0].attachments["normal"])
    assert heights[0].shape == (96, 128) and normal.shape == (96, 128, 3)
    assert heights[0].min() == 0 and heights[0].max() == 255
    n = normal / 127.5 - 1
    assert np.allclose(np.linalg.norm(n, axis=-1), 1, atol=0.03) and (n[..., 2] > 0).all()
    for axis in (0, 1):
        assert seam_ratio(heights, axis) <= SEAM_LIMIT


def test_roughness_and_occlusion_maps_are_seamless_and_follow_the_relief(texture):
    outs = renders(texture, width=300, height=200, maps=["height", "normal", "roughness", "ao"])
    assert [list(o.attachments) for o in outs[:1]] == [["height", "normal", "roughness", "ao"]]
    maps = {name: [pixels(o.attachments[name]) for o in outs] for name in ("height", "roughness", "ao")}
    for name, images in maps.items():
        assert images[0].shape == (200, 300), name
        for axis in (0, 1):
            assert wrap_ratio(images, axis) <= SEAM_LIMIT, f"{name} axis {axis}"
    rough, ao, height = maps["roughness"][0], maps["ao"][0], maps["height"][0]
    assert 0.35 * 255 - 1 <= rough.min() and rough.max() <= 0.95 * 255 + 1
    assert ao.max() == 255 and ao.min() < 128  # open ground unoccluded, the deepest hollows dark
    # hollows (low, occluded) are rougher than raised parts
    low, high = height < np.percentile(height, 20), height > np.percentile(height, 80)
    assert rough[low].mean() > rough[high].mean() + 20 and ao[low].mean() < ao[high].mean()


def test_normal_strength_steepens_the_normal_map(texture):
    tilt = []
    for strength in (1, 4, 16):
        _, out = render(texture, width=64, height=64, maps=["normal"], normal_strength=strength)
        z = pixels(out.attachments["normal"])[..., 2] / 127.5 - 1  # 1 where flat
        tilt.append(float((1 - z).mean()))
    assert tilt[0] < tilt[1] < tilt[2]
    _, flat_out = render(texture, width=64, height=64, maps=["normal"], normal_strength=0)
    assert (pixels(flat_out.attachments["normal"])[..., 2] == 255).all()


def test_scale_renders_fewer_cells_and_resamples_them(texture):
    """At scale 2 a 256x256 texture is the 128x128 one (same seed, same latent) resampled to
    twice its size: the same pattern, twice as large, at the asked size."""
    from ganbridge.generators.texture.resample import resize

    big, _ = render(texture, seed=5, width=256, height=256, scale=2)
    small, _ = render(texture, seed=5, width=128, height=128)
    assert np.array_equal(big, resize(small.astype(np.uint8), 256, 256))


def rms_gradient(images: list[np.ndarray]) -> float:
    grey = [img.mean(axis=-1) for img in images]
    return float(np.mean([np.sqrt((np.diff(g, axis=1) ** 2).mean()) for g in grey]))


@pytest.mark.parametrize(("w", "h"), [(256, 256), (300, 200)])
def test_scale_changes_feature_size_and_stays_seamless(texture, w, h):
    grad = {}
    for scale in (0.5, 1, 2):
        images = [pixels(o.data) for o in renders(texture, width=w, height=h, scale=scale)]
        assert images[0].shape[:2] == (h, w)
        for axis in (0, 1):
            # 256 at these scales is whole cells, 16 * scale pixels each: compare like phases
            ratio = seam_ratio(images, axis, int(16 * scale)) if w == 256 else wrap_ratio(images, axis)
            assert ratio <= SEAM_LIMIT, f"scale {scale} axis {axis}: seam/interior = {ratio:.2f}"
        grad[scale] = rms_gradient(images)
    # features twice as large: edges half as steep; half as large: steeper (shrinking filters some)
    assert 1.6 < grad[1] / grad[2] < 2.5 and grad[0.5] / grad[1] > 1.3, grad
    plain, _ = render(texture, width=w, height=h, scale=2, tileable=False)
    assert plain.shape[:2] == (h, w)


def test_scale_out_of_range_is_refused(texture):
    for scale in (0.25, 5):
        with pytest.raises(ValueError, match="scale"):
            texture.params_model.model_validate({"width": 64, "height": 64, "scale": scale})


def test_tint_colours_a_grey_texture_and_keeps_its_relief(texture):
    grey, plain = render(texture, model="brick", width=128, height=128, maps=["height", "normal"])
    assert (grey[..., 0] == grey[..., 1]).all()  # the brick model is grey
    coloured, tinted = render(texture, model="brick", width=128, height=128, maps=["height", "normal"], tint="#C06030")
    mean = coloured.reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - [0xC0, 0x60, 0x30]).max() < 16, mean  # looks the tint on average
    light = grey.mean(axis=-1)
    order = np.argsort(light.ravel())
    assert (np.diff(coloured.mean(axis=-1).ravel()[order]) >= -1).all()  # lighter stays lighter
    assert tinted.attachments == plain.attachments  # a tint recolours; the relief is the same
    assert texture.params_model.model_validate({"width": 64, "height": 64, "tint": "#C06030"}).tint == "#c06030"


@pytest.mark.parametrize("tint", ["red", "#c0603", "#c06030ff", "c06030", "#g06030"])
def test_a_tint_that_is_not_a_colour_is_refused(texture, tint):
    with pytest.raises(ValueError, match="#rrggbb"):
        texture.params_model.model_validate({"width": 64, "height": 64, "tint": tint})


def test_a_map_asked_twice_is_refused(texture):
    with pytest.raises(ValueError, match="once"):
        texture.params_model.model_validate({"width": 64, "height": 64, "maps": ["ao", "ao"]})


@pytest.mark.parametrize("size", [64, 256])
def test_same_latent_same_pixels_in_any_batch(texture, size):
    p = texture.params_model.model_validate({"width": size, "height": size})
    latents = [texture.random_latent(p, s) for s in range(4)]
    alone = texture.render([p], [latents[2]])[0].data
    for n in (2, 3, 4):
        assert (
            texture.render([p] * n, latents[:n])[min(2, n - 1)].data
            == texture.render([p], [latents[min(2, n - 1)]])[0].data
        )
    assert texture.render([p] * 4, latents)[2].data == alone


def test_a_few_training_steps_write_loadable_weights_and_card(tmp_path):
    settings = TextureTrainSettings(
        image="skimage:gravel", out=tmp_path, name="tiny", steps=3, batch=2, crop=64, sample_every=2, save_every=2
    )
    weights = TextureTrainer(settings, "ganbridge train texture (test)").run()
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["kind"] == "texture" and card["training"]["steps"] == 3
    assert "CC0" in card["data"]["license"] and card["training"]["command"].startswith("ganbridge train texture")
    assert [f["name"] for f in card["data"]["manifest"]["files"]] == card["data"]["files"]
    assert {
        "final_loss_d_mean100", "final_loss_g_mean100", "patch_swd_generated", "patch_swd_real_floor",
        "cell_edge_contrast", "cell_edge_contrast_exemplar",
    } <= set(card["metrics"])  # fmt: skip
    loaded = load_texture_network(weights)
    assert loaded.ref.name == "tiny" and len(loaded.ref.sha256) == 64
    assert (tmp_path / "samples" / "step_000002.png").is_file() and (tmp_path / "loss.png").is_file()
    # resumable: a longer run picks up at step 3 from the saved state
    settings.steps = 4
    trainer = TextureTrainer(settings, "resume")
    trainer.run(resume=True)
    assert trainer.step == 4 and len(trainer.history) == 4
    runs = json.loads(weights.with_suffix(".json").read_text())["training"]["runs"]
    assert [(r["from_step"], r["to_step"], r["command"]) for r in runs] == [
        (0, 3, "ganbridge train texture (test)"),
        (3, 4, "resume"),
    ]


def test_the_patch_loss_tells_an_exemplars_own_patches_from_blurred_or_noisy_ones():
    """Crops of one exemplar are close in patch distribution; the same crops blurred (detail
    lost, as a soft generator's) are farther, and noise of the same mean and spread farther still."""
    (path,), _ = resolve_exemplar("skimage:brick")
    images = load_exemplars([path], 128)
    gen = torch.Generator().manual_seed(0)
    real, other = random_crops(images, 4, 128, gen), random_crops(images, 4, 128, gen)
    blurred = F.avg_pool2d(other, 5, stride=1, padding=2, count_include_pad=False)
    noise = torch.randn(other.shape, generator=gen) * other.std() + other.mean()
    own, blur, noisy = (
        patch_distribution_loss(x, real, torch.Generator().manual_seed(1)).item() for x in (other, blurred, noise)
    )
    assert 2 * own < blur < noisy, (own, blur, noisy)


def test_patch_rows_are_unfolds_patches_at_the_picked_positions():
    """Gathering only the picked patches gives what unfolding every position and picking would
    (same picks from the same generator, same layout), without the copy of every position."""
    from ganbridge.generators.gan.losses import PATCH, PATCHES, random_patch_rows

    images = torch.randn(3, 3, 40, 52)
    every = F.unfold(images, PATCH).permute(0, 2, 1).reshape(-1, 3 * PATCH * PATCH)
    pick = torch.randint(len(every), (PATCHES,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(random_patch_rows(images, torch.Generator().manual_seed(5)), every[pick])


def test_the_patch_loss_moves_an_image_toward_the_exemplars_patches():
    (path,), _ = resolve_exemplar("skimage:brick")
    real = random_crops(load_exemplars([path], 64), 2, 64, torch.Generator().manual_seed(0))
    image = torch.zeros(1, 3, 64, 64, requires_grad=True)
    opt = torch.optim.Adam([image], lr=0.05)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(40):
        loss = patch_distribution_loss(image, real, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_training_with_the_patch_loss_records_it(tmp_path):
    settings = TextureTrainSettings(
        image="skimage:gravel", out=tmp_path, name="tiny", steps=2, batch=2, crop=64, patch_loss=3.0
    )
    trainer = TextureTrainer(settings, "ganbridge train texture --patch-loss 3 (test)")
    weights = trainer.run()
    assert all(h["loss_patch"] > 0 for h in trainer.history)
    training = json.loads(weights.with_suffix(".json").read_text())["training"]
    assert training["patch_loss"] == 3.0 and "patch-distribution loss x3" in training["loss"]


def test_evaluation_reproduces_the_shipped_cards_figures(texture):
    """The figures training wrote into the gravel card, recomputed from its weights and exemplar."""
    model = texture.models["gravel"]
    paths, _ = resolve_exemplar(model.card["data"]["source"])
    exemplars = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    side = 2 * model.card["training"]["crop"]
    figures = evaluate(model.net, exemplars, side, model.card["data"]["grayscale"])
    card = model.card["metrics"]
    for key in ("patch_swd_generated", "patch_swd_real_floor"):  # the untrained one has random weights
        # Another machine's kernels may move a pixel by a level, and the 4th decimal with it.
        assert figures[key] == pytest.approx(card[key], abs=2e-3), key
    assert card["patch_swd_real_floor"] < card["patch_swd_generated"] < figures["patch_swd_untrained"]
    assert figures["patch_swd_note"] == card["patch_swd_note"]


def test_eval_command_reproduces_the_card_and_writes_a_sheet(texture, tmp_path):
    """`ganbridge eval texture` recomputes the figures training wrote into the card, by command."""
    out = tmp_path / "eval.json"
    r = subprocess.run(
        [sys.executable, "-m", "ganbridge", "eval", "texture", "--model", "gravel", "--json", str(out),
         "--sheet", str(tmp_path / "sheet.png")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    table, card = json.loads(out.read_text()), texture.models["gravel"].card["metrics"]
    assert table["patch_swd_generated"] == pytest.approx(card["patch_swd_generated"], abs=2e-3)
    assert table["appearance_gap_real_floor"] < table["appearance_gap_generated"]
    assert "x floor" in r.stdout and "appearance gap" in r.stdout and "cell-edge contrast" in r.stdout
    assert Image.open(tmp_path / "sheet.png").width > 4 * 256


def test_the_appearance_gap_tells_the_exemplar_from_a_blurred_or_shifted_copy():
    (path,), _ = resolve_exemplar("skimage:brick")
    exemplar = np.asarray(Image.open(path).convert("RGB"))
    crops = metrics.random_crops([exemplar], 8, 128, np.random.default_rng(5))
    blurred = [np.asarray(Image.fromarray(c).filter(ImageFilter.GaussianBlur(2))) for c in crops]
    darker = [(c * 0.8).astype(np.uint8) for c in crops]
    own, blur, dark = (appearance_gap(x, [exemplar])["appearance_gap_generated"] for x in (crops, blurred, darker))
    assert 3 * own < blur and 3 * own < dark, (own, blur, dark)


def test_train_command_reports_bad_input_clearly(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG garbage")
    small = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(small)
    for image, expected in [(tmp_path / "nothing-here", "no such file"), (bad, "cannot read"), (small, "smaller than")]:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "ganbridge",
                "train",
                "texture",
                "--image",
                str(image),
                "--out",
                str(tmp_path / "o"),
                "--steps",
                "1",
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and expected in r.stderr, r.stderr


def test_pickled_checkpoint_is_refused(tmp_path):
    good = load_generators(None, "cpu")["texture"].checkpoints()[0].path
    fake = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(3)}, fake)  # a zip-pickle renamed to .safetensors
    with pytest.raises(CheckpointError, match="pickle"):
        load_weights(fake)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)  # a bare protocol-4 pickle
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_weights(raw)
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_weights(tmp_path / "model.pt")
    # an installed pickle is skipped with a warning; the shipped models still load
    models = tmp_path / "models" / "texture"
    models.mkdir(parents=True)
    (models / "evil.safetensors").write_bytes(fake.read_bytes())
    (models / "evil.json").write_text(good.with_suffix(".json").read_text())
    # so is a truncated safetensors file
    (models / "cut.safetensors").write_bytes(good.read_bytes()[:5000])
    (models / "cut.json").write_text(good.with_suffix(".json").read_text())
    gen = load_generators(tmp_path / "models", "cpu")["texture"]
    names = [c.name for c in gen.checkpoints()]
    assert "evil" not in names and "cut" not in names and "brick" in names


@pytest.fixture(scope="module")
def gimp_patterns():
    from ganbridge.generators.texture.data import GIMP_PATTERNS

    if not (GIMP_PATTERNS / "Wood" / "wood1.pat").is_file():
        missing_host("GIMP's patterns", "apt-get install gimp-data")
    return GIMP_PATTERNS


def test_a_gimp_pattern_is_read_and_repeated_seamlessly(gimp_patterns):
    from ganbridge.generators.texture.data import GIMP_LICENCE, exemplar_pixels, read_gimp_pattern

    (path,), licence = resolve_exemplar("gimp:Wood/wood1")
    assert licence == GIMP_LICENCE and path == gimp_patterns / "Wood" / "wood1.pat"
    tile = read_gimp_pattern(path)
    assert tile.shape == (96, 96, 3) and tile.dtype == np.uint8 and tile.std() > 10  # colour wood grain
    assert not (tile[..., 0] == tile[..., 2]).all()
    big = exemplar_pixels(path, 128)
    assert big.shape == (288, 288, 3) and (big[96:192, 192:288] == tile).all()  # 3x3 repeats, >= 2 crops
    grey = read_gimp_pattern(gimp_patterns / "Stone" / "granite1.pat")  # a 1-byte (grey) pattern
    assert grey.shape == (100, 100, 3) and (grey[..., 0] == grey[..., 1]).all()


def test_a_gimp_pattern_that_is_not_there_is_named_with_the_choices(gimp_patterns, tmp_path):
    from ganbridge.generators.texture.data import read_gimp_pattern

    for name in ("Wood/teak", "../../../../etc/passwd", "Wood"):
        with pytest.raises(ValueError, match="installed: .*Wood/walnut"):
            resolve_exemplar(f"gimp:{name}")
    junk = tmp_path / "junk.pat"
    junk.write_bytes(b"\0" * 40)
    with pytest.raises(ValueError, match="not a GIMP pattern"):
        read_gimp_pattern(junk)


def _pk3(path: Path, members: dict[str, bytes]) -> Path:
    """A Quake-style pk3 (a zip) holding `members`, as OpenArena's package holds its textures."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def test_an_openarena_texture_is_copied_out_of_its_pk3_once(tmp_path):
    from ganbridge.generators.texture.data import openarena_texture_path

    rust, plate = _jpeg((120, 60, 30)), _jpeg((90, 90, 100))
    pk3 = _pk3(tmp_path / "pak.pk3", {"textures/wall/rust.jpg": rust, "textures/wall/plate.tga": plate, "x.cfg": b""})
    cache = tmp_path / "cache"
    path = openarena_texture_path("textures/wall/rust", pk3, cache)  # the suffix may be left out
    assert path == cache / "textures" / "wall" / "rust.jpg" and path.read_bytes() == rust
    modified = path.stat().st_mtime_ns
    assert openarena_texture_path("textures/wall/rust.jpg", pk3, cache) == path
    assert path.stat().st_mtime_ns == modified  # the same bytes: not written again
    path.write_bytes(b"spoilt")
    assert openarena_texture_path("textures/wall/rust", pk3, cache).read_bytes() == rust  # mended
    assert openarena_texture_path("textures/wall/plate", pk3, cache).read_bytes() == plate
    for name, hint in (("textures/wall/rust.png", "similar: textures/wall/rust$"), ("x", r"\(2 textures"),
                       ("../wall/rust", r"\(2 textures"), ("/textures/wall/rust", r"\(2 textures")):  # fmt: skip
        with pytest.raises(ValueError, match=f"no OpenArena texture .*{hint}"):
            openarena_texture_path(name, pk3, cache)
    assert not list(cache.rglob("*.partial"))
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot copy it out into"):
        openarena_texture_path("textures/wall/rust", pk3, blocked)  # a cache folder that cannot be made
    with pytest.raises(ValueError, match="not installed .*apt-get install openarena-081-textures"):
        openarena_texture_path("textures/wall/rust", tmp_path / "absent.pk3", cache)


@pytest.fixture(scope="module")
def openarena_textures():
    from ganbridge.generators.texture.data import OPENARENA_TEXTURES

    if not OPENARENA_TEXTURES.is_file():
        missing_host("OpenArena's textures", "apt-get install openarena-081-textures")
    return OPENARENA_TEXTURES


def test_the_metal_exemplar_comes_from_openarena_and_repeats_seamlessly(openarena_textures):
    """The shipped metal's exemplar: a seamless 256 px tile from the installed package, repeated
    (as GIMP's patterns are) so that training crops see an endless surface."""
    from ganbridge.generators.texture.data import OPENARENA_LICENCE, exemplar_pixels, is_seamless_tile

    (path,), licence = resolve_exemplar("openarena:textures/base_wall/metalblack03")
    assert licence == OPENARENA_LICENCE and is_seamless_tile(path)
    tile = exemplar_pixels(path)
    assert tile.shape == (256, 256, 3) and not (tile[..., 0] == tile[..., 2]).all()  # colour
    big = exemplar_pixels(path, 256)
    assert big.shape == (512, 512, 3) and (big[256:, 256:] == tile).all()
    assert not is_seamless_tile(resolve_exemplar("skimage:brick")[0][0])  # a photo is not repeated


def test_brick_stays_the_default_among_the_shipped_textures(texture):
    names = [c.name for c in texture.checkpoints()]
    assert names[0] == "brick" and names[1:] == sorted(names[1:]) and len(names) >= 10
    assert texture.params_model.model_validate({}).model == "brick"


def test_width_sets_the_texture_networks_channels(tmp_path):
    """`--width W`: W channels at full size and 2, 4, 8, 12 times W at the coarser stages; the
    trained model loads and serves at that width."""
    r = subprocess.run(
        [
            sys.executable, "-m", "ganbridge", "train", "texture", "--image", "skimage:gravel", "--out", str(tmp_path),
            "--name", "wide", "--steps", "1", "--batch", "2", "--crop", "64", "--width", "4", "--no-directions",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    loaded = load_texture_network(tmp_path / "wide.safetensors")
    assert loaded.card["config"]["channels"] == [48, 32, 16, 8, 4] and loaded.net.config.channels == (48, 32, 16, 8, 4)
    z = {k: np.zeros(v, np.float32) for k, v in loaded.net.latent_shapes(64, 64).items()}
    assert loaded.net.sample([z], [1.0]).shape == (1, 64, 64, 3)
