"""What a model is trained on, as its model card records it, and the consent its files carry.

`file_manifest` lists each training file with its sha256, source and licence and gives the list
one hash of its own, which the model card keeps (`data.manifest`) and every item's recipe names
(`checkpoint.data_sha256`), so anyone holding the files can check that these were the files. `refuse_forbidden` reads each file's C2PA content credentials (embedded, or a
`FILE.c2pa` sidecar) and refuses, naming them, the files whose CAWG training-and-data-mining
assertion does not allow AI training: the bridge's own outputs say `notAllowed` by default.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ganbridge.generators.checkpoint import file_sha256

FORBIDDING = ("cawg.ai_training", "cawg.ai_generative_training")  # uses a training run makes
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".wav": "audio/wav",
        ".tif": "image/tiff", ".tiff": "image/tiff", ".gif": "image/gif", ".mid": "audio/midi", ".midi": "audio/midi"}  # fmt: skip


class TrainingRefused(ValueError):
    """Training files whose credentials do not allow AI training."""


def file_manifest(
    paths: Sequence[Path],
    root: Path | None = None,
    source: str = "",
    license: str = "",
    per_file: Mapping[str, tuple[str, str]] | None = None,
) -> dict:
    """{"files": [{"name", "sha256", "source", "license"}], "sha256": the hash of that list}, names
    relative to `root`. Every file gets `source` and `license` unless `per_file` gives its own
    (source, licence) by name (a glyph's font, say)."""
    known = per_file or {}
    files = []
    for path in sorted(paths, key=lambda p: str(p)):
        name = str(path.relative_to(root)) if root else path.name
        file_source, file_license = known.get(name, (source, license))
        files.append({"name": name, "sha256": file_sha256(path), "source": file_source, "license": file_license})
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return {"files": files, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def refuse_forbidden(paths: Sequence[Path], root: Path | None = None) -> None:
    """TrainingRefused naming every file whose content credentials do not allow AI training."""
    refused = [p for p in paths if training_use(p) == "notAllowed"]
    if refused:
        names = [str(p.relative_to(root)) if root else p.name for p in refused]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise TrainingRefused(
            f"{len(refused)} training file{'s' * (len(refused) > 1)} carr{'y' if len(refused) > 1 else 'ies'} "
            f"content credentials that do not allow AI training: {shown}; remove them from the data"
        )


def training_use(path: Path) -> str | None:
    """What a file's credentials say of AI training (`allowed`, `notAllowed`, `constrained`), or
    None when it has no credentials or they say nothing of it."""
    mime = MIME.get(path.suffix.lower())
    sidecar = path.with_name(path.name + ".c2pa")
    data = path.read_bytes()
    if mime is None or (b"c2pa" not in data and not sidecar.is_file()):
        return None  # no manifest to read (a cheap test: every C2PA store is labelled c2pa)
    import c2pa

    try:
        manifest = sidecar.read_bytes() if sidecar.is_file() else None
        reader = c2pa.Reader(mime, io.BytesIO(data), manifest_data=manifest)
    except c2pa.C2paError:
        return None
    try:
        active = reader.get_active_manifest() or {}
    finally:
        reader.close()
    uses = [
        entry.get("use")
        for assertion in active.get("assertions", [])
        if assertion.get("label", "").startswith("cawg.training-mining")
        for key, entry in assertion.get("data", {}).get("entries", {}).items()
        if key in FORBIDDING
    ]
    return "notAllowed" if "notAllowed" in uses else (uses[0] if uses else None)
