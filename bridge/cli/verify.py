"""`ganbridge verify FILE...`: is each file what its recipe makes, and are its content
credentials intact? It reads the C2PA manifest (embedded, or a MIDI file's FILE.c2pa beside it)
with the C2PA reader, remakes the item from the recipe inside the file (core/provenance.py) with
the installed checkpoint, and compares them byte for byte, signature aside: any change to a file
made by the bridge, a pixel, a note or its recipe, shows. Exit status 0 when every file verifies,
1 when one does not.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("verify", help="remake files from the recipes inside them and say whether they are identical")
    p.add_argument("file", nargs="+", help="PNG, SVG, MIDI or WAV files written by the bridge or ganbridge generate")
    flags.add_device(p, default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results = [verify(Path(name), args) for name in args.file]
    for _, line in results:
        print(line)
    return 0 if all(ok for ok, _ in results) else 1


def verify(source: Path, args: argparse.Namespace) -> tuple[bool, str]:
    """(verified, the line that says so or what differs)."""
    from ganbridge.cli.generate import remade
    from ganbridge.core.provenance import damaged_chunks, without_credentials

    try:
        original, again = remade(source, config.load(args), args.device, any_checkpoint=False)
    except UserError as e:
        text = str(e).replace(" (--any-checkpoint remakes it anyway)", "").removeprefix(f"{source}: ")
        return False, f"{source}: not verified: {text}"
    recipe = again.recipe
    made = f"{recipe['generator']} {recipe['checkpoint']['name']} {recipe['checkpoint']['sha256'][:10]}"
    made += f", seed {recipe['seed']}" if "latent" not in recipe else f", {recipe['origin']} (latent in the recipe)"
    signed, signature = credentials_of(source, original, again.format)
    unsigned, remake = without_credentials(original), again.unsigned()
    if remake != unsigned:
        return False, f"{source}: not verified: {difference(unsigned, remake)}; {signature} ({made})"
    if not signed:
        return False, f"{source}: not verified: remade byte-identically from its recipe, but {signature} ({made})"
    damaged = damaged_chunks(original)  # e.g. in the manifest's padding, which its signature leaves out
    if damaged:
        kinds = ", ".join(k.decode("latin-1") for k in damaged)
        return (
            False,
            f"{source}: not verified: its {kinds} chunk was changed after it was made (its CRC does not match) ({made})",
        )
    return True, f"{source}: verified: remade byte-identically from its recipe; {signature} ({made})"


def credentials_of(source: Path, data: bytes, fmt: str) -> tuple[bool, str]:
    """(intact or absent, what to say of them). Absent credentials are said, not failed: the
    `credentials` setting may have been off."""
    from ganbridge.core.credentials import check

    sidecar_path = source.with_name(source.name + ".c2pa")
    sidecar = sidecar_path.read_bytes() if fmt == "mid" and sidecar_path.is_file() else None
    found = check(data, fmt, sidecar)
    where = f" ({sidecar_path.name})" if sidecar else ""
    if found.state is None:
        return True, "no content credentials" + (f" (no {sidecar_path.name} beside it)" if fmt == "mid" else "")
    if found.unchanged:
        return True, f"content credentials intact{where} (a local identity, which readers call untrusted)"
    failures = ", ".join(f for f in found.failures if f != "signingCredential.untrusted")
    return False, f"its content credentials{where} do not match it: {failures}"


def difference(original: bytes, remade: bytes) -> str:
    """What differs, as a user can act on it: pixels or only the file's other bytes."""
    if original.startswith(b"\x89PNG"):
        from PIL import Image

        b = Image.open(io.BytesIO(remade))
        try:
            a = Image.open(io.BytesIO(original))
            pa = a.tobytes()
        except (OSError, ValueError, SyntaxError) as e:  # what Pillow raises for a damaged PNG
            return f"its image data cannot be decoded ({e}): it was changed after it was made"
        if a.size != b.size or a.mode != b.mode:
            return f"its image is {a.size[0]}x{a.size[1]} {a.mode}, its remake {b.size[0]}x{b.size[1]} {b.mode}"
        pb = b.tobytes()
        if pa == pb:
            return "the pixels are its recipe's, but other bytes of the file were changed"
        changed = sum(x != y for x, y in zip(pa, pb))
        return (
            f"{changed} of {len(pa)} pixel bytes differ from its remake: it was changed after it was made "
            f"(or made with another build of torch: this one is {_torch_version()})"
        )
    changed = sum(x != y for x, y in zip(original, remade)) + abs(len(original) - len(remade))
    also = " (or rendered by another FluidSynth or soundfont)" if original.startswith(b"RIFF") else ""
    return f"{changed} of {max(len(original), len(remade))} bytes differ from its remake: it was changed after it was made{also}"


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
