"""`ganbridge eval image`'s "as served" figures: what a client gets from the bridge, not the raw network.

The bridge's image adapter adds to the network what a client sees: the truncation of its params
(default 0.4), crisp edges, a cleared margin. These figures are of its outputs at the native size,
rendered through the adapter with seeded latents as a `generate` would be, for a model with
categories:

- nearest in category: the share of samples, asked for a category, whose nearest training image
  (the evaluation's feature space) is of that category; beside it the held-out images' own share;
- spread (as `evaluate`'s) and recall against the held-out images: how much range is kept;
- haze: the share of pixels with a faint alpha (1-15), which a crisp glyph does not have;
- border: the share of samples with any alpha on the canvas's outermost pixels;
- smears: the share of samples with more light ink than 99% of the held-out images (the share of
  their solid pixels lighter than LIGHT): grey blots rather than strokes;
- `any` balance: how often each category comes up when none is asked, over many seeds.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ganbridge.generators.image.adapter import ImageGenerator
from ganbridge.generators.image.evaluate import PixelFeatures, pairwise_distances, precision_recall, within_class_spread
from ganbridge.generators.image.model import ANY, NATIVE

MAX_PER_CATEGORY = 1000  # category c's seeds start at c x this, so categories never share one
FAINT = (1, 15)  # alpha levels of a haze
SOLID = 224  # alpha from which a pixel is solid ink
LIGHT = 96  # mean of R, G and B above which solid ink is light


def served_images(gen: ImageGenerator, params: dict, seeds: Sequence[int]) -> np.ndarray:
    """The adapter's PNGs for one params dict and each seed, as RGBA arrays."""
    p = gen.params_model.model_validate(params)
    outs = gen.render([p] * len(seeds), [gen.random_latent(p, s) for s in seeds])
    return np.stack([np.asarray(Image.open(io.BytesIO(o.data)).convert("RGBA")) for o in outs])


def any_balance(gen: ImageGenerator, model: str, seeds: Sequence[int]) -> dict:
    """How often each category comes up under `category: any` over `seeds`: the character is drawn
    from the seeded latent (as a render reads it), so no image is needed."""
    p = gen.params_model.model_validate({"model": model, "category": ANY})
    classes = gen.models[model].net.config.classes
    counts = Counter(classes[gen.label(p, gen.random_latent(p, s))] for s in seeds)
    per = [counts.get(c, 0) for c in classes]
    return {
        "seeds": len(seeds), "fewest": min(per), "most": max(per), "even": round(len(seeds) / len(classes), 1),
        "counts": dict(zip(classes, per)),
    }  # fmt: skip


def light_ink_share(images: np.ndarray) -> np.ndarray:
    """Per image: the share of its solid pixels whose colour is light (mean of R, G and B above
    LIGHT). A glyph's ink is dark; a grey smear is solid but light."""
    solid = images[..., 3] >= SOLID
    light = images[..., :3].astype(np.int64).mean(axis=-1) > LIGHT
    return (solid & light).sum(axis=(1, 2)) / np.maximum(solid.sum(axis=(1, 2)), 1)


def cleanliness(images: np.ndarray, smear_threshold: float) -> dict[str, float]:
    """Haze, border and smear shares of RGBA images (see the module's docstring)."""
    alpha = images[..., 3]
    ring = np.zeros(alpha.shape[1:], bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return {
        "haze": round(float(((alpha >= FAINT[0]) & (alpha <= FAINT[1])).mean()), 4),
        "border": round(float((alpha[:, ring] > 0).any(axis=1).mean()), 4),
        "smears": round(float((light_ink_share(images) > smear_threshold).mean()), 4),
    }


def served_figures(
    gen: ImageGenerator,
    model: str,
    train: np.ndarray,
    train_labels: np.ndarray | None,
    held_out: np.ndarray,
    held_out_labels: np.ndarray | None,
    truncations: Sequence[float | None] = (None,),
    per_category: int = 20,
    balance_seeds: int = 3100,
    seed: int = 0,
) -> dict:
    """The "as served" table: one row per truncation (None: the params' default), the held-out
    images' own figures, and, for a model with categories, the `any` balance. Category c's samples
    take seeds seed + MAX_PER_CATEGORY c + i; a model without categories draws 8 x per_category
    samples in one pool."""
    if per_category > MAX_PER_CATEGORY:
        raise ValueError(f"at most {MAX_PER_CATEGORY} samples per category")
    classes = list(gen.models[model].net.config.classes)
    features = PixelFeatures(train)
    train_features, ref = features(train), features(held_out)
    threshold = float(np.quantile(light_ink_share(held_out), 0.99))
    rng = np.random.default_rng(seed)

    def nearest_in_category(images: np.ndarray, labels: np.ndarray | None) -> float | None:
        if not classes or train_labels is None or labels is None:
            return None
        nearest = train_labels[np.argmin(pairwise_distances(features(images), train_features), axis=1)]
        return round(float((nearest == labels).mean()), 3)

    categories: list[str | None] = list(classes) or [None]
    count = per_category if classes else 8 * per_category
    rows: dict[str, dict] = {}
    for t in truncations:
        params = {"model": model, "size": NATIVE, **({} if t is None else {"truncation": t})}
        truncation = gen.params_model.model_validate(params).truncation
        images = np.concatenate(
            [
                served_images(gen, {**params, **({"category": c} if c else {})}, range(first, first + count))
                for first, c in ((seed + MAX_PER_CATEGORY * i, c) for i, c in enumerate(categories))
            ]
        )
        labels = np.repeat(np.arange(len(categories)), count)
        # Recall against as many samples as in the floor's rows (2 per held-out image), drawn from
        # every category alike.
        some = rng.permutation(len(images))[: 2 * len(held_out)]
        rows[f"truncation {truncation:g}"] = {
            "nearest_in_category": nearest_in_category(images, labels),
            "spread": within_class_spread(features(images), labels),
            "recall": precision_recall(ref, features(images[some]))["recall"],
            **cleanliness(images, threshold),
        }
    rows["held-out (real)"] = {
        "nearest_in_category": nearest_in_category(held_out, held_out_labels),
        "spread": within_class_spread(ref, held_out_labels if classes else None),
        "recall": None,
        **cleanliness(held_out, threshold),
    }
    if classes:
        rows["any_balance"] = any_balance(gen, model, range(seed, seed + balance_seeds))
    rows["setup"] = {
        "per_category": count,
        "smear_threshold": round(threshold, 3),
        "native_size": int(held_out.shape[1]),
    }
    return rows
