"""`ganbridge eval image`: quality figures that need no downloaded network.

- Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al., Progressive GAN): 7x7
  patches from each pyramid level (64, 32, 16 px), each level normalised per channel, SWD per level
  (x1000, as in the paper) and their mean.
- Precision and recall (Kynkaanniemi et al. 2019) and coverage (Naeem et al. 2020) with
  k-nearest-neighbour balls, in a feature space computed offline: the top 64 principal components
  of 32x32 premultiplied RGBA, fitted on the training images.
- A copy check: each sample's distance to its nearest training image, next to the same for the
  held-out images (which are certainly not copies).
- Spread: the mean distance between two images of one category (the whole set for a model
  without categories), in the same feature space, next to the same for real images: far less
  spread is a model that varies too little, far more one that varies in ways the data does not.
- For a model with categories, class agreement: the share of samples whose 5 nearest training
  images (same feature space) are mostly of the category asked for; for the floor, held-out images
  and their own categories.

Each figure is given for generated vs held-out, real training images vs held-out (the floor), and an
untrained generator vs held-out (the ceiling).
"""

from __future__ import annotations

import numpy as np
import torch

from ganbridge.generators.gan.metrics import sliced_wasserstein
from ganbridge.generators.image.model import ImageNetwork, to_uint8_rgba


def _premultiplied(images: np.ndarray) -> np.ndarray:
    """uint8 straight RGBA (N, H, W, 4) -> float premultiplied in [0, 1]."""
    x = images.astype(np.float64) / 255.0
    return np.concatenate([x[..., :3] * x[..., 3:], x[..., 3:]], axis=-1)


def _down(x: np.ndarray) -> np.ndarray:
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def laplacian_pyramid(images: np.ndarray, levels: int = 3) -> list[np.ndarray]:
    """Band-pass levels, finest first; the last level is the low-pass residual."""
    out, x = [], images
    for _ in range(levels - 1):
        small = _down(x)
        up = small.repeat(2, axis=1).repeat(2, axis=2)
        out.append(x - up)
        x = small
    out.append(x)
    return out


def _patches(level: np.ndarray, per_image: int, size: int, rng: np.random.Generator) -> np.ndarray:
    n, h, w, _ = level.shape
    ys = rng.integers(0, h - size + 1, (n, per_image))
    xs = rng.integers(0, w - size + 1, (n, per_image))
    out = [level[i, y : y + size, x : x + size].reshape(-1) for i in range(n) for y, x in zip(ys[i], xs[i])]
    return np.asarray(out)


