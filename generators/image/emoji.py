"""`ganbridge data emoji`: the Twemoji 64x64 PNGs, laid out as a training folder by category.

The images come from the npm package `emoji-datasource-twitter` (fetched with `npm pack`, or from a
tarball you already have). Twemoji graphics are CC-BY 4.0: the attribution is written next to the
data and carried into the model card. Skin-tone variants are left out (near-copies of their base
emoji); the "Component" category (bare skin-tone and hair swatches) too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

EMOJI_PACKAGE = "emoji-datasource-twitter@16.0.0"
EMOJI_LICENSE = "CC-BY 4.0"
EMOJI_ATTRIBUTION = (
    "Twemoji graphics by Twitter, Inc. and other contributors (jdecked/twemoji v16.0.1), licensed under "
    "CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/); taken from the npm package "
    "emoji-datasource-twitter 16.0.0 (iamcal/emoji-data, MIT)."
)
SKIPPED_CATEGORIES = {"Component"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fetch_tarball(dest: Path) -> Path:
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed: install Node.js/npm, or pass --tarball with the package's .tgz")
    proc = subprocess.run(
        ["npm", "pack", EMOJI_PACKAGE, "--pack-destination", str(dest)], capture_output=True, text=True, timeout=600
    )
    found = sorted(dest.glob("emoji-datasource-twitter-*.tgz"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"npm pack {EMOJI_PACKAGE} failed: {proc.stderr.strip()[-500:]}")
    return found[-1]


def read_member(tar: tarfile.TarFile, member: str | tarfile.TarInfo) -> bytes:
    """A file's bytes from the package tarball."""
    f = tar.extractfile(member)
    if f is None:  # a directory or a link: a broken or different package
        name = member if isinstance(member, str) else member.name
        raise RuntimeError(f"{name} in the {EMOJI_PACKAGE} tarball is not a file")
    return f.read()


def prepare_emoji(out: Path, tarball: Path | None = None) -> dict:
    """Write OUT/<category>/<name>.png plus ATTRIBUTION.txt and dataset.json; return the summary."""
    with tempfile.TemporaryDirectory() as tmp:
        tgz = tarball or fetch_tarball(Path(tmp))
        with tarfile.open(tgz) as tar:
            catalogue = json.loads(read_member(tar, "package/emoji.json"))
            members = {m.name: m for m in tar.getmembers() if m.name.startswith("package/img/twitter/64/")}
            counts: dict[str, int] = {}
            out.mkdir(parents=True, exist_ok=True)
            for entry in catalogue:
                category = entry.get("category", "")
                member = members.get(f"package/img/twitter/64/{entry.get('image')}")
                if category in SKIPPED_CATEGORIES or not entry.get("has_img_twitter") or member is None:
                    continue
                folder = out / slug(category)
                folder.mkdir(exist_ok=True)
                name = slug(entry.get("short_name") or entry["image"].rsplit(".", 1)[0]) + ".png"
                (folder / name).write_bytes(read_member(tar, member))
                counts[slug(category)] = counts.get(slug(category), 0) + 1
    summary = {
        "source": f"npm:{EMOJI_PACKAGE}",
        "license": EMOJI_LICENSE,
        "attribution": EMOJI_ATTRIBUTION,
        "images": sum(counts.values()),
        "classes": dict(sorted(counts.items())),
    }
    (out / "ATTRIBUTION.txt").write_text(EMOJI_ATTRIBUTION + "\n")
    (out / "dataset.json").write_text(json.dumps(summary, indent=1))
    return summary


def dataset_info(folder: Path) -> dict:
    """The dataset.json a data command wrote into the folder, if any (licence and attribution)."""
    path = folder / "dataset.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
