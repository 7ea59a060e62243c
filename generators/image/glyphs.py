"""`ganbridge data glyphs`: letters and digits rendered from installed fonts, one sub-folder per
character, as a training folder for the image GAN.

Only fonts whose own licence entry (the font's name table, IDs 13 and 14) names a licence that lets
anyone use, modify and redistribute the font are rendered: SIL OFL 1.1, Apache 2.0 and the
Bitstream Vera licence of DejaVu. Others (GPL fonts, fonts that say nothing) are skipped and listed,
so the data set's licence is known font by font; `fonts.json` records each font's copyright line.

Every face is drawn the same way so that the images differ by design, not by layout: the capital H
is scaled to CAP_HEIGHT pixels, the baseline sits at BASELINE, and the ink is centred horizontally.
A face whose widest or tallest glyph would leave the canvas is drawn smaller until all fit.

A face that draws the same glyphs as another (Noto's Math and Symbols faces repeat Noto Sans's
Latin letters exactly; Open Sans grew out of Noto Sans) is left out: twins would weigh one design
twice, and a twin held out for evaluation would be found in training. Two faces are twins when the
median over the characters of their glyphs' RMS difference is under DUPLICATE_RMS alpha levels.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTCollection, TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont

from ganbridge.generators.image.data import font_slug

CHARACTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits
DEFAULT_FONT_DIRS = (Path("/usr/share/fonts"),)
FONT_SUFFIXES = {".ttf", ".otf", ".ttc"}
SIZE = 64
CAP_HEIGHT = 30
BASELINE = 46
MARGIN = 2
# Median RMS difference (alpha levels) under which two faces draw the same glyphs. Measured on the
# 103 faces of FONT_PACKAGES: Noto Sans and its Math and Symbols faces 0.0; Open Sans and Noto Sans
# 3.7-6.8; Lato Medium and Regular 5.6; the nearest faces of one family that differ by design (a
# weight apart, Lato Bold and Heavy Italic) 11 and more.
DUPLICATE_RMS = 8.0
# Debian packages of Latin fonts under these licences, for the README and the error message.
FONT_PACKAGES = (
    "fonts-dejavu-core fonts-liberation2 fonts-noto-core fonts-open-sans fonts-lato fonts-ebgaramond "
    "fonts-crosextra-carlito fonts-crosextra-caladea fonts-cantarell"
)
# (pattern searched in the licence URL and description, the licence's name)
ACCEPTED_LICENCES = (
    (re.compile(r"scripts\.sil\.org/ofl|openfontlicense|open font license", re.I), "SIL OFL 1.1"),
    (re.compile(r"apache\.org/licenses|apache license", re.I), "Apache 2.0"),
    (re.compile(r"dejavu-fonts\.org/wiki/license|bitstream", re.I), "Bitstream Vera (DejaVu)"),
)


def class_name(char: str) -> str:
    """A folder name per character that stays distinct on case-insensitive file systems."""
    if char.isdigit():
        return f"digit-{char}"
    return f"{'upper' if char.isupper() else 'lower'}-{char}"


@dataclass
class Face:
    path: Path
    index: int  # the face's index inside a .ttc collection, else 0
    name: str  # full name, e.g. "DejaVu Sans Bold"
    licence: str
    copyright: str

    @property
    def slug(self) -> str:
        return font_slug(self.name)


def _licence(font: TTFont) -> str | None:
    names = font["name"]
    text = " ".join(filter(None, (names.getDebugName(14), names.getDebugName(13))))
    return next((name for pattern, name in ACCEPTED_LICENCES if pattern.search(text)), None)


def find_faces(dirs: list[Path], chars: str) -> tuple[list[Face], list[str]]:
    """Faces that draw every character under an accepted licence, and a note per face skipped."""
    faces: dict[str, Face] = {}
    skipped: list[str] = []
    for path in sorted(p for d in dirs for p in d.rglob("*") if p.suffix.lower() in FONT_SUFFIXES):
        try:
            fonts = TTCollection(path).fonts if path.suffix.lower() == ".ttc" else [TTFont(path, lazy=True)]
        except (TTLibError, OSError, ValueError) as e:
            skipped.append(f"{path} (unreadable: {e})")
            continue
        for index, font in enumerate(fonts):
            name = font["name"].getDebugName(4) or path.stem
            cmap = font.getBestCmap() or {}
            if not all(ord(c) in cmap for c in chars):
                continue  # a symbol, math or other-script font: not a skip worth reporting
            licence = _licence(font)
            if licence is None:
                skipped.append(f"{name} ({path.name}: licence not one of {', '.join(n for _, n in ACCEPTED_LICENCES)})")
            elif name not in faces:  # the same face installed twice (e.g. .ttf and .otf) counts once
                faces[name] = Face(path, index, name, licence, font["name"].getDebugName(0) or "")
    return sorted(faces.values(), key=lambda f: f.name), skipped


def _ink_box(font: ImageFont.FreeTypeFont, chars: str) -> tuple[float, float, float]:
    """The widest glyph and the furthest ink above and below the baseline, in pixels."""
    boxes = [font.getbbox(c, anchor="ls") for c in chars]
    return max(b[2] - b[0] for b in boxes), -min(b[1] for b in boxes), max(b[3] for b in boxes)


def load_face(face: Face, chars: str) -> ImageFont.FreeTypeFont:
    """The face at the pixel size where its H is CAP_HEIGHT tall, shrunk until every glyph fits."""
    probe = ImageFont.truetype(str(face.path), 100, index=face.index)
    top = probe.getbbox("H", anchor="ls")[1]
    px = max(4, round(100 * CAP_HEIGHT / max(1, -top)))
    while True:
        font = ImageFont.truetype(str(face.path), px, index=face.index)
        width, above, below = _ink_box(font, chars)
        if (width <= SIZE - 2 * MARGIN and above <= BASELINE - MARGIN and below <= SIZE - BASELINE - MARGIN) or px <= 4:
            return font
        px -= 1


def render(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    """Black ink on transparent, the ink's opacity carried by alpha."""
    left, _, right, _ = font.getbbox(char, anchor="ls")
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        ((SIZE - (right - left)) / 2 - left, BASELINE), char, font=font, fill=(0, 0, 0, 255), anchor="ls"
    )
    return image


