"""Preference steering on synthetic users: a hidden target latent, ratings by closeness to it."""

from __future__ import annotations

import numpy as np

from ganbridge.generators.base import DiscretePart, draw_latent
from ganbridge.generators.steering import (
    SKETCH_SIZE,
    RatedItem,
    RowCache,
    comparisons,
    fit_preference,
    sketched,
    steer,
    step_size,
)

SHAPES = {"global": (16,), "local": (16, 4, 4)}


def flat(z: dict) -> np.ndarray:
    return np.concatenate([z[k].ravel() for k in sorted(SHAPES)])


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def rate(batch: list[dict], target: np.ndarray, name: str) -> list[RatedItem]:
    """Like the 2 of a batch nearest the target, dislike the 2 farthest, as the benchmark's user."""
    order = np.argsort([-cos(flat(z), target) for z in batch])
    ratings = np.zeros(len(batch), int)
    ratings[order[:2]], ratings[order[-2:]] = 1, -1
    return [RatedItem(f"{name}-{i}", z, int(r), name) for i, (z, r) in enumerate(zip(batch, ratings))]


def search(strategy: str, seed: int, rounds: int = 10) -> float:
    rng = np.random.default_rng(seed)
    target = flat(draw_latent(SHAPES, rng))
    items: list[RatedItem] = []
    best = -1.0
    batch = [draw_latent(SHAPES, rng) for _ in range(8)]
    for r in range(rounds):
        best = max(best, *(cos(flat(z), target) for z in batch))
        items += rate(batch, target, f"b{r}")
        if strategy == "steer":
            batch = [d.latent for d in steer(items, SHAPES, {}, 8, 0.25, rng)]
        else:
            batch = [draw_latent(SHAPES, rng) for _ in range(8)]
    return best


def test_steering_finds_a_hidden_target_far_better_than_random_draws():
    # 272 dimensions and 10 partial rankings of 8: nothing finds the target itself, but steering
    # gets about twice as close as the best of as many random draws (0.29 against 0.14)
    steered = [search("steer", s) for s in range(4)]
    drawn = [search("random", s) for s in range(4)]
    assert min(steered) > max(drawn) and np.mean(steered) > 1.6 * np.mean(drawn), (steered, drawn)


def test_within_a_batch_likes_beat_the_rest_and_the_unrated_beat_dislikes():
    z = draw_latent(SHAPES, np.random.default_rng(0))
    items = [RatedItem(n, z, r, "b") for n, r in (("l", 1), ("u", 0), ("d", -1))] + [RatedItem("x", z, 1, "c")]
    winners, losers, _ = comparisons(items)
    pairs = {(w, lo) for w, lo in zip(winners.tolist(), losers.tolist())}
    assert {(0, 1), (0, 2), (1, 2)} <= pairs  # side by side in batch b
    assert (0, 3) not in pairs and (3, 2) not in pairs  # never across batches ...
    assert {(0, -1), (-1, 2), (3, -1)} <= pairs  # ... where a rating only says "better/worse than indifferent"


def test_a_steered_item_names_its_one_real_parent_and_how_it_was_drawn():
    rng = np.random.default_rng(1)
    target = flat(draw_latent(SHAPES, rng))
    items = rate([draw_latent(SHAPES, rng) for _ in range(8)], target, "b0")
    liked = {it.id for it in items if it.rating > 0}
    drawn = steer(items, SHAPES, {}, 6, 0.25, rng)
    assert all(d.how == "near" and len(d.parents) == 1 and d.parents[0] in liked for d in drawn)
    assert all({k: v.shape for k, v in d.latent.items()} == SHAPES for d in drawn)
    parent = next(it for it in items if it.id == drawn[0].parents[0])
    assert cos(flat(drawn[0].latent), flat(parent.latent)) > 0.6


