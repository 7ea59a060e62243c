"""Preference steering: learn what a session likes from its ratings and draw the next batch.

The artist rates some items of each batch they see: like, dislike, or nothing. Within one batch a
liked item is taken to beat every other item shown with it, and an unrated one to beat the
disliked ones (the artist saw them side by side); across batches a like counts as better than
indifference and a dislike as worse. These comparisons fit a Bradley-Terry (logistic) utility,
linear in the latent's continuous parts plus one term per value of each discrete part (a glyph's
character, a piece's mode). The fit is in kernel form, over the items' utilities (the latents'
inner products, through a random sign sketch for large latents): Newton's method on a system of
one row per item, so its cost grows with the number of items, not with the latent's size, and the
rows each item needs are kept between requests (`RowCache`).

The next batch is a local search the artist walks, with Thompson sampling for its guesses: every
new item steps from the rated item the fit ranks best; each draws one utility from the fit's
(Laplace) posterior, and its step leans toward that draw's uphill direction; a discrete part is
the draw's best-ranked value, taken whole from that value's best-ranked item (which is then the
parent), or, when the draw ranks a value nobody has seen above every seen one, set to that new
value. Steps shrink as rated batches accumulate. This replaces an average of everything ever
liked: an average of latents leaves the region a GAN knows, and early likes of random items
anchored it for ever.

`explore` (0-1) sets how far: 0 takes small steps and no guesses (the fit's mean) and tries no new
discrete value, 1 draws at random; `ganbridge bench --only steering` measures the protocol's
default, 0.25. Torch-free: the bridge's core runs this per request.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ganbridge.generators.base import DiscretePart, Latent, draw_latent
from ganbridge.generators.cache import BytesLRU

MIN_STEP = 0.05  # explore 0 still varies: a copy of the parent would waste a slot
PRIOR_SPREAD = 3.0  # the prior's spread of an item's utility, for a latent of the rated items' mean norm
RIDGE_CHOICE = 0.5  # the prior precision of each discrete value's own term (a spread of 1.4)
LEAN = 0.5  # how much of a step's noise follows the fitted uphill direction
ABSOLUTE_WEIGHT = 0.5  # a like (dislike) against indifference, next to a side-by-side comparison
SKETCH_SIZE = 2048  # latents larger than this are fitted through a count sketch of this size


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
    """A fitted utility over the session's items, in kernel form: a utility function is a vector
    `a` of per-item coefficients; item i's utility is `(kernel @ a)[i]`, its rising direction in
    latent space is `a @ latents` (the continuous parts, flattened) and a discrete value's utility
    is the sum of `a` over the items of that value, over RIDGE_CHOICE. The fit is the Laplace
    posterior of `a` (the MAP `coefficients`, and the Newton system at it for drawing)."""

    kernel: np.ndarray  # (items, items): the prior covariance of the items' utilities
    utilities: np.ndarray  # at the MAP
    coefficients: np.ndarray  # the MAP's `a`
    one_hot: np.ndarray  # (items, choices): each item's discrete value among `choices`
    choices: list[tuple]  # the seen discrete values, in column order
    item_choices: list[tuple]  # each item's discrete values (() without discrete parts)
    system: np.ndarray  # I + L @ kernel, L the likelihood's Hessian at the MAP
    incidence: np.ndarray  # (comparisons, items + 1): +-sqrt(curvature) per comparison, L = incidence.T @ incidence

    def sample(self, rng: np.random.Generator, scale: float, count: int) -> np.ndarray:
        """`count` draws of `a` (rows): the MAP plus `scale` times the posterior's spread, drawn by
        perturbing the Newton step (prior draw + likelihood draw, one solve for them all)."""
        n = len(self.utilities)
        if scale <= 0:
            return np.tile(self.coefficients, (count, 1))
        jitter = 1e-6 * max(float(np.trace(self.kernel)) / n, 1e-12)
        root = np.linalg.cholesky(self.kernel + jitter * np.eye(n))  # prior: a ~ N(0, kernel^-1)
        prior = np.linalg.solve(root.T, rng.standard_normal((n, count)))
        likelihood = (rng.standard_normal((count, len(self.incidence))) @ self.incidence)[:, :n].T
        return self.coefficients + scale * np.linalg.solve(self.system, prior + likelihood).T

    def choice_utilities(self, coefficients: np.ndarray) -> np.ndarray:
        return coefficients @ self.one_hot / RIDGE_CHOICE


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
def _sketch_signs(size: int) -> np.ndarray:
    """Fixed random signs for `size` dims (padded), one row per bucket of neighbouring dims."""
    group = -(-size // SKETCH_SIZE)
    signs = np.random.default_rng(size).choice(np.array([-1.0, 1.0], np.float32), SKETCH_SIZE * group)
    return signs.reshape(SKETCH_SIZE, group)


def sketched(latents: np.ndarray) -> np.ndarray:
    """A random sign sketch of each row: groups of neighbouring dims summed with fixed random signs
    into SKETCH_SIZE buckets. Inner products between rows are kept on average (the signs cancel
    the cross terms), at a fraction of the cost of full ones (a 512x512 texture's latent has
    16,408 dims)."""
    n, size = latents.shape
    if size <= SKETCH_SIZE:
        return latents
    signs = _sketch_signs(size)
    padded = np.zeros((n, signs.size), np.float32)
    padded[:, :size] = latents
    # one pass, no signed copy: a third of the time of multiplying and then summing
    return np.einsum("nbg,bg->nb", padded.reshape(n, *signs.shape), signs)


def _flatten(latent: Latent, continuous: Sequence[str]) -> np.ndarray:
    """The continuous parts in one row, every dimension weighed alike (measured: scaling each part
    to an equal share of the norm changed the benchmark's figures by less than their noise)."""
    return np.concatenate([latent[k].ravel() for k in continuous]).astype(np.float32)


class RowCache:
    """Each item's continuous parts as one flat row, and its sketch, kept by item id between
    requests: an item's latent never changes, and each steer of a session reads mostly the items
    the last one read (sketching a 512x512 texture's 128 latents anew costs several ms).
    `max_bytes` 0 keeps nothing."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.kept: BytesLRU[tuple[np.ndarray, np.ndarray]] = BytesLRU(max_bytes, lambda r: r[0].nbytes + r[1].nbytes)

    def rows(self, items: Sequence[RatedItem], continuous: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(flat, sketch): one row per item."""
        parts = tuple(continuous)
        rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, it in enumerate(items):
            if (kept := self.kept.get((it.id, parts))) is not None:
                rows[i] = kept
        missing = [i for i in range(len(items)) if i not in rows]
        if missing:
            flat = np.stack([_flatten(items[i].latent, parts) for i in missing])
            for i, f, s in zip(missing, flat, sketched(flat)):
                rows[i] = (f.copy(), s.copy())  # copies: a view would keep the whole stack alive
                self.kept.put((items[i].id, parts), rows[i])
        ordered = [rows[i] for i in range(len(items))]
        return np.stack([f for f, _ in ordered]), np.stack([s for _, s in ordered])


def fit_preference(
    items: Sequence[RatedItem],
    continuous: Sequence[str],
    discrete: Mapping[str, DiscretePart],
    rows: RowCache | None = None,
) -> tuple[Preference, np.ndarray]:
    """The Bradley-Terry MAP fit by Newton's method in the items' utilities, its Laplace posterior,
    and the items' continuous parts flattened (one row each), kept in `rows` for the next fit."""
    flat, sketch = (rows or RowCache(0)).rows(items, continuous)
    item_choices = [_choice_of(it.latent, discrete) for it in items]
    choices = sorted(set(item_choices)) if discrete else []
    n = len(items)
    one_hot = np.zeros((n, len(choices)))
    for i, choice in enumerate(item_choices if choices else []):
        one_hot[i, choices.index(choice)] = 1.0
    gram = (sketch @ sketch.T).astype(np.float64)
    # Utilities on the scale of the comparisons (a weaker prior, scaled by the latents' raw
    # norms, let 128 items in thousands of dimensions separate every comparison: utilities that
    # grew without end, Newton's method needing twice the steps, no better steering).
    prior = PRIOR_SPREAD**2 / max(float(np.diag(gram).mean()), 1e-12)
    kernel = gram * prior + (one_hot @ one_hot.T) / RIDGE_CHOICE
    winners, losers, weights = comparisons(items)
    winners, losers = winners % (n + 1), losers % (n + 1)  # -1, indifference, is column n (utility 0)
    utilities = np.zeros(n)
    coefficients = np.zeros(n)
    for _ in range(30):
        gradient, curvature = _likelihood(utilities, winners, losers, weights)
        hessian = _laplacian(winners, losers, curvature, n)
        coefficients = np.linalg.solve(_plus_identity(hessian @ kernel), hessian @ utilities - gradient)
        new = kernel @ coefficients
        # Newton's method converges fast: a step this small leaves an error of about 1e-5, far
        # finer than a draw's spread (measured on 16 batches of a texture: steps of 3.2, 1.6, 0.67,
        # 0.14, 0.006, then 1e-5)
        done = np.abs(new - utilities).max() < 1e-2 * (1.0 + np.abs(new).max())
        utilities = new
        if done:
            break
    _, curvature = _likelihood(utilities, winners, losers, weights)
    root = np.sqrt(curvature)
    incidence = np.zeros((len(weights), n + 1))
    incidence[np.arange(len(weights)), winners] = root
    incidence[np.arange(len(weights)), losers] = -root
    system = _plus_identity(_laplacian(winners, losers, curvature, n) @ kernel)
    pref = Preference(kernel, utilities, coefficients, one_hot, choices, item_choices, system, incidence)
    return pref, flat


def _plus_identity(matrix: np.ndarray) -> np.ndarray:
    """`matrix` + I, in place (`matrix` is a fresh product)."""
    matrix.flat[:: len(matrix) + 1] += 1.0
    return matrix


def _likelihood(
    utilities: np.ndarray, winners: np.ndarray, losers: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The comparisons' negative log-likelihood: its gradient in the utilities, and each
    comparison's curvature (its Hessian is the Laplacian of the comparisons weighted by these)."""
    n = len(utilities)
    padded = np.append(utilities, 0.0)  # indifference, column n, has utility 0
    p = 1.0 / (1.0 + np.exp(np.clip(padded[winners] - padded[losers], -30, 30)))  # P(the other way)
    gradient = np.bincount(losers, weights * p, n + 1) - np.bincount(winners, weights * p, n + 1)
    return gradient[:n], weights * p * (1 - p)


def _laplacian(winners: np.ndarray, losers: np.ndarray, curvature: np.ndarray, n: int) -> np.ndarray:
    """sum_k curvature_k (e_w - e_l)(e_w - e_l)^T over the items (indifference dropped)."""
    m = n + 1
    cells = np.concatenate([winners * m + winners, losers * m + losers, winners * m + losers, losers * m + winners])
    full = np.bincount(cells, np.concatenate([curvature, curvature, -curvature, -curvature]), m * m)
    return full.reshape(m, m)[:n, :n]


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
    rows: RowCache | None = None,
) -> list[Drawn]:
    """`count` new latents of `shapes` steered by `items` (all of them of these shapes; see
    module docstring). With no rating among the items, they are random draws. `rows` keeps the
    items' flattened latents for the next steer (it never changes a draw)."""
    shapes = dict(sorted(shapes.items()))
    if not any(it.rating for it in items) or explore >= 1.0:
        return [Drawn(draw_latent(shapes, rng), "random", []) for _ in range(count)]
    continuous = [k for k in shapes if k not in discrete]
    pref, flat = fit_preference(items, continuous, discrete, rows)
    step = step_size(explore, len({it.batch for it in items}))
    candidates = [i for i, it in enumerate(items) if it.rating >= 0] or list(range(len(items)))
    unseen = _unseen_choices(discrete, pref.choices)
    spread = 12.0 * explore  # the prior's spread of an unseen value's utility, in a Thompson draw
    # Every new item steps from the item the fit ranks best (measured: a parent chosen by each
    # item's own draw gave a random walk on textures); the draws vary the direction of the step
    # and the discrete choice. explore 0: the fit's mean, no guessing.
    draws = pref.sample(rng, min(1.0, explore / 0.25), count)
    uphills = (draws.astype(np.float32) @ flat) if len(flat) else np.zeros((count, 0), np.float32)
    ranking = pref.utilities
    best = max(candidates, key=lambda i: ranking[i])
    out = []
    for draw, uphill in zip(draws, uphills):
        parent = items[best]
        z = draw_latent(shapes, rng)
        how = "near"
        if discrete:
            seen = pref.choice_utilities(draw)
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
        out.append(Drawn(_step(parent.latent, z, uphill, shapes, continuous, step), how, [parent.id]))
    return out


def _step(
    parent: Latent,
    z: dict[str, np.ndarray],
    uphill: np.ndarray,
    shapes: Mapping[str, tuple[int, ...]],
    continuous: Sequence[str],
    step: float,
) -> dict[str, np.ndarray]:
    """`z`'s continuous parts replaced by a step of size `step` from the parent's, its noise
    leaning toward `uphill` (part by part, at a typical norm), so a step is a guess at uphill
    rather than a blind one."""
    keep = float(np.sqrt(1.0 - step**2))
    offset = 0
    for key in continuous:
        size = int(np.prod(shapes[key]))
        direction = uphill[offset : offset + size].reshape(shapes[key])
        offset += size
        norm = float(np.linalg.norm(direction))
        # keep * parent + step * noise, where noise leans: sqrt(1 - LEAN^2) * z + LEAN * the
        # direction at a typical norm (sqrt(size)); in float32 throughout, with few temporaries
        if norm > 1e-12:
            new = z[key] * (step * float(np.sqrt(1 - LEAN**2)))
            new += direction * (step * LEAN * float(np.sqrt(size)) / norm)
        else:
            new = z[key] * step
        new += parent[key] * keep
        z[key] = new.astype(np.float32, copy=False)
    return z


def _unseen_choices(discrete: Mapping[str, DiscretePart], seen: list[tuple]) -> list[tuple]:
    """Every combination of discrete values nobody has seen yet (a few hundred at most here)."""
    if not discrete:
        return []
    combos: list[tuple] = [()]
    for part in discrete.values():
        combos = [c + (v,) for c in combos for v in range(part.count)]
    taken = set(seen)
    return [c for c in combos if c not in taken]
