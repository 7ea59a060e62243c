"""The small-data image GAN: data folders, training, determinism, alpha, metrics, and the bridge."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from ganbridge.generators.gan.losses import mode_seeking_penalty
from ganbridge.generators.image.adapter import ImageGenerator
from ganbridge.generators.image.data import DataError, is_grayscale, load_folder
from ganbridge.generators.image.emoji import prepare_emoji
from ganbridge.generators.image.evaluate import (
    PixelFeatures,
    class_agreement,
    precision_recall,
    pyramid_swd,
    within_class_spread,
)
from ganbridge.generators.image.model import MINIBATCH_GROUP, ImageConfig, ImageNetwork, load_image_network
from ganbridge.generators.image.served import cleanliness
from ganbridge.generators.image.train import ImageCritic, ImageTrainer, ImageTrainSettings
from ganbridge.server import build_core
from tests.cli.test_cli import ganbridge
from tests.conftest import BridgeThread, make_settings


def sprite(rng: np.random.Generator, hue: int, size: int = 64) -> Image.Image:
    """A coloured disc on transparency: a stand-in for a sprite."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = rng.integers(size // 6, size // 3)
    cy, cx = rng.integers(r, size - r, 2)
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    img = np.zeros((size, size, 4), dtype=np.uint8)
    img[inside] = [hue, 255 - hue, rng.integers(0, 255), 255]
    return Image.fromarray(img, "RGBA")


@pytest.fixture(scope="module")
def sprite_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sprites")
    rng = np.random.default_rng(0)
    for cls, hue in (("red", 230), ("green", 20)):
        (root / cls).mkdir()
        for i in range(12):
            sprite(rng, hue).save(root / cls / f"{i}.png")
    sprite(rng, 100, size=48).convert("RGB").save(root / "red" / "odd_size_rgb.png")  # converted, reported
    (root / "green" / "broken.png").write_bytes(b"not a png")  # skipped, reported
    return root


@pytest.fixture(scope="module")
def tiny_model(sprite_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train")
    settings = ImageTrainSettings(
        data=sprite_folder, out=out, name="sprites", steps=3, batch=4, sample_every=3, save_every=3,
        config=ImageConfig(width=8, z_dim=16), license="test data",
    )  # fmt: skip
    return ImageTrainer(settings, "pytest").run()


def test_folder_validation_reports_what_it_did(sprite_folder, tmp_path):
    pooled = load_folder(sprite_folder, use_classes=False)
    assert pooled.classes == [] and set(pooled.train_labels.tolist()) == {0}
    data = load_folder(sprite_folder)
    assert data.classes == ["green", "red"]
    assert data.report["images"] == 25 and data.report["held_out"] == 3
    assert [b for b in data.report["unreadable"] if b.startswith("green/broken.png")]
    assert "resized from 48x48" in data.report["conversions"]["red/odd_size_rgb.png"]
    assert "converted from RGB" in data.report["conversions"]["red/odd_size_rgb.png"]
    assert data.train.shape[1:] == (64, 64, 4) and len(data.train) + len(data.held_out) == 25
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="at least 16"):
        load_folder(tmp_path)
    mixed = tmp_path / "mixed"
    (mixed / "cls").mkdir(parents=True)
    sprite(np.random.default_rng(1), 5).save(mixed / "loose.png")
    with pytest.raises(DataError, match="both images and sub-folders"):
        load_folder(mixed)


def test_conditional_batches_give_each_critic_group_one_class(sprite_folder, tmp_path):
    # The critic's minibatch std looks across images i, i + n/4, ...; with classes mixed in a group,
    # a generator making one image per class looks varied to it. The mode-seeking term pairs them too.
    settings = ImageTrainSettings(data=sprite_folder, out=tmp_path, name="s", batch=16, config=ImageConfig(width=8))
    trainer = ImageTrainer(settings, "pytest")
    groups = 16 // MINIBATCH_GROUP
    seen = set()
    for _ in range(10):
        real, labels = trainer._batch()
        _, fake_labels = trainer._noise()
        for y in (labels, fake_labels):
            assert all(len(set(y[j::groups].tolist())) == 1 for j in range(groups)), y
        for image, y in zip(real, labels.tolist()):  # each real image is one of its class
            assert (trainer.real[trainer.labels == y] == image).flatten(1).all(dim=1).any()
        seen |= set(labels.tolist())
    assert seen == {0, 1}
    with pytest.raises(ValueError, match="multiple of 4"):
        ImageTrainer(ImageTrainSettings(data=sprite_folder, out=tmp_path, name="s", batch=6), "pytest")._batch()