def test_no_ratings_or_explore_one_draws_at_random():
    rng = np.random.default_rng(2)
    z = draw_latent(SHAPES, rng)
    assert {d.how for d in steer([], SHAPES, {}, 3, 0.25, rng)} == {"random"}
    assert {d.how for d in steer([RatedItem("a", z, 0, "b")], SHAPES, {}, 3, 0.25, rng)} == {"random"}
    assert {d.how for d in steer([RatedItem("a", z, 1, "b")], SHAPES, {}, 3, 1.0, rng)} == {"random"}


def test_a_session_of_only_dislikes_still_gets_a_batch():
    rng = np.random.default_rng(3)
    items = [RatedItem(f"d{i}", draw_latent(SHAPES, rng), -1, f"b{i}") for i in range(5)]
    drawn = steer(items, SHAPES, {}, 4, 0.25, rng)
    assert len(drawn) == 4 and all(np.isfinite(flat(d.latent)).all() for d in drawn)


def test_steps_shrink_with_rated_batches_and_grow_with_explore():
    assert step_size(0.25, 1) > step_size(0.25, 5) > step_size(0.25, 30) >= 0.05
    assert step_size(0.0, 1) == 0.05 and step_size(1.0, 0) == 1.0
    assert step_size(0.6, 3) > step_size(0.25, 3) > step_size(0.1, 3)


def test_discrete_parts_are_inherited_or_new_never_blended():
    part = DiscretePart(10)
    shapes = SHAPES | {"class": (1,)}
    rng = np.random.default_rng(4)
    batch = [draw_latent(shapes, rng) for _ in range(8)]
    for i, z in enumerate(batch):
        z["class"] = part.draw(i % 4, rng)  # choices 0-3 seen; 4-9 never
    ratings = [1, 0, 0, -1, 0, 0, 0, 0]
    items = [RatedItem(f"i{i}", z, r, "b0") for i, (z, r) in enumerate(zip(batch, ratings))]
    seen_values = {float(z["class"][0]) for z in batch}
    hows = set()
    for explore in (0.0, 0.25, 0.6):
        for d in steer(items, shapes, {"class": part}, 16, explore, rng):
            hows.add(d.how)
            choice = part.index(d.latent["class"])
            if d.how == "new-choice":
                assert choice >= 4 and explore > 0
            else:  # inherited exactly from the parent, whose choice it keeps
                assert float(d.latent["class"][0]) in seen_values and choice == part.index(
                    items[int(d.parents[0][1:])].latent["class"]
                )
    assert hows == {"near", "new-choice"}
    # at explore 0 nothing new is tried: every item keeps the liked item's choice
    assert {part.index(d.latent["class"]) for d in steer(items, shapes, {"class": part}, 8, 0.0, rng)} == {0}


def test_a_large_latent_is_fitted_through_a_sketch_that_keeps_its_inner_products():
    # 128 items (64 rated, 64 unrated batch mates) of a 512x512 texture's latent size: the fit
    # runs on a count sketch (its cost is measured by `ganbridge bench --only steering`)
    shapes = {"local": (16, 32, 32), "global": (16,), "phase": (8,)}
    rng = np.random.default_rng(5)
    items = [RatedItem(f"i{i}", draw_latent(shapes, rng), (1, -1, 0, 0)[i % 4], f"b{i // 8}") for i in range(128)]
    drawn = steer(items, shapes, {}, 8, 0.25, rng)
    assert len(drawn) == 8 and all(d.latent["local"].shape == (16, 32, 32) for d in drawn)
    rows = np.stack([np.concatenate([it.latent[k].ravel() for k in sorted(shapes)]) for it in items[:16]])
    small = sketched(rows)
    assert small.shape == (16, SKETCH_SIZE)
    exact, approx = rows @ rows.T, small @ small.T
    assert np.allclose(np.diag(approx) / np.diag(exact), 1, atol=0.1)  # norms kept
    off = ~np.eye(16, dtype=bool)
    assert np.abs(approx - exact)[off].max() < 0.1 * np.diag(exact).mean()  # and angles, roughly


