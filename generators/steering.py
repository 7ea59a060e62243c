"""Preference steering: learn what a session likes from its ratings and draw the next batch.

The artist rates some items of each batch they see: like, dislike, or nothing. Within one batch a
liked item is taken to beat every other item shown with it, and an unrated one to beat the
disliked ones (the artist saw them side by side); across batches a like counts as better than
indifference and a dislike as worse. These comparisons fit a Bradley-Terry (logistic) utility,
linear in the latent's continuous parts plus one term per value of each discrete part (a glyph's
character, a piece's mode). The fit runs in the span of the rated latents (a kernel form, over a
random sign sketch for large latents), so its cost grows with the number of items more than with
the latent's size.

The next batch is a local search the artist walks, with Thompson sampling for its guesses: every
new item steps from the rated item the fit ranks best; each draws one utility from the fit's
(Laplace) posterior, and its step leans toward that draw's uphill direction; a discrete part is
the draw's best-ranked value, taken whole from that value's best-ranked item (which is then the
parent), or, when the draw ranks a value nobody has seen above every seen one, set to that new
value. Steps shrink as rated batches accumulate. This
replaces an average of everything ever liked: an average of latents leaves the region a GAN
knows, and early likes of random items anchored it for ever.

`explore` (0-1) sets how far: 0 takes small steps and no guesses (the fit's mean) and tries no new
discrete value, 1 draws at random; `ganbridge bench --only steering` measures the protocol's
default, 0.25. Torch-free: the bridge's core runs this per request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ganbridge.generators.base import DiscretePart, Latent, draw_latent

MIN_STEP = 0.05  # explore 0 still varies: a copy of the parent would waste a slot
RIDGE = 1.0  # prior precision of the continuous utility weights
RIDGE_CHOICE = 0.5  # ... and of each discrete value's own term
LEAN = 0.5  # how much of a step's noise follows the fitted uphill direction
ABSOLUTE_WEIGHT = 0.5
SKETCH_SIZE = 2048  # latents larger than this are fitted through a count sketch of this size  # a like (dislike) against indifference, next to a side-by-side comparison


@dataclass(frozen=True)
class RatedItem:
    """An item the session saw: rating +1 like, -1 dislike, 0 shown in a rated batch but unrated."""

    id: str
    latent: Latent
    rating: int
    batch: str  # the request that made it: items of one batch were seen side by side


@dataclass(frozen=True)
class Drawn:
    """A new latent, how it was drawn ("near", "new-choice", "random") and the items it came from."""

    latent: Latent
    how: str
    parents: list[str]


@dataclass
class Preference:
    """A fitted utility: item i's utility is `features[i] @ weights`; `covariance` is the Laplace
    posterior's. Columns are the continuous span's coordinates, then one per seen discrete value."""

    features: np.ndarray
    weights: np.ndarray
    covariance: np.ndarray
    choices: list[tuple]  # the seen discrete values, in column order after the span's
    item_choices: list[tuple]  # each item's discrete values (() without discrete parts)
    latents: np.ndarray  # (items, latent size): the continuous parts, flattened
    to_items: np.ndarray  # (items, span size): span weights -> coefficients of `latents` rows

    cholesky: np.ndarray = field(init=False)  # of the covariance, for drawing

    def __post_init__(self) -> None:
        self.cholesky = np.linalg.cholesky(self.covariance + 1e-9 * np.eye(len(self.weights)))

    def sample(self, rng: np.random.Generator, scale: float) -> np.ndarray:
        return self.weights + scale * (self.cholesky @ rng.standard_normal(len(self.weights)))

    def uphill(self, weights: np.ndarray) -> np.ndarray:
        """The direction in latent space (flattened continuous parts) these weights rise along."""
        span = self.features.shape[1] - len(self.choices)
        return (self.to_items @ weights[:span]).astype(np.float32) @ self.latents


def comparisons(items: Sequence[RatedItem]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(winner, loser, weight) index arrays; loser -1 is indifference (a utility of 0)."""
    winners: list[int] = []
    losers: list[int] = []
    weights: list[float] = []
    batches: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        batches.setdefault(item.batch, []).append(i)
    for members in batches.values():
        for i in members:
            for j in members:
                if items[i].rating > items[j].rating:
                    winners.append(i)
                    losers.append(j)
                    weights.append(1.0)
    for i, item in enumerate(items):
        if item.rating:
            winners.append(i if item.rating > 0 else -1)
            losers.append(-1 if item.rating > 0 else i)
            weights.append(ABSOLUTE_WEIGHT)
    return np.array(winners, int), np.array(losers, int), np.array(weights)


