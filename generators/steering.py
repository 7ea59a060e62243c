"""Preference steering: learn what a session likes from its ratings and draw the next batch.

The artist rates some items of each batch they see: like, dislike, or nothing. Within one batch a
liked item is taken to beat every other item shown with it, and an unrated one to beat the
disliked ones (the artist saw them side by side); across batches a like counts as better than
indifference and a dislike as worse. These comparisons fit a Bradley-Terry (logistic) utility,
linear in the latent's continuous parts plus one term per value of each discrete part (a glyph's
character, a piece's mode). The fit is in kernel form, over the items' utilities (the latents'
inner products, through a random sign sketch for large latents): Newton's method on a system of
one row per item, so its cost grows with the number of items, not with the latent's size, and a
session's rows and their inner products are kept between its requests (`RowCache`), so a request
adds only its new items'.

The next batch is a local search the artist walks, with Thompson sampling for its guesses: every
new item steps from the rated item the fit ranks best; each draws one utility from the fit's
(Laplace) posterior, and its step leans toward that draw's uphill direction; a discrete part is
the draw's best-ranked value, taken whole from that value's best-ranked item (which is then the
parent), or, when the draw ranks a value nobody has seen above every seen one, set to that new
value. Steps shrink as rated batches accumulate. This replaces an average of everything ever
liked: an average of latents leaves the region a GAN knows, and early likes of random items
anchored it for ever.

A generator can name params that steering moves beside the latent (its controls: a piece's
density, say; Generator.steered_controls). Each item's values, scaled to -1..1 over the
control's range, add a linear term to its utility (a second kernel, over the values centred on
the items' mean, so that values every item shares say nothing), and a new item's values step
from its parent's as its latent does, leaning toward the draw's uphill, clipped to the range. A
control every item shares stays as it is: the ratings say nothing about it, and exploring it
unasked cost music's steering benchmark 0.11 (0.683 to 0.574: a gallery's looks are of its
pieces at the params it was made with).

`explore` (0-1) sets how far: 0 takes small steps and no guesses (the fit's mean) and tries no new
discrete value, 1 draws at random; `ganbridge bench --only steering` measures the protocol's
default, 0.25. Torch-free: the bridge's core runs this per request.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ganbridge.generators.base import DiscretePart, Latent, draw_latent, seeded_rng
from ganbridge.generators.cache import BytesLRU, Scratch
from ganbridge.generators.gallery import Gallery

MIN_STEP = 0.05  # explore 0 still varies: a copy of the parent would waste a slot
PRIOR_SPREAD = 3.0  # the prior's spread of an item's utility, for a latent of the rated items' mean norm
RIDGE_CHOICE = 0.5  # the prior precision of each discrete value's own term (a spread of 1.4)
LEAN = 0.5  # how much of a step's noise follows the fitted uphill direction
ABSOLUTE_WEIGHT = 0.5  # a like (dislike) against indifference, next to a side-by-side comparison
SKETCH_SIZE = 2048  # latents larger than this are fitted through a count sketch of this size
CONTROL_SHARE = 1.0  # the prior variance of an item's utility from its controls, next to its latent's
CONTROL_SPREAD = 0.5  # how far (of a control's -1..1) a step of size 1 moves it, as it moves a latent


@dataclass(frozen=True)
class RatedItem:
    """An item the session saw: rating +1 like, -1 dislike, 0 shown in a rated batch but unrated."""

    id: str
    latent: Latent
    rating: int
    batch: str  # the request that made it: items of one batch were seen side by side
    look: np.ndarray | None = None  # how its output looks (Output.look), when its kind describes one
    controls: np.ndarray | None = None  # its steered params' values, scaled to -1..1 (Control.scaled)


@dataclass(frozen=True)
class Drawn:
    """A new latent, how it was drawn ("near", "new-choice", "random", "gallery"), the items it came
    from and, where the items had steered params, its values of them (scaled to -1..1)."""

    latent: Latent
    how: str
    parents: list[str]
    controls: np.ndarray | None = None


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
    # each comparison's winner and loser (column n: indifference) and sqrt(curvature) at the MAP:
    # L = incidence.T @ incidence, incidence one row per comparison, +-sqrt(curvature) in its columns
    winners: np.ndarray
    losers: np.ndarray
    root: np.ndarray
    scratch: Scratch = field(default_factory=lambda: Scratch(0))  # for the draws' temporaries

    def sample(self, rng: np.random.Generator, scale: float, count: int) -> np.ndarray:
        """`count` draws of `a` (rows): the MAP plus `scale` times the posterior's spread, drawn by
        perturbing the Newton step (prior draw + likelihood draw, one solve for them all)."""
        n = len(self.utilities)
        if scale <= 0:
            return np.tile(self.coefficients, (count, 1))
        root = self._prior_root()  # prior: a ~ N(0, kernel^-1)
        prior = np.linalg.solve(root.T, rng.standard_normal((n, count)))
        likelihood = (rng.standard_normal((count, len(self.root))) @ self._incidence())[:, :n].T
        return self.coefficients + scale * np.linalg.solve(self.system, prior + likelihood).T

    def _prior_root(self) -> np.ndarray:
        """The Cholesky factor of the kernel plus a little jitter * I. An item shown again (a
        fixed seed, a strength-0 variation) repeats a row of the kernel, which is then singular,
        and float32 inner products can leave it a little below zero there: measured -9e-6 with
        one latent 18 times among 72 items, past the first jitter (9e-6). So the jitter grows
        tenfold until the factor exists (the first try is the one that almost always does), at
        most to the kernel's mean variance, past which only a kernel of NaNs fails."""
        n = len(self.utilities)
        mean_variance = max(float(np.trace(self.kernel)) / n, 1e-12)
        shifted = self.scratch.array("shifted", (n, n), np.float64)
        for exponent in range(-6, 1):
            np.copyto(shifted, self.kernel)
            shifted.flat[:: n + 1] += mean_variance * 10.0**exponent  # plus jitter * I, without making I
            try:
                return np.linalg.cholesky(shifted)
            except np.linalg.LinAlgError:
                if exponent == 0:  # a kernel of NaNs: the error is the fault's
                    raise
        return shifted  # not reached: the last try returns or raises

    def _incidence(self) -> np.ndarray:
        m = len(self.root)
        incidence = self.scratch.array("incidence", (m, len(self.utilities) + 1), np.float64)
        incidence.fill(0.0)
        incidence[np.arange(m), self.winners] = self.root
        incidence[np.arange(m), self.losers] = -self.root
        return incidence

    def choice_utilities(self, coefficients: np.ndarray) -> np.ndarray:
        return coefficients @ self.one_hot / RIDGE_CHOICE