def pyramid_swd(a_images: np.ndarray, b_images: np.ndarray, patches: int = 8192, size: int = 7, seed: int = 0) -> dict:
    """SWD x1000 per pyramid level (64, 32, 16 px) and the mean; both sets uint8 RGBA."""
    rng = np.random.default_rng(seed)
    levels_a = laplacian_pyramid(_premultiplied(a_images))
    levels_b = laplacian_pyramid(_premultiplied(b_images))
    out = {}
    for la, lb in zip(levels_a, levels_b):
        per_a = max(1, patches // len(la))
        per_b = max(1, patches // len(lb))
        pa, pb = _patches(la, per_a, size, rng), _patches(lb, per_b, size, rng)
        m = min(len(pa), len(pb))
        pa, pb = pa[rng.permutation(len(pa))[:m]], pb[rng.permutation(len(pb))[:m]]
        channels = la.shape[-1]
        both = np.concatenate([pa, pb]).reshape(-1, size * size, channels)
        mean, std = both.mean(axis=(0, 1)), both.std(axis=(0, 1)) + 1e-8
        na = ((pa.reshape(-1, size * size, channels) - mean) / std).reshape(len(pa), -1)
        nb = ((pb.reshape(-1, size * size, channels) - mean) / std).reshape(len(pb), -1)
        out[f"{la.shape[1]}px"] = round(1000 * sliced_wasserstein(na, nb, 256, rng, repeats=4), 2)
    out["mean"] = round(float(np.mean(list(out.values()))), 2)
    return out


class PixelFeatures:
    """PCA of 32x32 premultiplied RGBA, fitted on the training images."""

    def __init__(self, train: np.ndarray, dims: int = 64):
        x = self._flat(train)
        self.mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.basis = vt[:dims].T

    @staticmethod
    def _flat(images: np.ndarray) -> np.ndarray:
        return _down(_premultiplied(images)).reshape(len(images), -1)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return (self._flat(images) - self.mean) @ self.basis


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(0.0, (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Share of fakes inside the real manifold (precision), and of reals inside the fake one (recall)."""

    def radii(x: np.ndarray) -> np.ndarray:
        d = pairwise_distances(x, x)
        return np.sort(d, axis=1)[:, min(k, len(x) - 1)]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    d = pairwise_distances(fake, real)
    inside = d <= r_real[None, :]  # fake i lies in real j's ball
    precision = float(inside.any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    # Coverage (Naeem et al. 2020): reals with a fake in their ball; a collapsed generator that sits
    # in a few big balls gets full precision but low coverage.
    coverage = float(inside.any(axis=0).mean())
    return {"precision": round(precision, 3), "recall": round(recall, 3), "coverage": round(coverage, 3)}


def nearest_train_distance(images: np.ndarray, train: np.ndarray) -> np.ndarray:
    """RMS pixel distance (premultiplied RGBA, 0-255 scale) from each image to its nearest training image."""
    a = _premultiplied(images).reshape(len(images), -1) * 255
    b = _premultiplied(train).reshape(len(train), -1) * 255
    return pairwise_distances(a, b).min(axis=1) / np.sqrt(a.shape[1])


def copy_check(fake: np.ndarray, held_out: np.ndarray, train: np.ndarray) -> dict:
    """How close samples sit to their nearest training image, next to how close held-out images do."""
    copy_fake = nearest_train_distance(fake, train)
    copy_held = nearest_train_distance(held_out, train)
    return {
        "median_nn_distance_generated": round(float(np.median(copy_fake)), 2),
        "median_nn_distance_held_out": round(float(np.median(copy_held)), 2),
        "share_generated_closer_than_5pct_of_held_out": round(
            float((copy_fake < np.percentile(copy_held, 5)).mean()), 3
        ),
        "note": "RMS pixel distance (0-255) to the nearest training image; copies would sit far below held-out",
    }


def generate(
    net: ImageNetwork, n: int, classes: int, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """n samples and their categories (drawn uniformly unless given; None for a model without)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, net.config.z_dim, generator=g)
    y = torch.randint(classes, (n,), generator=g) if net.config.classes else None
    if y is not None and labels is not None:
        y = torch.as_tensor(labels, dtype=torch.int64)
    with torch.no_grad():
        images = np.concatenate(
            [to_uint8_rgba(net(z[i : i + 64], None if y is None else y[i : i + 64])) for i in range(0, n, 64)]
        )
    return images, None if y is None else y.numpy()


def samples_by_class(net: ImageNetwork, per_class: int, seed: int) -> dict[int, list[np.ndarray]]:
    """`per_class` samples of every category of a model with categories, for a sheet."""
    classes = len(net.config.classes)
    labels = np.repeat(np.arange(classes), per_class)
    images, _ = generate(net.eval(), len(labels), classes, seed, labels)
    return {c: list(images[labels == c]) for c in range(classes)}


def class_agreement(
    train_features: np.ndarray, train_labels: np.ndarray, features: np.ndarray, labels: np.ndarray, k: int = 5
) -> float:
    """Share of images (given by their features) whose k nearest training images are mostly of the
    category asked for: does a sample of category "A" look like the A's? Ties go to the lower index."""
    d = pairwise_distances(features, train_features)
    nearest = train_labels[np.argsort(d, axis=1)[:, :k]]
    votes = np.stack([(nearest == c).sum(axis=1) for c in range(int(train_labels.max()) + 1)], axis=1)
    return round(float((votes.argmax(axis=1) == labels).mean()), 3)


def within_class_spread(features: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Mean distance between two different images of one category, averaged over the categories
    that have at least two images (one category when labels is None)."""
    labels = np.zeros(len(features), dtype=np.int64) if labels is None else np.asarray(labels)
    spreads = []
    for c in np.unique(labels):
        f = features[labels == c]
        if len(f) >= 2:
            d = pairwise_distances(f, f)
            spreads.append(d.sum() / (len(f) * (len(f) - 1)))  # the zero diagonal left out
    return round(float(np.mean(spreads)), 3)


def evaluate(
    net: ImageNetwork,
    train: np.ndarray,
    held_out: np.ndarray,
    n: int = 1000,
    seed: int = 0,
    keep: list | None = None,
    train_labels: np.ndarray | None = None,
    held_out_labels: np.ndarray | None = None,
) -> dict:
    """The table for the model card: generated / real floor / untrained ceiling, each vs held-out.
    `keep`, if given, receives the generated samples (for a sample sheet). With the labels of a
    model with categories, each row also gets its class agreement (see class_agreement)."""
    net = net.eval()
    classes = max(1, len(net.config.classes))
    fake, fake_labels = generate(net, n, classes, seed)
    if keep is not None:
        keep.extend(fake)
    torch.manual_seed(seed)
    untrained, _ = generate(ImageNetwork(net.config).eval(), n, classes, seed)
    rng = np.random.default_rng(seed)
    floor = train[rng.permutation(len(train))[: min(n, len(train))]]
    features = PixelFeatures(train)
    ref = features(held_out)
    rows = {}
    for name, images in (("generated", fake), ("real_train (floor)", floor), ("untrained (ceiling)", untrained)):
        rows[name] = {
            "swd_x1000": pyramid_swd(images, held_out, seed=seed),
            **precision_recall(ref, features(images[: len(held_out) * 2])),
        }
    # Spread and class agreement of real images: the held-out ones in their own categories (a
    # training image would find itself among its neighbours). A mean pairwise distance does not grow
    # with n, so about 10 held-out images per category stand fairly against about 16 samples.
    own = {"generated": features(fake), "real_train (floor)": ref, "untrained (ceiling)": features(untrained)}
    if fake_labels is None or train_labels is None or held_out_labels is None:
        for name, feats in own.items():
            rows[name]["spread"] = within_class_spread(feats)
    else:
        train_features = features(train)
        own_labels = {
            "generated": fake_labels,
            "real_train (floor)": held_out_labels,
            "untrained (ceiling)": fake_labels,
        }
        for name, feats in own.items():
            rows[name]["spread"] = within_class_spread(feats, own_labels[name])
            rows[name]["class_agreement"] = class_agreement(train_features, train_labels, feats, own_labels[name])
    rows["copy_check"] = copy_check(fake[:300], held_out, train)
    rows["setup"] = {
        "samples": n, "held_out": len(held_out), "train": len(train),
        "features": "PCA(64) of 32x32 premultiplied RGBA fitted on the training images", "k": 3,
    }  # fmt: skip
    return rows
