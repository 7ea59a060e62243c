"""Texture exemplars: named scikit-image pictures or files, cropped at random for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganbridge.generators.pixels import IMAGE_SUFFIXES

SKIMAGE_EXEMPLARS = {
    "brick": ("brick.png", "CC0 1.0 (CC0Textures Bricks25, via scikit-image)"),
    "grass": ("grass.png", "CC0 1.0 (DeviantArt linolafett Grass-01, via scikit-image)"),
    "gravel": ("gravel.png", "CC0 1.0 (CC0Textures Gravel04, via scikit-image)"),
    "starfield": ("hubble_deep_field.jpg", "Public domain (NASA Hubble eXtreme Deep Field, via scikit-image)"),
    "tissue": ("ihc.png", "No known copyright restrictions (CMMI immunohistochemistry image, via scikit-image)"),
}


def resolve_exemplar(spec: str) -> tuple[list[Path], str | None]:
    """`skimage:brick` or a file or a folder -> image paths and the licence if we know it."""
    if spec.startswith("skimage:"):
        key = spec.split(":", 1)[1]
        if key not in SKIMAGE_EXEMPLARS:
            raise ValueError(f"unknown scikit-image exemplar {key!r}; known: {', '.join(SKIMAGE_EXEMPLARS)}")
        import skimage.data

        filename, licence = SKIMAGE_EXEMPLARS[key]
        return [Path(skimage.data.__file__).parent / filename], licence
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        return files, None
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    return [path], None


def load_exemplars(paths: list[Path], crop: int) -> list[torch.Tensor]:
    """Images as float tensors (3, H, W) in [-1, 1]; each must be at least crop x crop."""
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
        except OSError as e:
            raise ValueError(f"{p}: cannot read this image ({e})") from e
        if min(rgb.shape[:2]) < crop:
            raise ValueError(f"{p}: {rgb.shape[1]}x{rgb.shape[0]} is smaller than the {crop}px training crop")
        images.append(torch.from_numpy(rgb / 127.5 - 1.0).permute(2, 0, 1).contiguous())
    return images


def random_crops(images: list[torch.Tensor], n: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        y = int(torch.randint(img.shape[1] - crop + 1, (1,), generator=gen))
        x = int(torch.randint(img.shape[2] - crop + 1, (1,), generator=gen))
        patch = img[:, y : y + crop, x : x + crop]
        if torch.rand(1, generator=gen) < 0.5:
            patch = patch.flip(2)
        if torch.rand(1, generator=gen) < 0.5:
            patch = patch.flip(1)
        out.append(patch)
    return torch.stack(out)
