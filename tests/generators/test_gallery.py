"""Galleries (generators/gallery.py) and steering over looks (steering.from_gallery)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from ganbridge.core.registry import SHIPPED_WEIGHTS, build_generator, load_model_file
from ganbridge.generators import steering
from ganbridge.generators.base import DiscretePart, seeded_rng
from ganbridge.generators.checkpoint import CheckpointError
from ganbridge.generators.gallery import (
    SEED_BASE,
    gallery_path,
    is_gallery_file,
    load_gallery,
    make_gallery,
    save_gallery,
)
from tests.cli.support import ganbridge, one_line

SHAPES = {"z": (4,)}


def look_of_seed(seed: int) -> np.ndarray:
    """A made-up look: two numbers, spread over a disc, fixed by the seed."""
    return seeded_rng(seed + 7).standard_normal(2).astype(np.float32)


def small_gallery(count: int = 400, standardize: bool = False):
    return make_gallery(
        lambda seeds: np.stack([look_of_seed(s) for s in seeds]), count, SHAPES, [], {"made": "here"}, standardize
    )


def test_a_gallery_round_trips_and_stands_apart_from_checkpoints(tmp_path):
    gallery = small_gallery(100, standardize=True)
    assert gallery.seeds[0] == SEED_BASE and len(gallery.seeds) == 100
    path = gallery_path(tmp_path / "glyphs.safetensors")
    assert path.name == "glyphs.gallery.safetensors" and is_gallery_file(path)
    save_gallery(path, gallery)
    back = load_gallery(path)
    assert (back.seeds == gallery.seeds).all() and back.shapes == {"z": (4,)} and back.discrete == ()
    np.testing.assert_allclose(back.looks, gallery.looks, atol=1e-3)  # float16 on disk
    np.testing.assert_allclose(back.scale, gallery.scale, rtol=1e-6)
    assert back.made == {"made": "here"}
    # steering compares looks in the top principal components: for a look of 2 numbers, all of
    # them, so inner products of centred, scaled looks are kept exactly
    standard = (back.looks - back.centre) / back.scale
    np.testing.assert_allclose(back.compact(back.looks) @ back.compact(back.looks).T, standard @ standard.T, atol=1e-4)
    np.testing.assert_allclose(back.compact_looks, back.compact(back.looks), atol=1e-6)
    assert back.fits({"z": (4,)}, [], 2) and not back.fits({"z": (5,)}, [], 2) and not back.fits(SHAPES, ["c"], 2)


def test_a_malformed_gallery_file_names_its_fault(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "bad.gallery.safetensors"
    save_file({"seeds": np.arange(3, dtype=np.int64)}, str(path), {"format": "ganbridge-gallery/1"})
    with pytest.raises(CheckpointError, match="bad.gallery.safetensors: a gallery holds"):
        load_gallery(path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.gallery.safetensors"):
        load_gallery(path)


def rated(looks: list[np.ndarray], ratings: list[int], batch: str) -> list[steering.RatedItem]:
    return [
        steering.RatedItem(f"{batch}-{i}", {"z": np.zeros(4, np.float32)}, r, batch, look)
        for i, (look, r) in enumerate(zip(looks, ratings))
    ]


def test_steering_over_looks_picks_gallery_items_that_look_like_the_likes():
    gallery = small_gallery()
    target = np.array([1.5, 1.5], np.float32)
    # one batch seen: the two nearest the target liked, the two farthest disliked
    looks = [look_of_seed(s) for s in range(8)]
    order = np.argsort([float(np.linalg.norm(look - target)) for look in looks])
    ratings = [0] * 8
    for i in order[:2]:
        ratings[i] = 1
    for i in order[-2:]:
        ratings[i] = -1
    items = rated(looks, ratings, "b0")
    assert steering.uses_gallery(items, SHAPES, {}, gallery)
    drawn = steering.steer(items, SHAPES, {}, 8, 0.25, seeded_rng(1), gallery=gallery)
    assert [d.how for d in drawn] == ["gallery"] * 8 and all(d.parents == [] for d in drawn)
    # each is the gallery's seeded latent, and they are 8 different ones
    by_latent = {tuple(d.latent["z"]) for d in drawn}
    assert len(by_latent) == 8
    seeds = {tuple(seeded_rng(int(s)).standard_normal(4).astype(np.float32)): int(s) for s in gallery.seeds}
    picked = [seeds[key] for key in by_latent]

    # a utility linear in the look (as the cosine to a target is, near the sphere): picks lie toward it
    def toward(seed: int) -> float:
        look = look_of_seed(seed) - gallery.centre
        return float(look @ target / (np.linalg.norm(look) * np.linalg.norm(target)))

    # (Thompson draws after one batch: many explore)
    assert np.mean([toward(s) for s in picked]) > np.mean([toward(int(s)) for s in gallery.seeds[:64]]) + 0.2
    fit_mean = steering.steer(items, SHAPES, {}, 4, 0.0, seeded_rng(2), gallery=gallery)
    assert min(toward(seeds[tuple(d.latent["z"])]) for d in fit_mean) > 0.9
    # explore 0 is the fit's mean: the same picks whatever the seed
    mean = [tuple(d.latent["z"]) for d in steering.steer(items, SHAPES, {}, 4, 0.0, seeded_rng(2), gallery=gallery)]
    again = [tuple(d.latent["z"]) for d in steering.steer(items, SHAPES, {}, 4, 0.0, seeded_rng(3), gallery=gallery)]
    assert mean == again


def test_a_gallery_item_already_seen_is_not_shown_again():
    gallery = small_gallery(50)
    seen = [gallery.looks[i].copy() for i in range(8)]
    items = rated(seen, [1, 1, 0, 0, 0, 0, -1, -1], "b0")
    drawn = steering.steer(items, SHAPES, {}, 8, 0.0, seeded_rng(0), gallery=gallery)
    shown = {tuple(seeded_rng(int(s)).standard_normal(4).astype(np.float32)) for s in gallery.seeds[:8]}
    assert not shown & {tuple(d.latent["z"]) for d in drawn}


def test_items_without_looks_or_other_shapes_steer_by_latent_steps():
    gallery = small_gallery(50)
    items = rated([look_of_seed(s) for s in range(4)], [1, 0, 0, -1], "b0")
    no_look = [steering.RatedItem(it.id, it.latent, it.rating, it.batch) for it in items]
    assert not steering.uses_gallery(no_look, SHAPES, {}, gallery)
    assert not steering.uses_gallery(items, {"z": (5,)}, {}, gallery)
    assert not steering.uses_gallery(items, SHAPES, {"c": DiscretePart(3)}, gallery)
    drawn = steering.steer(no_look, SHAPES, {}, 4, 0.25, seeded_rng(0), gallery=gallery)
    assert all(d.how == "near" for d in drawn)


def test_a_model_with_a_broken_gallery_steers_without_it_and_says_why(tmp_path, caplog):
    for suffix in (".safetensors", ".json"):
        shutil.copy(SHIPPED_WEIGHTS / "image" / f"glyphs{suffix}", tmp_path / f"glyphs{suffix}")
    (tmp_path / "glyphs.gallery.safetensors").write_bytes(b"\x80\x04 not a gallery")
    gen = build_generator("image", [load_model_file("image", tmp_path / "glyphs.safetensors", "cpu")], "cpu")
    with caplog.at_level(logging.WARNING, logger="ganbridge.generators"):
        assert gen.gallery(gen.params_model.model_validate({"model": "glyphs"})) is None
    assert (
        "image model glyphs steers without a gallery: glyphs.gallery.safetensors: not a safetensors file" in caplog.text
    )
    # and the shipped one is there, made at the params a plain request has
    shipped = load_gallery(SHIPPED_WEIGHTS / "image" / "glyphs.gallery.safetensors")
    params = gen.params_model.model_validate({})
    assert shipped.fits(gen.latent_shapes(params), list(gen.discrete_parts(params)))


# --- the command --------------------------------------------------------------------------------


def test_the_command_writes_a_gallery_beside_a_users_model_that_steering_then_reads(tmp_path):
    mine = tmp_path / "models" / "image"
    mine.mkdir(parents=True)
    for suffix in (".safetensors", ".json"):  # hides the shipped glyphs: the command finds this one
        shutil.copy(SHIPPED_WEIGHTS / "image" / f"glyphs{suffix}", mine / f"glyphs{suffix}")
    r = ganbridge(tmp_path, "gallery", "image", "--model", "glyphs", "--count", "40")
    assert r.returncode == 0, r.stderr
    target = mine / "glyphs.gallery.safetensors"
    assert f"wrote {target} (40 outputs, looks of 1024 numbers" in r.stdout and "gallery glyphs" in r.stderr
    card = json.loads((mine / "glyphs.json").read_text())["gallery"]
    assert card["count"] == 40 and card["looks"] == 1024 and card["standardized"] is False
    assert card["command"] == "ganbridge gallery image --model glyphs --count 40"
    made = load_gallery(target)
    assert len(made.seeds) == 40 and made.discrete == ("class",)
    # the shipped gallery was made the same way: its first 40 looks are these (to float16 rounding)
    shipped = load_gallery(SHIPPED_WEIGHTS / "image" / "glyphs.gallery.safetensors")
    np.testing.assert_allclose(made.looks, shipped.looks[:40], atol=2e-3)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["image", "--model", "nope"], ["no image model 'nope'", "glyphs"]),
        (["music", "--count", "0"], ["--count", "0 is not a whole number >= 1"]),
        (["texture"], ["invalid choice: 'texture'"]),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(tmp_path, args, needles):
    one_line(ganbridge(tmp_path, "gallery", *args), 2, *needles)


def test_a_session_of_only_dislikes_gets_gallery_items_unlike_them():
    gallery = small_gallery()
    away = np.array([1.5, 1.5], np.float32)
    items = rated([away + 0.1 * look_of_seed(s) for s in range(4)], [-1] * 4, "b0")
    drawn = steering.steer(items, SHAPES, {}, 4, 0.0, seeded_rng(0), gallery=gallery)
    assert [d.how for d in drawn] == ["gallery"] * 4
    seeds = {tuple(seeded_rng(int(s)).standard_normal(4).astype(np.float32)): int(s) for s in gallery.seeds}
    looks = [look_of_seed(seeds[tuple(d.latent["z"])]) - gallery.centre for d in drawn]
    assert all(float(look @ away) < 0 for look in looks)  # the other way from what was disliked