def drop_twins(faces: list[Face], glyphs: list[np.ndarray]) -> tuple[list[int], list[dict]]:
    """Which faces to keep (indices) and a note per face left out as a twin of a kept one. Each
    face's `glyphs` are its characters' alpha, (characters, SIZE, SIZE). Shorter names go first, so
    a family's plain face is kept over its Math or Symbols twin."""
    order = sorted(range(len(faces)), key=lambda i: (len(faces[i].name), faces[i].name))
    flat = [g.reshape(len(g), -1).astype(np.float32) for g in glyphs]
    kept: list[int] = []
    twins: list[dict] = []
    for i in order:
        for k in kept:
            rms = float(np.median(np.sqrt(((flat[i] - flat[k]) ** 2).mean(axis=1))))
            if rms < DUPLICATE_RMS:
                twins.append({"face": faces[i].name, "twin_of": faces[k].name, "median_rms": round(rms, 1)})
                break
        else:
            kept.append(i)
    return sorted(kept), sorted(twins, key=lambda t: t["face"])


def prepare_glyphs(out: Path, font_dirs: list[Path] | None = None, chars: str = CHARACTERS) -> dict:
    """Write OUT/<class>/<face>.png, fonts.json, LICENSES.txt and dataset.json; return the summary."""
    chars = "".join(dict.fromkeys(chars))  # each character once, in order
    if not chars or any(not c.isalnum() or not c.isascii() for c in chars):
        raise ValueError(f"--chars must be ASCII letters and digits, got {chars!r}")
    dirs = list(font_dirs or DEFAULT_FONT_DIRS)
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise RuntimeError(f"no such font folder: {', '.join(missing)}")
    faces, skipped = find_faces(dirs, chars)
    if not faces:
        raise RuntimeError(
            f"no font in {', '.join(map(str, dirs))} draws all of {chars!r} under an accepted licence; "
            f"on Debian: apt-get install {FONT_PACKAGES}"
        )
    out.mkdir(parents=True, exist_ok=True)
    for char in chars:
        (out / class_name(char)).mkdir(exist_ok=True)
    drawn = []
    for face in faces:
        font = load_face(face, chars)
        drawn.append([render(font, char) for char in chars])
    keep, twins = drop_twins(faces, [np.stack([np.asarray(img)[..., 3] for img in images]) for images in drawn])
    for i in keep:
        for char, img in zip(chars, drawn[i]):
            img.save(out / class_name(char) / f"{faces[i].slug}.png")
    faces = [faces[i] for i in keep]
    licences = sorted({f.licence for f in faces})
    fonts = [{"name": f.name, "file": str(f.path), "licence": f.licence, "copyright": f.copyright} for f in faces]
    summary = {
        "source": f"glyphs {chars!r} rendered from {len(faces)} installed fonts ({', '.join(map(str, dirs))})",
        "license": ", ".join(licences) + " (per font: fonts.json)",
        "attribution": "Fonts: " + "; ".join(f"{f.name} ({f.licence})" for f in faces),
        "images": len(faces) * len(chars),
        "classes": {class_name(c): len(faces) for c in chars},
        "skipped_fonts": skipped,
        "twin_faces": twins,
    }
    (out / "fonts.json").write_text(json.dumps(fonts, indent=1))
    (out / "LICENSES.txt").write_text("\n".join(f"{f.name}: {f.licence}. {f.copyright}" for f in faces) + "\n")
    (out / "dataset.json").write_text(json.dumps(summary, indent=1))
    return summary