def _choice_of(latent: Latent, discrete: Mapping[str, DiscretePart]) -> tuple:
    return tuple(part.index(latent[key]) for key, part in discrete.items())


@functools.lru_cache(maxsize=8)
def _sketch_signs(size: int) -> tuple[np.ndarray, int]:
    """Fixed random signs for `size` dims, and how many neighbouring dims share a bucket."""
    group = -(-size // SKETCH_SIZE)
    signs = np.random.default_rng(size).choice(np.array([-1.0, 1.0], np.float32), SKETCH_SIZE * group)
    return signs, group


def sketched(latents: np.ndarray) -> np.ndarray:
    """A random sign sketch of each row: groups of neighbouring dims summed with fixed random signs
    into SKETCH_SIZE buckets. Inner products between rows are kept on average (the signs cancel
    the cross terms), at a fraction of the cost of full ones (a 512x512 texture's latent has
    16,408 dims)."""
    n, size = latents.shape
    if size <= SKETCH_SIZE:
        return latents
    signs, group = _sketch_signs(size)
    padded = np.zeros((n, SKETCH_SIZE * group), np.float32)
    padded[:, :size] = latents
    padded *= signs
    return padded.reshape(n, SKETCH_SIZE, group).sum(-1)


def _flatten(latent: Latent, continuous: Sequence[str]) -> np.ndarray:
    """The continuous parts in one row, every dimension weighed alike (measured: scaling each part
    to an equal share of the norm changed the benchmark's figures by less than their noise)."""
    return np.concatenate([latent[k].ravel() for k in continuous]).astype(np.float32)


def fit_preference(
    items: Sequence[RatedItem], continuous: Sequence[str], discrete: Mapping[str, DiscretePart]
) -> Preference:
    """The Bradley-Terry MAP fit by Newton's method, and its Laplace covariance."""
    flat = np.stack([_flatten(it.latent, continuous) for it in items])
    sketch = sketched(flat)
    gram = (sketch @ sketch.T).astype(np.float64)
    eigval, eigvec = np.linalg.eigh(gram)
    keep = eigval > 1e-6 * max(float(eigval.max()), 1e-12)
    span = eigvec[:, keep] * np.sqrt(eigval[keep])  # coordinates in an orthonormal basis of the span
    item_choices = [_choice_of(it.latent, discrete) for it in items]
    choices = sorted(set(item_choices)) if discrete else []
    one_hot = np.zeros((len(items), len(choices)))
    for i, choice in enumerate(item_choices if choices else []):
        one_hot[i, choices.index(choice)] = 1.0
    features = np.concatenate([span, one_hot], axis=1)
    ridge = np.concatenate([np.full(span.shape[1], RIDGE), np.full(len(choices), RIDGE_CHOICE)])
    winners, losers, weights = comparisons(items)
    padded = np.vstack([features, np.zeros(features.shape[1])])  # row -1: indifference
    diffs = padded[winners] - padded[losers]
    w = np.zeros(features.shape[1])
    hessian = np.diag(ridge)
    for _ in range(20):
        p = 1.0 / (1.0 + np.exp(np.clip(diffs @ w, -30, 30)))  # P(the comparison went the other way)
        grad = -diffs.T @ (weights * p) + ridge * w
        hessian = diffs.T @ (diffs * (weights * p * (1 - p))[:, None]) + np.diag(ridge)
        step = np.linalg.solve(hessian, grad)
        w -= step
        if np.abs(step).max() < 1e-3 * (1.0 + np.abs(w).max()):  # far finer than a draw's spread
            break
    to_items = eigvec[:, keep] / np.sqrt(eigval[keep])  # basis = latents.T @ to_items
    return Preference(features, w, np.linalg.inv(hessian), choices, item_choices, flat, to_items)


def step_size(explore: float, batches: int) -> float:
    """How far a new item goes from its parent (0 the same, 1 unrelated): shrinking as rated
    batches accumulate, wider with `explore`, never below MIN_STEP."""
    start = min(1.0, 0.5 * np.sqrt(explore / 0.25))
    floor = max(MIN_STEP, min(1.0, 0.12 * np.sqrt(explore / 0.25)))
    return float(max(floor, start * 0.85**batches))


def steer(
    items: Sequence[RatedItem],
    shapes: Mapping[str, tuple[int, ...]],
    discrete: Mapping[str, DiscretePart],
    count: int,
    explore: float,
    rng: np.random.Generator,
) -> list[Drawn]:
    """`count` new latents of `shapes` steered by `items` (all of them of these shapes; see
    module docstring). With no rating among the items, they are random draws."""
    shapes = dict(sorted(shapes.items()))
    if not any(it.rating for it in items) or explore >= 1.0:
        return [Drawn(draw_latent(shapes, rng), "random", []) for _ in range(count)]
    continuous = [k for k in shapes if k not in discrete]
    pref = fit_preference(items, continuous, discrete)
    step = step_size(explore, len({it.batch for it in items}))
    candidates = [i for i, it in enumerate(items) if it.rating >= 0] or list(range(len(items)))
    unseen = _unseen_choices(discrete, pref.choices)
    spread = 12.0 * explore  # the prior's spread of an unseen value's utility, in a Thompson draw
    n_span = pref.features.shape[1] - len(pref.choices)
    out = []
    # Every new item steps from the item the fit ranks best (measured: a parent chosen by each
    # item's own draw gave a random walk on textures); the draws vary the direction of the step
    # and the discrete choice.
    ranking = pref.features @ pref.weights
    for _ in range(count):
        w = pref.sample(rng, min(1.0, explore / 0.25))  # explore 0: the fit's mean, no guessing
        parent = items[max(candidates, key=lambda i: ranking[i])]
        z = draw_latent(shapes, rng)
        how = "near"
        if discrete:
            seen = w[n_span:]
            best_seen = pref.choices[int(np.argmax(seen))]
            new = rng.standard_normal(len(unseen)) * spread if unseen and spread > 0 else None
            if new is not None and float(new.max()) > float(seen.max()):
                choice, how = unseen[int(np.argmax(new))], "new-choice"
                for (key, part), value in zip(discrete.items(), choice):
                    z[key] = part.draw(value, rng)
            else:
                # the best-ranked item of the chosen value, so its continuous parts suit it
                same = [i for i in candidates if pref.item_choices[i] == best_seen] or [
                    i for i, choice in enumerate(pref.item_choices) if choice == best_seen
                ]
                parent = items[max(same, key=lambda i: ranking[i])]
                for key in discrete:
                    z[key] = parent.latent[key].copy()
        # The step's noise leans toward the drawn utility's rising direction (part by part, at a
        # typical norm), so a step is a guess at uphill rather than a blind one.
        uphill = pref.uphill(w)
        a, b = np.float32(np.sqrt(1.0 - step**2)), np.float32(step)
        offset = 0
        for key in continuous:
            size = int(np.prod(shapes[key]))
            direction = uphill[offset : offset + size]
            offset += size
            norm = float(np.linalg.norm(direction))
            noise = z[key]
            if norm > 1e-12:
                lean = (direction * (np.sqrt(size) / norm)).reshape(shapes[key]).astype(np.float32)
                noise = np.float32(np.sqrt(1 - LEAN**2)) * noise + np.float32(LEAN) * lean
            z[key] = a * parent.latent[key].astype(np.float32) + b * noise
        out.append(Drawn(z, how, [parent.id]))
    return out


def _unseen_choices(discrete: Mapping[str, DiscretePart], seen: list[tuple]) -> list[tuple]:
    """Every combination of discrete values nobody has seen yet (a few hundred at most here)."""
    if not discrete:
        return []
    combos: list[tuple] = [()]
    for part in discrete.values():
        combos = [c + (v,) for c in combos for v in range(part.count)]
    taken = set(seen)
    return [c for c in combos if c not in taken]
