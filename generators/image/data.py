"""Image training data: a folder of pictures, one class per sub-folder, with a held-out split."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganbridge.generators.dataset import file_manifest, refuse_forbidden
from ganbridge.generators.image.model import NATIVE
from ganbridge.generators.pixels import IMAGE_SUFFIXES

HOLDOUT_EVERY = 10
MIN_IMAGES = 16


class DataError(ValueError):
    """A data folder that cannot be trained on; the message says why."""


@dataclass
class ImageData:
    train: np.ndarray  # (N, 64, 64, 4) uint8 straight alpha
    train_labels: np.ndarray
    held_out: np.ndarray
    held_out_labels: np.ndarray
    classes: list[str]
    grayscale: bool  # every pixel with any alpha has R = G = B
    report: dict  # what was converted or skipped, for the person and the card


def _load_one(path: Path, size: int) -> tuple[np.ndarray | None, str]:
    """An image as size x size RGBA, and a note of what was done to it ('' when nothing)."""
    try:
        with Image.open(path) as img:
            img.load()
            note = ""
            if img.mode != "RGBA":
                note = f"converted from {img.mode}"
                img = img.convert("RGBA")
            if img.size != (size, size):
                w, h = img.size
                side = max(w, h)
                canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))  # pad to square, keep the aspect
                canvas.paste(img, ((side - w) // 2, (side - h) // 2))
                img = canvas.resize((size, size), Image.Resampling.LANCZOS)
                note = (note + "; " if note else "") + f"resized from {w}x{h}"
            return np.asarray(img, dtype=np.uint8).copy(), note
    except (UnidentifiedImageError, OSError, ValueError) as e:
        return None, f"unreadable: {e}"


def load_folder(
    folder: Path, size: int = NATIVE, use_classes: bool = True, source: str = "", license: str = ""
) -> ImageData:
    """DIR/*.png (unconditional) or DIR/<class>/*.png (one class per sub-folder; with
    use_classes=False the sub-folders are pooled into one unconditional set). The report's
    manifest gives every file `source` and `license`, or its font's from a glyph folder's fonts.json."""
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if subdirs and loose:
        raise DataError(
            f"{folder} has both images and sub-folders: put every image in a class sub-folder, or none in sub-folders"
        )
    groups = {d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) for d in subdirs}
    groups = {k: v for k, v in groups.items() if v} if subdirs else {"": loose}
    if not use_classes:
        groups = {"": sorted(p for paths in groups.values() for p in paths)}
    classes = sorted(k for k in groups if k)
    files = [p for paths in groups.values() for p in paths]
    refuse_forbidden(files, folder)
    images, labels, names, notes, bad = [], [], [], {}, []
    for label, (_cls, paths) in enumerate(sorted(groups.items())):
        for path in paths:
            pixels, note = _load_one(path, size)
            rel = str(path.relative_to(folder))
            if pixels is None:
                bad.append(f"{rel} ({note})")
                continue
            if note:
                notes[rel] = note
            images.append(pixels)
            labels.append(label)
            names.append(rel)
    if len(images) < MIN_IMAGES:
        raise DataError(
            f"{folder}: {len(images)} readable images; at least {MIN_IMAGES} are needed (a few hundred to a few "
            f"thousand train well)" + (f". Unreadable: {', '.join(bad[:5])}" if bad else "")
        )
    fonts = font_of_files(folder, files)
    held = held_out_mask(names, faces_of(fonts))
    all_images, all_labels = np.stack(images), np.asarray(labels, dtype=np.int64)
    grey = is_grayscale(all_images)
    report = {
        "images": len(images),
        "held_out": int(held.sum()),
        "classes": {c: int((all_labels == i).sum()) for i, c in enumerate(classes)} if classes else {},
        "unreadable": bad,
        "converted": len(notes),
        "conversions": dict(list(notes.items())[:20]),
        "grayscale": grey,
        "manifest": file_manifest(files, folder, source or str(folder), license, fonts),
    }
    return ImageData(all_images[~held], all_labels[~held], all_images[held], all_labels[held], classes, grey, report)


def held_out_mask(names: list[str], face_of: dict[str, str]) -> np.ndarray:
    """Which images (by their names, relative paths) are held out: every HOLDOUT_EVERY-th face of a
    glyph folder with all its characters (`face_of` maps names to faces), so that evaluation meets
    designs the model never saw, not other letters of faces it trained on; elsewhere (and in a
    glyph folder of fewer than HOLDOUT_EVERY faces) every HOLDOUT_EVERY-th image in name order."""
    groups = [face_of.get(n, n) for n in names]
    if len(set(face_of.values())) < HOLDOUT_EVERY:
        groups = list(names)
    chosen = set(sorted(set(groups))[::HOLDOUT_EVERY])
    return np.array([g in chosen for g in groups], dtype=bool)


def faces_of(fonts: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The face of each glyph image `font_of_files` found a font for: its file's stem."""
    return {name: Path(name).stem for name in fonts}


def font_slug(name: str) -> str:
    """A font's name as its glyph images are named: "DejaVu Sans Bold" -> dejavu-sans-bold."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def font_of_files(folder: Path, files: list[Path]) -> dict[str, tuple[str, str]]:
    """(source, licence) of each glyph image whose font `fonts.json` names (`ganbridge data
    glyphs` writes CLASS/FONT-SLUG.png beside it); {} for any other folder."""
    try:
        fonts = json.loads((folder / "fonts.json").read_text())
        by_slug = {font_slug(f["name"]): f for f in fonts}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    known = {}
    for path in files:
        font = by_slug.get(path.stem)
        if font is not None:
            known[str(path.relative_to(folder))] = (f"font {font['name']}", str(font.get("licence", "")))
    return known


def is_grayscale(images: np.ndarray) -> bool:
    """Whether straight-alpha RGBA images are grey wherever they have ink (fully transparent pixels
    are ignored: their colour is never seen)."""
    ink = images[images[..., 3] > 0][:, :3]
    return bool((ink[:, 0] == ink[:, 1]).all() and (ink[:, 1] == ink[:, 2]).all())
