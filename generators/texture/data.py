"""Texture exemplars: named scikit-image pictures, GIMP's patterns, OpenArena's textures or files,
cropped at random for training."""

from __future__ import annotations

import math
import struct
import zipfile
from pathlib import Path, PurePosixPath

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


# GIMP's patterns, as Debian's gimp-data installs them: small colour tiles, each seamless.
GIMP_PATTERNS = Path("/usr/share/gimp/2.0/patterns")
GIMP_LICENCE = "GPL-3+ (GIMP's patterns, from Debian's gimp-data package; see its copyright file)"
PATTERN_SUFFIX = ".pat"

# OpenArena's textures, as Debian's openarena-081-textures package installs them: one zip (a Quake
# "pk3") of seamless game tiles, metals among them. A texture is copied out of it once into the
# user's cache, so that it is a file like any other exemplar (read, hashed, checked for credentials).
OPENARENA_TEXTURES = Path("/usr/share/games/openarena/baseoa/pak4-textures.pk3")
OPENARENA_LICENCE = (
    "GPL-2+ (OpenArena's textures, from Debian's openarena-081-textures package; see its copyright file)"
)
OPENARENA_SUFFIXES = (".jpg", ".tga")
OPENARENA_FOLDER = "openarena"  # in the user's cache folder: the textures copied out of the pk3


def resolve_exemplar(spec: str) -> tuple[list[Path], str | None]:
    """`skimage:brick`, `gimp:Wood/walnut`, `openarena:textures/base_wall/metalblack03` or a file
    or a folder -> image paths and the licence if we know it."""
    if spec.startswith("gimp:"):
        return [gimp_pattern_path(spec.split(":", 1)[1])], GIMP_LICENCE
    if spec.startswith("openarena:"):
        return [openarena_texture_path(spec.split(":", 1)[1])], OPENARENA_LICENCE
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


def gimp_pattern_path(name: str) -> Path:
    """`Wood/walnut` -> its .pat file; a clear error when gimp-data is missing or has no such one."""
    if not GIMP_PATTERNS.is_dir():
        raise ValueError(f"gimp:{name}: GIMP's patterns are not installed (apt-get install gimp-data)")
    path = GIMP_PATTERNS / f"{name}{PATTERN_SUFFIX}"
    if ".." in Path(name).parts or not path.is_file():
        known = sorted(str(p.relative_to(GIMP_PATTERNS).with_suffix("")) for p in GIMP_PATTERNS.rglob("*.pat"))
        raise ValueError(f"no GIMP pattern {name!r}; installed: {', '.join(known)}")
    return path


def openarena_texture_path(name: str, pk3: Path | None = None, cache: Path | None = None) -> Path:
    """`textures/base_wall/metalblack03` (its suffix may be left out) -> that texture copied out of
    OpenArena's pk3 into `cache` (by default `openarena_cache()`), once; a clear error when the package is
    missing or has no such texture."""
    pk3 = pk3 or OPENARENA_TEXTURES
    if not pk3.is_file():
        raise ValueError(
            f"openarena:{name}: OpenArena's textures are not installed (apt-get install openarena-081-textures)"
        )
    wanted = PurePosixPath(name)
    with zipfile.ZipFile(pk3) as archive:
        members = [m for m in archive.namelist() if PurePosixPath(m).suffix.lower() in OPENARENA_SUFFIXES]
        found = [m for m in members if PurePosixPath(m) == wanted or PurePosixPath(m).with_suffix("") == wanted]
        if ".." in wanted.parts or wanted.is_absolute() or not found:
            stem = wanted.stem.lower()
            like = [str(PurePosixPath(m).with_suffix("")) for m in members if len(stem) >= 3 and stem in m.lower()]
            hint = f"; similar: {', '.join(like[:8])}" if like else ""
            raise ValueError(
                f"no OpenArena texture {name!r} in {pk3} ({len(members)} textures; `unzip -l` lists them){hint}"
            )
        member = sorted(found)[0]  # a .jpg before a .tga of the same name
        path = (cache or openarena_cache()) / member
        data = archive.read(member)
    if not path.is_file() or path.read_bytes() != data:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)  # whole or not at all, also when two trainings start at once
        except OSError as e:
            raise ValueError(f"openarena:{name}: cannot copy it out into {path.parent} ({e})") from None
    return path


def openarena_cache() -> Path:
    """Where OpenArena's textures are copied out to: the user's cache folder."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ganbridge")) / OPENARENA_FOLDER


def is_seamless_tile(path: Path) -> bool:
    """Whether an exemplar is a tile made to repeat (a GIMP pattern, an OpenArena texture)."""
    return path.suffix.lower() == PATTERN_SUFFIX or path.resolve().is_relative_to(openarena_cache().resolve())


def read_gimp_pattern(path: Path) -> np.ndarray:
    """A GIMP .pat file -> (H, W, 3) uint8. The format: a big-endian header (its size, version 1,
    width, height, bytes per pixel, the magic GPAT, a name), then the pixels, 1-4 bytes each
    (grey, grey + alpha, RGB, RGBA); alpha is dropped, as the patterns are opaque tiles."""
    data = path.read_bytes()
    if len(data) < 24 or data[20:24] != b"GPAT":
        raise ValueError(f"{path}: not a GIMP pattern")
    header, version, width, height, depth = struct.unpack(">5I", data[:20])
    if version != 1 or depth not in (1, 2, 3, 4) or len(data) < header + width * height * depth:
        raise ValueError(
            f"{path}: a GIMP pattern of a kind this cannot read (version {version}, {depth} bytes a pixel)"
        )
    pixels = np.frombuffer(data, np.uint8, width * height * depth, header).reshape(height, width, depth)
    colour = pixels[..., :3] if depth >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    return np.ascontiguousarray(colour)


def exemplar_pixels(path: Path, crop: int = 0) -> np.ndarray:
    """An exemplar's (H, W, 3) uint8 pixels. A seamless tile (`is_seamless_tile`) is repeated to at
    least twice `crop` a side: crops then see it as the endless surface it stands for."""
    if path.suffix.lower() == PATTERN_SUFFIX:
        tile = read_gimp_pattern(path)
    else:
        with Image.open(path) as im:
            tile = np.asarray(im.convert("RGB"))
        if not is_seamless_tile(path):
            return tile
    reps = [max(1, math.ceil(2 * crop / side)) for side in tile.shape[:2]]
    return np.tile(tile, (*reps, 1))


def load_exemplars(paths: list[Path], crop: int) -> list[torch.Tensor]:
    """Images as float tensors (3, H, W) in [-1, 1]; each must be at least crop x crop."""
    images = []
    for p in paths:
        try:
            rgb = exemplar_pixels(p, crop).astype(np.float32)
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