def test_mode_seeking_penalty_punishes_a_generator_that_ignores_z():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    varied = torch.rand(8, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ignores_z = varied[:1].expand(8, -1, -1, -1)
    assert mode_seeking_penalty(ignores_z, z, 2) > 1000 * mode_seeking_penalty(varied, z, 2)
    # images 2 apart are compared (the same class under grouped labels): a pair repeated at that
    # distance is a collapse even if the batch as a whole varies
    pairs = torch.cat([varied[:2]] * 4)
    assert mode_seeking_penalty(pairs, z, 2) > 1000 * mode_seeking_penalty(varied, z, 2)


def test_training_writes_loadable_weights_and_a_card(tiny_model):
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert card["kind"] == "image" and card["training"]["steps"] == 3
    assert card["config"]["classes"] == ["green", "red"] and card["data"]["license"] == "test data"
    assert card["data"]["unreadable"] and (tiny_model.parent / "samples" / "step_000003.png").is_file()
    manifest = card["data"]["manifest"]  # every file given, with its hash
    assert len(manifest["files"]) == card["data"]["images"] + len(card["data"]["unreadable"])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"]) and len(manifest["sha256"]) == 64
    assert (tiny_model.parent / "state" / "train_state.safetensors").is_file()
    assert "mode-seeking term x1.0; auxiliary classifier x1.0" in card["training"]["loss"]
    model = load_image_network(tiny_model)
    assert model.net.config.z_dim == 16


def test_grey_data_makes_a_model_that_cannot_draw_colour(sprite_folder, tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    rng = np.random.default_rng(2)
    for i in range(16):
        img = np.asarray(sprite(rng, 0)).copy()
        img[..., :3] = img[..., 3:] // 3  # black to dark grey ink
        img[img[..., 3] == 0, :3] = (12, 200, 40)  # colour under full transparency is never seen
        Image.fromarray(img, "RGBA").save(grey / f"{i}.png")
    grey_data = load_folder(grey)
    assert grey_data.grayscale and grey_data.report["grayscale"]
    assert not load_folder(sprite_folder).grayscale
    one_tinted = np.zeros((2, 4, 4, 4), dtype=np.uint8)
    one_tinted[..., 3] = 255
    assert is_grayscale(one_tinted)
    one_tinted[1, 2, 3, :3] = (10, 10, 11)
    assert not is_grayscale(one_tinted)

    settings = ImageTrainSettings(
        data=grey, out=tmp_path / "run", name="grey", steps=2, batch=4, sample_every=2, save_every=2,
        config=ImageConfig(width=8, z_dim=16),
    )  # fmt: skip
    model = load_image_network(ImageTrainer(settings, "pytest").run())
    assert model.net.config.grayscale
    torch.nn.init.normal_(model.net.to_rgba.weight, std=1.0)  # weights that would tint a colour model
    z = [{"z": np.random.default_rng(i).standard_normal(16).astype(np.float32)} for i in range(4)]
    pixels = model.net.sample(z, [0] * 4, [1.0] * 4)
    ink = pixels[pixels[..., 3] > 0]
    assert len(ink) and (ink[:, 0] == ink[:, 1]).all() and (ink[:, 1] == ink[:, 2]).all()
    colour = ImageNetwork(ImageConfig(width=8, z_dim=16)).eval()
    colour.load_state_dict(model.net.state_dict())
    tinted = colour.sample(z, [0] * 4, [1.0] * 4)
    assert (tinted[..., 0] != tinted[..., 1]).any()  # the same weights untied do draw colour


def test_critic_of_a_model_with_classes_also_names_the_class():
    critic = ImageCritic(ImageConfig(width=8, classes=["a", "b", "c"]))
    score, logits = critic.judge(torch.zeros(4, 4, 64, 64), torch.tensor([0, 1, 2, 0]))
    assert score.shape == (4,) and logits.shape == (4, 3)
    plain = ImageCritic(ImageConfig(width=8))
    assert plain.judge(torch.zeros(4, 4, 64, 64))[1] is None


def test_resume_continues_from_the_saved_step(sprite_folder, tiny_model):
    settings = ImageTrainSettings(
        data=sprite_folder, out=tiny_model.parent, name="sprites", steps=5, batch=4, sample_every=5,
        config=ImageConfig(width=8, z_dim=16),
    )  # fmt: skip
    trainer = ImageTrainer(settings, "pytest resume")
    trainer.run(resume=True)
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert [r["to_step"] for r in card["training"]["runs"]] == [3, 5]


def test_resume_of_a_state_saved_before_a_config_field_existed(sprite_folder, tiny_model, tmp_path):
    shutil.copytree(tiny_model.parent / "state", tmp_path / "state")
    state = tmp_path / "state" / "train_state.safetensors"
    with safe_open(str(state), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    info = json.loads(meta["trainer"])
    del info["config"]["grayscale"]  # as saved by a version without grey models
    save_file(tensors, str(state), metadata={**meta, "trainer": json.dumps(info)})

    def settings(width: int) -> ImageTrainSettings:
        return ImageTrainSettings(
            data=sprite_folder, out=tmp_path, name="sprites", steps=6, batch=4, sample_every=6,
            config=ImageConfig(width=width, z_dim=16),
        )  # fmt: skip

    with pytest.raises(ValueError, match="different model config \\(width: saved 8, now 16\\)"):
        ImageTrainer(settings(16), "pytest").run(resume=True)
    ImageTrainer(settings(8), "pytest").run(resume=True)  # the missing field is its default: resumes
    assert json.loads((tmp_path / "sprites.json").read_text())["training"]["steps"] == 6


def test_same_seed_same_image_with_alpha(tiny_model):
    gen = ImageGenerator([load_image_network(tiny_model)])
    schema = gen.info()["params_schema"]["properties"]
    assert schema["category"]["enum"] == ["any", "green", "red"]
    params = gen.params_model.model_validate({"size": 128, "category": "red"})
    a = gen.render([params], [gen.random_latent(params, 7)])[0]
    b = gen.render([params, params], [gen.random_latent(params, 8), gen.random_latent(params, 7)])[1]
    assert a.data == b.data  # batching does not change a recipe's pixels
    img = Image.open(io.BytesIO(a.data))
    assert img.mode == "RGBA" and img.size == (128, 128) and a.extra["category"] == "red"
    assert len(np.unique(np.asarray(img)[..., 3])) > 1  # a real alpha channel
    solid = gen.params_model.model_validate({"background": "#102030", "size": 64})
    pixels = np.asarray(Image.open(io.BytesIO(gen.render([solid], [gen.random_latent(solid, 7)])[0].data)))
    assert (pixels[..., 3] == 255).all()
    with pytest.raises(ValueError):
        gen.params_model.model_validate({"background": "blue"})


def test_metrics_on_known_cases(sprite_folder):
    data = load_folder(sprite_folder)
    same = pyramid_swd(data.train, data.train, patches=4096)
    noise = np.random.default_rng(3).integers(0, 256, data.train.shape, dtype=np.uint8)
    different = pyramid_swd(data.train, noise, patches=4096)
    assert same["mean"] < 0.1 * different["mean"]  # identical sets: only the patch-sampling noise
    x = np.random.default_rng(0).standard_normal((50, 8))
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0, "coverage": 1.0}
    far = precision_recall(x, x + 100)
    assert far == {"precision": 0.0, "recall": 0.0, "coverage": 0.0}


def test_eval_command_prints_the_table(tiny_model, sprite_folder, tmp_path):
    out = tmp_path / "eval.json"
    r = ganbridge("eval", "image", "--model", str(tiny_model), "--data", str(sprite_folder), "--samples", "40",
                  "--json", str(out), "--sheet", str(tmp_path / "sheet.png"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "sheet.png").width > 64
    assert "real_train (floor)" in r.stdout and "untrained (ceiling)" in r.stdout
    table = json.loads(out.read_text())
    # The sprite folder has two categories: the table gets class agreement, the sheet a column each.
    assert set(table["generated"]) == {"swd_x1000", "precision", "recall", "coverage", "spread", "class_agreement"}
    assert "class agreement" in r.stdout and "spread" in r.stdout
    assert Image.open(tmp_path / "sheet.png").width < 4 * 64  # two columns, not twelve
    # As served: through the adapter's params, at the default truncation and at one asked for.
    served = table["served"]
    assert set(served) == {"truncation 0.4", "held-out (real)", "any_balance", "setup"}
    assert 0 <= served["truncation 0.4"]["nearest_in_category"] <= 1 and served["truncation 0.4"]["border"] == 0
    balance = served["any_balance"]
    assert sum(balance["counts"].values()) == balance["seeds"] == 3100 and len(balance["counts"]) == 2
    assert balance["fewest"] == min(balance["counts"].values()) > 0.8 * balance["even"]  # drawn in equal bins
    assert "as served" in r.stdout and "nearest in category" in r.stdout
    r = ganbridge("eval", "image", "--model", str(tiny_model), "--data", str(sprite_folder), "--samples", "40",
                  "--served-truncation", "1", "0.5", "--served-per-category", "4", "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [k for k in json.loads(out.read_text())["served"] if k.startswith("truncation")] == [
        "truncation 1",
        "truncation 0.5",
    ]
    for bad, message in (
        (["--served-truncation", "3"], "less than or equal to 1"),
        (["--served-per-category", "1001"], "1 to 1000"),
    ):
        r = ganbridge(
            "eval", "image", "--model", str(tiny_model), "--data", str(sprite_folder), "--json", str(out), *bad
        )
        assert r.returncode == 2 and message in r.stderr and "vs held-out" not in r.stdout, r.stderr  # before any work


def test_served_cleanliness_on_known_images():
    """Haze, border and smear shares, each from images made to have them."""
    clean = np.zeros((4, 8, 8, 4), np.uint8)
    clean[:, 2:6, 2:6, 3] = 255  # a solid square inside the canvas
    hazy, bordered, smeared = clean.copy(), clean.copy(), clean.copy()
    hazy[0, 1, 1, 3] = 9  # one faint pixel of 256
    bordered[1, 0, 3, 3] = 200  # ink on the outermost ring
    smeared[2, 2:6, 2:6, :3] = 160  # the whole glyph solid but grey
    assert cleanliness(clean, 0.2) == {"haze": 0.0, "border": 0.0, "smears": 0.0}
    assert cleanliness(hazy, 0.2)["haze"] == round(1 / 256, 4)
    assert cleanliness(bordered, 0.2) == {"haze": 0.0, "border": 0.25, "smears": 0.0}
    assert cleanliness(smeared, 0.2)["smears"] == 0.25 and cleanliness(smeared, 1.0)["smears"] == 0.0


def test_class_agreement_on_known_cases(sprite_folder):
    data = load_folder(sprite_folder)  # red and green discs
    features = PixelFeatures(data.train)
    train, held_out = features(data.train), features(data.held_out)
    right = class_agreement(train, data.train_labels, held_out, data.held_out_labels)
    wrong = class_agreement(train, data.train_labels, held_out, 1 - data.held_out_labels)
    assert (right, wrong) == (1.0, 0.0)


def test_spread_on_known_cases():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 8))
    labels = np.repeat([0, 1], 20)
    assert within_class_spread(np.zeros((10, 8)), np.zeros(10)) == 0.0  # one image, repeated
    assert within_class_spread(2 * x, labels) == pytest.approx(2 * within_class_spread(x, labels), abs=2e-3)
    # two tight clusters far apart: small within each category, large if pooled into one set
    clusters = 0.01 * x + 100 * labels[:, None]
    assert within_class_spread(clusters, labels) < 0.1 < 50 < within_class_spread(clusters)
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert within_class_spread(two) == 5.0  # the one pair, not diluted by the zero diagonal


def test_emoji_data_command_lays_out_categories(tmp_path):
    """The data command on a hand-made package tarball shaped like emoji-datasource-twitter."""
    png = io.BytesIO()
    sprite(np.random.default_rng(2), 50).save(png, "PNG")
    catalogue = [
        {"image": "1f600.png", "short_name": "grinning", "category": "Smileys & Emotion", "has_img_twitter": True},
        {"image": "1f436.png", "short_name": "dog", "category": "Animals & Nature", "has_img_twitter": True},
        {"image": "1f3fb.png", "short_name": "skin-tone-2", "category": "Component", "has_img_twitter": True},
        {"image": "1f999.png", "short_name": "missing", "category": "Objects", "has_img_twitter": False},
    ]
    tgz = tmp_path / "pkg.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, data in [("package/emoji.json", json.dumps(catalogue).encode())] + [
            (f"package/img/twitter/64/{e['image']}", png.getvalue()) for e in catalogue[:3]
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    summary = prepare_emoji(tmp_path / "emoji", tgz)
    assert summary["classes"] == {"animals-nature": 1, "smileys-emotion": 1} and summary["license"] == "CC-BY 4.0"
    assert (tmp_path / "emoji" / "smileys-emotion" / "grinning.png").is_file()
    assert "CC-BY 4.0" in (tmp_path / "emoji" / "ATTRIBUTION.txt").read_text()


def test_served_through_the_bridge(tiny_model, tmp_path):
    settings = make_settings(tmp_path)
    (settings.models_dir / "image").mkdir(parents=True)
    for suffix in (".safetensors", ".json"):
        (settings.models_dir / "image" / f"sprites{suffix}").write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    b = BridgeThread(settings, build_core(settings))
    ws = b.client()
    try:
        welcome = ws.request({"type": "hello", "protocol": 1})
        info = next(g for g in welcome["generators"] if g["name"] == "image")
        assert "category" in info["params_schema"]["properties"]
        ws.send({"type": "generate", "id": "g", "generator": "image", "count": 2, "seed": 3,
                 "params": {"model": "sprites", "size": 96, "upscale": "lanczos"}})  # fmt: skip
        msgs = ws.until_final("g")
        items = [i for m in msgs if m["type"] == "result" for i in m["items"]]
        assert msgs[-1]["type"] == "done" and len(items) == 2
        assert Image.open(io.BytesIO(base64.b64decode(items[0]["data"]))).size == (96, 96)
        ws.send({"type": "variations", "id": "v", "item": items[0]["item"], "count": 2})
        assert ws.until_final("v")[-1]["type"] == "done"
        ws.send({"type": "interpolate", "id": "i", "from": items[0]["item"], "to": items[1]["item"], "steps": 3})
        assert [m["type"] for m in ws.until_final("i")][-1] == "done"
        ws.send({"type": "generate", "id": "bad", "generator": "image", "params": {"category": "blue"}})
        err = ws.until_final("bad")[-1]
        assert err["type"] == "error" and err["code"] == "invalid_params" and "category" in err["message"]
    finally:
        ws.close()
        b.stop()


def test_untrained_generator_output_is_premultiplied_consistently():
    net = ImageNetwork(ImageConfig(width=8, z_dim=16)).eval()
    import torch

    out = net(torch.randn(4, 16))
    alpha = (out[:, 3:] + 1) / 2
    rgb = (out[:, :3] + 1) / 2
    assert bool((rgb <= alpha + 1e-6).all())  # premultiplied: colour never exceeds alpha


def test_train_command_rejects_a_bad_batch_or_loss_weight(sprite_folder, tmp_path):
    r = ganbridge("train", "image", "--data", str(sprite_folder), "--out", str(tmp_path), "--batch", "6")
    assert r.returncode == 2 and "6 is not a positive multiple of 4" in r.stderr
    r = ganbridge("train", "image", "--data", str(sprite_folder), "--out", str(tmp_path), "--mode-seeking", "-1")
    assert r.returncode == 2 and "-1 is not a number >= 0" in r.stderr
    r = ganbridge("train", "image", "--data", str(sprite_folder), "--out", str(tmp_path), "--class-loss", "nan")
    assert r.returncode == 2 and "nan is not a number >= 0" in r.stderr
    assert not any(tmp_path.iterdir())  # nothing written
