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
from ganbridge.generators.image.evaluate import PixelFeatures, _pairwise, precision_recall, within_class_spread
from ganbridge.generators.image.model import ANY, NATIVE

FAINT = (1, 15)  # alpha levels of a haze
SOLID = 224  # alpha from which a pixel is solid ink
LIGHT = 96  # luminance above which solid ink is light


def render(gen: ImageGenerator, params: dict, seeds: Sequence[int]) -> tuple[np.ndarray, list[str]]:
    """The adapter's PNGs for one params dict and each seed, as RGBA arrays, and their categories."""
    p = gen.params_model.model_validate(params)
    outs = gen.render([p] * len(seeds), [gen.random_latent(p, s) for s in seeds])
    images = np.stack([np.asarray(Image.open(io.BytesIO(o.data)).convert("RGBA")) for o in outs])
    return images, [str(o.extra.get("category")) for o in outs]


def light_ink_share(images: np.ndarray) -> np.ndarray:
    """Per image: the share of its solid pixels whose colour is light (luminance above LIGHT). A
    glyph's ink is dark; a grey smear is solid but light."""
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
    images' own figures, and the `any` balance. Category c's samples take seeds seed + 1000 c + i."""
    classes = list(gen.models[model].net.config.classes)
    features = PixelFeatures(train)
    train_features, ref = features(train), features(held_out)
    threshold = float(np.quantile(light_ink_share(held_out), 0.99))

    known = train_labels if train_labels is not None else np.zeros(len(train), np.int64)

    def nearest_in_category(images: np.ndarray, labels: np.ndarray | None) -> float:
        nearest = known[np.argmin(_pairwise(features(images), train_features), axis=1)]
        return round(float((nearest == labels).mean()), 3)

    rows: dict[str, dict] = {}
    categories: list[str | None] = list(classes) or [None]  # a model without categories: one pool
    count = per_category if classes else 8 * per_category
    for t in truncations:
        params = {"model": model, "size": NATIVE, **({} if t is None else {"truncation": t})}
        truncation = gen.params_model.model_validate(params).truncation
        images = np.concatenate(
            [
                render(gen, {**params, **({"category": c} if c else {})}, [seed + 1000 * i + k for k in range(count)])[
                    0
                ]
                for i, c in enumerate(categories)
            ]
        )
        labels = np.repeat(np.arange(len(categories)), count)
        rows[f"truncation {truncation:g}"] = {
            "nearest_in_category": nearest_in_category(images, labels) if classes else None,
            "spread": within_class_spread(features(images), labels),
            "recall": precision_recall(ref, features(images[: 2 * len(held_out)]))["recall"],
            **cleanliness(images, threshold),
        }
    rows["held-out (real)"] = {
        "nearest_in_category": nearest_in_category(held_out, held_out_labels) if classes else None,
        "spread": within_class_spread(ref, held_out_labels if classes else None),
        "recall": None,
        **cleanliness(held_out, threshold),
    }
    if classes:
        _, drawn = render(gen, {"model": model, "size": NATIVE, "category": ANY}, range(seed, seed + balance_seeds))
        counts = Counter(drawn)
        per = [counts.get(c, 0) for c in classes]
        rows["any_balance"] = {
            "seeds": balance_seeds, "fewest": min(per), "most": max(per), "even": round(balance_seeds / len(classes), 1)
        }  # fmt: skip
    rows["setup"] = {
        "per_category": per_category,
        "smear_threshold": round(threshold, 3),
        "native_size": int(held_out.shape[1]),
    }
    return rows