def comparisons(items: Sequence[RatedItem]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(winner, loser, weight) index arrays; loser -1 is indifference (a utility of 0). In a fixed
    order, which the posterior's draws follow: batches in the order they first appear, within one
    by winner then loser (in the items' order), then each rating against indifference."""
    ratings = np.array([it.rating for it in items], int)
    first_seen: dict[str, int] = {}
    batches = np.array([first_seen.setdefault(it.batch, len(first_seen)) for it in items], int)
    order = np.argsort(batches, kind="stable")  # batch by batch, the items in their order within each
    r, b = ratings[order], batches[order]
    side_by_side = (b[:, None] == b[None, :]) & (r[:, None] > r[None, :])
    won, lost = np.nonzero(side_by_side)  # row by row: by winner, then loser
    rated = np.flatnonzero(ratings)
    liked = ratings[rated] > 0
    winners = np.concatenate([order[won], np.where(liked, rated, -1)])
    losers = np.concatenate([order[lost], np.where(liked, -1, rated)])
    weights = np.concatenate([np.ones(len(won)), np.full(len(rated), ABSOLUTE_WEIGHT)])
    return winners, losers, weights


def _choice_of(latent: Latent, discrete: Mapping[str, DiscretePart]) -> tuple:
    return tuple(part.index(latent[key]) for key, part in discrete.items())


@functools.lru_cache(maxsize=8)
def _sketch_signs(size: int) -> np.ndarray:
    """Fixed random signs for `size` dims (padded), one row per bucket of neighbouring dims."""
    group = -(-size // SKETCH_SIZE)
    signs = np.random.default_rng(size).choice(np.array([-1.0, 1.0], np.float32), SKETCH_SIZE * group)
    return signs.reshape(SKETCH_SIZE, group)


def sketched(latents: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
    """A random sign sketch of each row: groups of neighbouring dims summed with fixed random signs
    into SKETCH_SIZE buckets. Inner products between rows are kept on average (the signs cancel
    the cross terms), at a fraction of the cost of full ones (a 512x512 texture's latent has
    16,408 dims). The padded rows go in `scratch`, if given."""
    n, size = latents.shape
    if size <= SKETCH_SIZE:
        return latents
    signs = _sketch_signs(size)
    padded = (scratch or Scratch(0)).array("padded", (n, signs.size))
    padded[:, :size] = latents
    padded[:, size:] = 0.0
    # one pass, no signed copy: a third of the time of multiplying and then summing
    return np.einsum("nbg,bg->nb", padded.reshape(n, *signs.shape), signs)


class _Stack:
    """One session's rows, where they stay between its requests: per item (one slot each) its
    continuous parts in one row (every dimension weighed alike; measured: scaling each part to an
    equal share of the norm changed the benchmark's figures by less than their noise), its sketch
    and its discrete values, and the sketches' inner products. A request's few new items take the
    slots of items it no longer reads, so the rest are neither copied nor multiplied again
    (stacking a 512x512 texture's 128 latents and their inner products anew costs about 1 ms)."""

    def __init__(
        self,
        items: Sequence[RatedItem],
        continuous: tuple[str, ...],
        discrete: Mapping[str, DiscretePart],
        scratch: Scratch,
    ) -> None:
        n = len(items)
        self.continuous, self.discrete = continuous, discrete
        size = sum(items[0].latent[k].size for k in continuous)
        buckets = min(size, SKETCH_SIZE)
        self.flat = np.empty((n, size), np.float32)
        self.sketch = np.empty((n, buckets), np.float32)
        self.gram = np.empty((n, n), np.float32)
        self.choices: list[tuple] = [()] * n
        self.ids: list[str | None] = [None] * n
        self.slot: dict[str, int] = {}
        self.lock = threading.Lock()
        self._write(list(range(n)), items, scratch)

    @property
    def nbytes(self) -> int:
        return self.flat.nbytes + self.sketch.nbytes + self.gram.nbytes

    def place(self, items: Sequence[RatedItem], scratch: Scratch) -> np.ndarray | None:
        """The items' slots, the new ones written into slots none of them holds; None when there
        are too few such slots (or an item comes twice: its two rows would share a slot)."""
        if len({it.id for it in items}) < len(items):
            return None
        slots = [self.slot.get(it.id, -1) for it in items]
        missing = [i for i, s in enumerate(slots) if s < 0]
        if missing:
            taken = set(slots)
            free = [s for s in range(len(self.ids)) if s not in taken]
            if len(free) < len(missing):
                return None
            for i, s in zip(missing, free):
                slots[i] = s
            self._write([slots[i] for i in missing], [items[i] for i in missing], scratch)
        return np.array(slots)

    def _write(self, slots: list[int], items: Sequence[RatedItem], scratch: Scratch) -> None:
        for s, it in zip(slots, items):
            if (old := self.ids[s]) is not None:
                del self.slot[old]
            self.ids[s] = it.id
            self.slot[it.id] = s
            self.choices[s] = _choice_of(it.latent, self.discrete)
        rows = np.array(slots)
        if len(slots) == len(self.ids):  # every slot, in order: one pass each (the products symmetric)
            # one call for every part of every item, row after row (a call per item costs 0.2 ms more)
            parts = [it.latent[k].ravel() for it in items for k in self.continuous]
            np.concatenate(parts, out=self.flat.reshape(-1))
            self.sketch[:] = sketched(self.flat, scratch)
            np.matmul(self.sketch, self.sketch.T, out=self.gram)
            return
        for s, it in zip(slots, items):
            np.concatenate([it.latent[k].ravel() for k in self.continuous], out=self.flat[s])
        fresh = scratch.array("fresh", (len(rows), self.flat.shape[1]))
        np.take(self.flat, rows, axis=0, out=fresh, mode="clip")  # (not "raise": it copies first)
        sketches = sketched(fresh, scratch)
        self.sketch[rows] = sketches
        products = sketches @ self.sketch.T
        self.gram[rows] = products
        self.gram[:, rows] = products.T
        among = np.triu(products[:, rows])  # the new items among themselves: one triangle, mirrored
        self.gram[np.ix_(rows, rows)] = among + np.triu(among, 1).T


class Rows:
    """A request's items in a `_Stack`: their inner products, discrete values and combinations."""

    def __init__(self, stack: _Stack, slots: np.ndarray, scratch: Scratch) -> None:
        self.stack, self.slots, self.scratch = stack, slots, scratch
        self.in_order = len(slots) == len(stack.ids) and bool((slots == np.arange(len(slots))).all())

    @property
    def choices(self) -> list[tuple]:
        return [self.stack.choices[s] for s in self.slots]

    def gram(self) -> np.ndarray:
        """(items, items): the sketches' inner products, in float64."""
        gram = self.stack.gram if self.in_order else self.stack.gram[np.ix_(self.slots, self.slots)]
        return gram.astype(np.float64)

    def combine(self, weights: np.ndarray) -> np.ndarray:
        """(rows of weights, continuous dims): each row of `weights` (one per item) times the items'
        flattened continuous parts, in float32 (in `scratch`, valid until this thread's next call)."""
        weights = weights.astype(np.float32)
        if not self.in_order:  # every slot of the stack, those of no item of this request weighed 0
            spread = np.zeros((len(weights), len(self.stack.ids)), np.float32)
            spread[:, self.slots] = weights
            weights = spread
        out = self.scratch.array("combined", (len(weights), self.stack.flat.shape[1]))
        return np.matmul(weights, self.stack.flat, out=out)


class RowCache:
    """What steering keeps between requests: each session's rows (`_Stack`), by the session and
    the latent's parts, the least recently used going first past `max_bytes` (0 keeps nothing),
    and per thread the arrays a fit works in (`scratch`). Rows are kept by item id (items never
    change); what is kept changes no choice, only the order of float32 sums (the kept inner
    products were made beside other items, the combinations sum the slots' order), so a
    steered latent by rounding: measured over 855 steers of four latent shapes against making
    every row anew, the same parents, hows and discrete values, continuous parts within 3e-4
    (the posterior's draws magnify the kernel's rounding), 3e-3 for a 40-dim latent among 128
    items (a kernel near singular)."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.kept: BytesLRU[_Stack] = BytesLRU(max_bytes, lambda stack: stack.nbytes)
        self.scratch = Scratch(max_bytes // 4)

    @contextmanager
    def rows(
        self,
        items: Sequence[RatedItem],
        continuous: Sequence[str],
        discrete: Mapping[str, DiscretePart],
        session: Hashable = None,
    ) -> Iterator[Rows]:
        """The items' rows, for the time of the `with` (a session's concurrent requests take turns)."""
        key = (session, tuple(continuous), tuple(discrete.items()), tuple(items[0].latent[k].shape for k in continuous))
        if (stack := self.kept.get(key)) is not None:
            with stack.lock:
                if (slots := stack.place(items, self.scratch)) is not None:
                    yield Rows(stack, slots, self.scratch)
                    return
        stack = _Stack(items, key[1], discrete, self.scratch)
        self.kept.pop(key)
        if len(stack.slot) == len(items):  # (an item twice would share a slot)
            self.kept.put(key, stack)
        with stack.lock:
            yield Rows(stack, np.arange(len(items)), self.scratch)


def fit_preference(
    items: Sequence[RatedItem],
    continuous: Sequence[str],
    discrete: Mapping[str, DiscretePart],
    rows: Rows | None = None,
) -> Preference:
    """The Bradley-Terry MAP fit by Newton's method in the items' utilities, and its Laplace
    posterior; `rows` are the items' (from a RowCache), made anew without."""
    if rows is None:
        with RowCache(0).rows(items, continuous, discrete) as fresh:
            return fit_preference(items, continuous, discrete, fresh)
    item_choices = rows.choices
    choices = sorted(set(item_choices)) if discrete else []
    one_hot = _one_hot(item_choices, choices)
    kernel = _with_controls(_kernel(rows.gram(), one_hot), _centred_controls(items))
    return _fitted(items, kernel, one_hot, choices, item_choices, rows.scratch)


def _fitted(
    items: Sequence[RatedItem],
    kernel: np.ndarray,
    one_hot: np.ndarray,
    choices: list[tuple],
    item_choices: list[tuple],
    scratch: Scratch,
) -> Preference:
    """The Bradley-Terry MAP of the items' comparisons under the prior `kernel`, and its Laplace posterior."""
    n = len(items)
    winners, losers, weights = comparisons(items)
    winners, losers = winners % (n + 1), losers % (n + 1)  # -1, indifference, is column n (utility 0)
    laplacian = _Laplacian(winners, losers, n)
    utilities, coefficients = _newton(kernel, laplacian, winners, losers, weights, scratch)
    _, curvature = _likelihood(utilities, winners, losers, weights)
    system = _plus_identity(laplacian(curvature, scratch) @ kernel)
    return Preference(
        kernel, utilities, coefficients, one_hot, choices, item_choices, system,
        winners, losers, np.sqrt(curvature), scratch,
    )  # fmt: skip


def _one_hot(item_choices: list[tuple], choices: list[tuple]) -> np.ndarray:
    """(items, choices): 1 where an item has that choice (no columns without discrete parts)."""
    one_hot = np.zeros((len(item_choices), len(choices)))
    if choices:
        column = {choice: c for c, choice in enumerate(choices)}
        one_hot[np.arange(len(item_choices)), [column[choice] for choice in item_choices]] = 1.0
    return one_hot


def _kernel(gram: np.ndarray, one_hot: np.ndarray) -> np.ndarray:
    """The prior covariance of the items' utilities: the latents' inner products (`gram`, a fresh
    array), scaled, plus one term per discrete value."""
    kernel = gram
    # Utilities on the scale of the comparisons (a weaker prior, scaled by the latents' raw
    # norms, let 128 items in thousands of dimensions separate every comparison: utilities that
    # grew without end, Newton's method needing twice the steps, no better steering).
    kernel *= PRIOR_SPREAD**2 / max(float(np.diag(kernel).mean()), 1e-12)
    if one_hot.size:  # (without discrete parts the term is all zeros)
        shared = one_hot @ one_hot.T
        shared /= RIDGE_CHOICE
        kernel += shared
    return kernel


def _centred_controls(items: Sequence[RatedItem]) -> np.ndarray | None:
    """(items, controls): their steered params' values less the items' mean, or None unless every
    item has them."""
    if any(it.controls is None for it in items):
        return None
    values = np.stack([np.asarray(it.controls, np.float64) for it in items])
    return values - values.mean(0) if values.shape[1] else None


def _with_controls(kernel: np.ndarray, controls: np.ndarray | None) -> np.ndarray:
    """`kernel` (a fresh array) plus the controls' term: a linear utility over their values, with
    CONTROL_SHARE of the latent's prior variance for values a full range apart."""
    if controls is not None:
        kernel += (PRIOR_SPREAD**2 * CONTROL_SHARE / (4.0 * controls.shape[1])) * (controls @ controls.T)
    return kernel


def _varied(controls: np.ndarray | None) -> np.ndarray | None:
    """Which controls the items' values differ in (centred values: any nonzero)."""
    return None if controls is None else np.abs(controls).max(0) > 1e-9


def varied_controls(items: Sequence[RatedItem]) -> np.ndarray | None:
    """Which of the items' controls steering moves (those their values differ in); None without any."""
    return _varied(_centred_controls(items))


def _stepped_controls(
    parent: RatedItem, uphill: np.ndarray | None, varied: np.ndarray | None, step: float, rng: np.random.Generator
) -> np.ndarray | None:
    """The parent's control values, those in `varied` moved by a step of size `step`, its noise
    leaning toward `uphill` (the draw's direction over the controls) as a latent's does, clipped
    to -1..1. Nothing is drawn when none varied, so the latents' draws are as without controls."""
    if parent.controls is None or uphill is None or varied is None:
        return None
    values = np.asarray(parent.controls, np.float64)
    k = int(varied.sum())
    if k == 0:
        return values.copy()
    noise = rng.standard_normal(k) * float(np.sqrt(1 - LEAN**2))
    lean = uphill[varied]
    norm = float(np.linalg.norm(lean))
    if norm > 1e-12:
        noise += LEAN * float(np.sqrt(k)) * lean / norm
    out = values.copy()
    out[varied] = np.clip(values[varied] + step * CONTROL_SPREAD * noise, -1.0, 1.0)
    return out


def _newton(
    kernel: np.ndarray,
    laplacian: _Laplacian,
    winners: np.ndarray,
    losers: np.ndarray,
    weights: np.ndarray,
    scratch: Scratch,
) -> tuple[np.ndarray, np.ndarray]:
    """The MAP's (utilities, coefficients), by Newton's method from 0."""
    n = len(kernel)
    utilities = np.zeros(n)
    coefficients = np.zeros(n)
    step = scratch.array("newton", (n, n), np.float64)
    for _ in range(30):
        gradient, curvature = _likelihood(utilities, winners, losers, weights)
        hessian = laplacian(curvature, scratch)
        np.matmul(hessian, kernel, out=step)
        coefficients = np.linalg.solve(_plus_identity(step), hessian @ utilities - gradient)
        new = kernel @ coefficients
        # Newton's method converges fast: a step this small leaves an error of about 1e-5, far
        # finer than a draw's spread (measured on 16 batches of a texture: steps of 3.2, 1.6, 0.67,
        # 0.14, 0.006, then 1e-5)
        done = np.abs(new - utilities).max() < 1e-2 * (1.0 + np.abs(new).max())
        utilities = new
        if done:
            break
    return utilities, coefficients


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


class _Laplacian:
    """sum_k curvature_k (e_w - e_l)(e_w - e_l)^T over the items (indifference dropped), for the
    comparisons' curvatures at each Newton step: which cells each comparison adds to is worked out
    once. Cells are summed in the order of comparisons, [w,w] terms first, then [l,l], [w,l] and
    [l,w]."""

    def __init__(self, winners: np.ndarray, losers: np.ndarray, n: int) -> None:
        rows = np.concatenate([winners, losers, winners, losers])
        cols = np.concatenate([winners, losers, losers, winners])
        inside = (rows < n) & (cols < n)  # a cell of indifference's row or column is dropped
        self.cells = (rows * n + cols)[inside]
        self.terms = np.flatnonzero(inside)  # into [c, c, -c, -c]
        self.n = n

    def __call__(self, curvature: np.ndarray, scratch: Scratch) -> np.ndarray:
        signed = np.concatenate([curvature, curvature, -curvature, -curvature])[self.terms]
        out = scratch.array("laplacian", (self.n * self.n,), np.float64)
        out.fill(0.0)
        np.add.at(out, self.cells, signed)
        return out.reshape(self.n, self.n)


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
    session: Hashable = None,
    gallery: Gallery | None = None,
) -> list[Drawn]:
    """`count` new latents of `shapes` steered by `items` (all of them of these shapes; see
    module docstring). With no rating among the items, they are random draws. `rows` keeps the
    items' rows for `session`'s next steer. With a `gallery` that fits (see `uses_gallery`), they
    are the gallery's items the ratings rank best (`from_gallery`)."""
    shapes = dict(sorted(shapes.items()))
    if not any(it.rating for it in items) or explore >= 1.0:
        return [Drawn(draw_latent(shapes, rng), "random", []) for _ in range(count)]
    if gallery is not None and uses_gallery(items, shapes, discrete, gallery):
        return from_gallery(items, gallery, count, explore, rng)
    continuous = [k for k in shapes if k not in discrete]
    with (rows or RowCache(0)).rows(items, continuous, discrete, session) as stacked:
        pref = fit_preference(items, continuous, discrete, stacked)
        # Every new item steps from the item the fit ranks best (measured: a parent chosen by
        # each item's own draw gave a random walk on textures); the draws vary the direction of
        # the step and the discrete choice. explore 0: the fit's mean, no guessing.
        draws = pref.sample(rng, min(1.0, explore / 0.25), count)
        uphills = stacked.combine(draws)
    controls = _centred_controls(items)
    varied = _varied(controls)
    control_uphills = [None] * count if controls is None else list(draws @ controls)
    step = step_size(explore, len({it.batch for it in items}))
    candidates = [i for i, it in enumerate(items) if it.rating >= 0] or list(range(len(items)))
    unseen = _unseen_choices(discrete, pref.choices)
    spread = 12.0 * explore  # the prior's spread of an unseen value's utility, in a Thompson draw
    ranking = pref.utilities
    best = max(candidates, key=lambda i: ranking[i])
    out = []
    for draw, uphill, control_uphill in zip(draws, uphills, control_uphills):
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
        latent = _step(parent.latent, z, uphill, shapes, continuous, step)
        out.append(Drawn(latent, how, [parent.id], _stepped_controls(parent, control_uphill, varied, step, rng)))
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
        size = math.prod(shapes[key])
        direction = uphill[offset : offset + size].reshape(shapes[key])
        offset += size
        flat = direction.ravel()
        norm = float(np.sqrt(flat @ flat))  # np.linalg.norm's own sum, without its checks
        # keep * parent + step * noise, where noise leans: sqrt(1 - LEAN^2) * z + LEAN * the
        # direction at a typical norm (sqrt(size)); in float32 throughout, in place in z's own
        # fresh draw, with one temporary
        new = z[key]
        scaled = np.empty_like(new)
        if norm > 1e-12:
            new *= step * float(np.sqrt(1 - LEAN**2))
            new += np.multiply(direction, step * LEAN * float(np.sqrt(size)) / norm, out=scaled)
        else:
            new *= step
        new += np.multiply(parent[key], keep, out=scaled)
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


# --- steering over looks: picks from a gallery (see generators/gallery.py) --------------------------


def uses_gallery(
    items: Sequence[RatedItem],
    shapes: Mapping[str, tuple[int, ...]],
    discrete: Mapping[str, DiscretePart],
    gallery: Gallery,
) -> bool:
    """Whether `gallery` can steer these items: each has a look of the gallery's size, and the
    request draws latents of the gallery's shapes with the same discrete parts free."""
    sizes = {it.look.size if it.look is not None else -1 for it in items}
    if len(sizes) != 1 or -1 in sizes:
        return False
    return gallery.fits(shapes, list(discrete), sizes.pop())


def from_gallery(
    items: Sequence[RatedItem], gallery: Gallery, count: int, explore: float, rng: np.random.Generator
) -> list[Drawn]:
    """`count` gallery items picked by the session's preference over looks: the same Bradley-Terry
    fit as over latents, with the items' looks (centred on the gallery's) as the kernel's features,
    so that items that look alike are liked alike. Each of `count` Thompson draws of the utility
    (the fit's mean at explore 0) takes the gallery item it ranks highest that is not taken yet and
    does not look like an item the session has seen (a gallery item shown before)."""
    n = len(items)
    looks = gallery.compact(np.stack([np.asarray(it.look, np.float32).ravel() for it in items]))
    gram = looks.astype(np.float64) @ looks.T.astype(np.float64)
    scale = PRIOR_SPREAD**2 / max(float(np.diag(gram).mean()), 1e-12)
    controls = _centred_controls(items)
    pref = _fitted(items, _with_controls(gram * scale, controls), np.zeros((n, 0)), [], [()] * n, Scratch(0))
    draws = pref.sample(rng, min(1.0, explore / 0.25), count)
    # A draw's utility of gallery item j is sum_i a_i k(i, j): the draw's look direction (a
    # combination of the items' looks) against j's look, one product for the whole gallery.
    directions = (draws * scale).astype(np.float32) @ looks
    ranked = np.argsort(-(directions @ gallery.compact_looks.T), axis=1)
    # the steered params step from the best-ranked item's that the artist did not dislike
    candidates = [i for i, it in enumerate(items) if it.rating >= 0] or list(range(n))
    parent = items[max(candidates, key=lambda i: pref.utilities[i])]
    control_uphills = [None] * count if controls is None else list(draws @ controls)
    varied = _varied(controls)
    step = step_size(explore, len({it.batch for it in items}))
    taken: set[int] = set()
    out = []
    for row, control_uphill in zip(ranked, control_uphills):
        pick = next(
            (int(j) for j in row if int(j) not in taken and not _seen(gallery.compact_looks[j], looks)), int(row[0])
        )
        taken.add(pick)
        latent = draw_latent(dict(sorted(gallery.shapes.items())), seeded_rng(int(gallery.seeds[pick])))
        stepped = _stepped_controls(parent, control_uphill, varied, step, rng)
        moved = stepped is not None and bool(varied is not None and varied.any())
        out.append(Drawn(latent, "gallery", [parent.id] if moved else [], stepped))
    return out


def _seen(look: np.ndarray, seen: np.ndarray) -> bool:
    """Whether `look` is (to rounding) one of the rows of `seen`: a gallery item already shown.
    Measured on glyphs: a shown gallery item's look is within 1e-7 of its stored one (relative,
    squared: the file keeps float16), the nearest other gallery item 0.02 or more."""
    distance = ((seen - look) ** 2).sum(1).min()
    return bool(distance <= 1e-4 * max(float(look @ look), 1e-12))