def test_kept_rows_never_change_a_choice_and_stay_within_their_bytes():
    rng = np.random.default_rng(6)
    target = flat(draw_latent(SHAPES, rng))
    batches = [rate([draw_latent(SHAPES, rng) for _ in range(8)], target, f"b{b}") for b in range(3)]
    items = batches[0] + batches[1]
    rows = RowCache()
    fresh = steer(items, SHAPES, {}, 4, 0.25, np.random.default_rng(9))
    for _ in range(2):  # the first fills the cache, the second reads it: the same items, exactly
        kept = steer(items, SHAPES, {}, 4, 0.25, np.random.default_rng(9), rows, "s")
        assert all(np.array_equal(a.latent[k], b.latent[k]) for a, b in zip(fresh, kept) for k in SHAPES)
    (stack,) = rows.kept._values.values()
    # the session goes on: a new batch takes the slots of the oldest, the rest stay where they are
    later = batches[2] + batches[1]
    fresh = steer(later, SHAPES, {}, 4, 0.25, np.random.default_rng(10))
    kept = steer(later, SHAPES, {}, 4, 0.25, np.random.default_rng(10), rows, "s")
    assert len(rows.kept) == 1 and next(iter(rows.kept._values.values())) is stack
    assert sorted(stack.slot) == sorted(it.id for it in later)
    assert [(d.how, d.parents) for d in fresh] == [(d.how, d.parents) for d in kept]
    assert all(np.allclose(a.latent[k], b.latent[k], atol=1e-5) for a, b in zip(fresh, kept) for k in SHAPES)
    assert rows.kept.nbytes == stack.nbytes == 2 * 16 * 272 * 4 + 16 * 16 * 4  # rows, sketches, products
    small = RowCache(max_bytes=stack.nbytes - 1)
    steer(items, SHAPES, {}, 4, 0.25, np.random.default_rng(9), small, "s")
    assert len(small.kept) == 0


def test_the_fit_ranks_what_was_liked_first_and_explore_zero_draws_its_mean():
    rng = np.random.default_rng(7)
    target = flat(draw_latent(SHAPES, rng))
    items = [it for r in range(3) for it in rate([draw_latent(SHAPES, rng) for _ in range(8)], target, f"b{r}")]
    pref = fit_preference(items, sorted(SHAPES), {})
    liked = [pref.utilities[i] for i, it in enumerate(items) if it.rating > 0]
    disliked = [pref.utilities[i] for i, it in enumerate(items) if it.rating < 0]
    assert min(liked) > max(disliked)
    assert np.abs(pref.utilities).max() < 10  # on the comparisons' scale: the prior keeps them from separating
    mean = pref.sample(rng, 0.0, 3)
    assert np.array_equal(mean, np.tile(pref.coefficients, (3, 1)))
    spread = pref.sample(rng, 1.0, 200).std(0)
    assert (spread > 0).all()


def test_items_shown_again_still_steer():
    """The same latent shown in every batch (a fixed seed, a strength-0 variation remade) makes
    the kernel singular; float32 inner products left it a little below zero, and the prior's
    Cholesky factor failed on every one of these 20 sessions before its jitter could grow."""
    from ganbridge.core.registry import load_generators

    gen = load_generators(None)["texture"]
    params = gen.params_model.model_validate({"width": 128, "height": 128})
    shapes = gen.latent_shapes(params)
    for session in range(20):
        items = [
            RatedItem(f"{b}-{i}", gen.random_latent(params, i % 2 if i < 4 else 1000 * session + 8 * b + i),
                      [1, -1, 0, 0, 1, -1, 0, 0][i], f"b{b}")
            for b in range(9)
            for i in range(8)
        ]  # fmt: skip
        drawn = steer(items, shapes, {}, 8, 0.25, np.random.default_rng(session))
        assert len(drawn) == 8 and all(np.isfinite(flat(d.latent)).all() for d in drawn)


def rated_with_controls(rng: np.random.Generator, values: np.ndarray | None = None) -> list[RatedItem]:
    """Two batches of 8 with two steered params each: the artist likes the 2 with the highest
    first control and dislikes the 2 with the lowest; the second control says nothing."""
    items = []
    for b in range(2):
        controls = rng.uniform(-0.5, 0.5, (8, 2)) if values is None else np.tile(values, (8, 1))
        order = np.argsort(-controls[:, 0] if values is None else rng.permutation(8))
        ratings = np.zeros(8, int)
        ratings[order[:2]], ratings[order[-2:]] = 1, -1
        items += [
            RatedItem(f"b{b}-{i}", draw_latent(SHAPES, rng), int(ratings[i]), f"b{b}", None, controls[i])
            for i in range(8)
        ]
    return items


def test_steered_params_step_from_the_parents_toward_the_values_the_ratings_favour():
    for seed in range(4):
        rng = np.random.default_rng(seed)
        items = rated_with_controls(rng)
        drawn = steer(items, SHAPES, {}, 32, 0.25, rng)
        parent = {it.id: it for it in items}[drawn[0].parents[0]]
        values = np.stack([d.controls for d in drawn])
        assert values.min() >= -1 and values.max() <= 1
        moved = values.mean(0) - parent.controls
        assert moved[0] > 0.05 and abs(moved[1]) < 0.06, (seed, moved)  # up the liked one; the other stays
        assert values.std(0).min() > 0.05  # each item its own values: the batch explores them too


def test_steered_params_every_item_shares_stay_and_the_latents_are_drawn_as_without_them():
    shared = np.array([0.2, -0.3])
    items = rated_with_controls(np.random.default_rng(5), shared)
    drawn = steer(items, SHAPES, {}, 8, 0.25, np.random.default_rng(6))
    assert all(np.array_equal(d.controls, shared) for d in drawn)  # nothing to learn: no drift, no guessing
    plain = [RatedItem(it.id, it.latent, it.rating, it.batch) for it in items]
    without = steer(plain, SHAPES, {}, 8, 0.25, np.random.default_rng(6))
    assert all(d.controls is None for d in without)
    assert all(np.array_equal(flat(a.latent), flat(b.latent)) for a, b in zip(drawn, without))
    # one control varied, the other shared: only the varied one moves
    varied = [RatedItem(it.id, it.latent, it.rating, it.batch, None, np.array([0.1 * it.rating, -0.3])) for it in items]
    values = np.stack([d.controls for d in steer(varied, SHAPES, {}, 16, 0.25, np.random.default_rng(7))])
    assert (values[:, 1] == -0.3).all() and values[:, 0].std() > 0.05


def test_every_steered_control_stays_inside_its_params_bounds():
    """Steered values are written into params without validating them again (Control.value
    clips to the control's range), so each range must lie inside its field's bounds."""
    from annotated_types import Ge, Gt, Le, Lt

    from ganbridge.core.registry import load_generators

    for gen in load_generators(None, "cpu").values():
        params = gen.params_model.model_validate({})
        for name, control in gen.steered_controls(params).items():
            for bound in gen.params_model.model_fields[name].metadata:
                low, high = control.value(-1.0), control.value(1.0)
                assert not isinstance(bound, Ge) or low >= bound.ge, (gen.name, name)
                assert not isinstance(bound, Gt) or low > bound.gt, (gen.name, name)
                assert not isinstance(bound, Le) or high <= bound.le, (gen.name, name)
                assert not isinstance(bound, Lt) or high < bound.lt, (gen.name, name)
            assert gen.params_model.model_validate({name: control.value(-1.0)}) is not None
            assert gen.params_model.model_validate({name: control.value(1.0)}) is not None
