"""`ganbridge data`: training folders from data sets that ship in packages (Twemoji, fonts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganbridge.cli import flags
from ganbridge.cli.errors import UserError


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("data", help="prepare a training folder from a data set that ships in a package")
    kinds = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    emoji = kinds.add_parser("emoji", help="Twemoji 64x64 PNGs (CC-BY 4.0) from npm emoji-datasource-twitter")
    emoji.add_argument("--out", required=True, help="folder to write (one sub-folder per category)")
    emoji.add_argument("--tarball", help="the package's .tgz if you have it (default: npm pack)")
    emoji.set_defaults(func=run_emoji)
    glyphs = kinds.add_parser(
        "glyphs", help="letters and digits rendered from installed fonts (OFL, Apache 2.0 and DejaVu licences only)"
    )
    glyphs.add_argument("--out", required=True, help="folder to write (one sub-folder per character)")
    glyphs.add_argument(
        "--fonts",
        action="append",
        help="a folder searched for .ttf/.otf/.ttc fonts (repeatable; default /usr/share/fonts)",
    )
    glyphs.add_argument("--chars", help="the characters to render (default: A-Z a-z 0-9)")
    glyphs.set_defaults(func=run_glyphs)


def run_emoji(args: argparse.Namespace) -> int:
    from ganbridge.generators.image.emoji import prepare_emoji

    try:
        summary = prepare_emoji(Path(args.out), Path(args.tarball) if args.tarball else None)
    except (RuntimeError, KeyError, ValueError) as e:  # npm missing or failing, a tarball of another package
        raise UserError(str(e), code=1) from None
    return report(args.out, summary)


def run_glyphs(args: argparse.Namespace) -> int:
    from ganbridge.generators.image.glyphs import CHARACTERS, prepare_glyphs  # fonttools: the [train] extra

    dirs = [Path(d) for d in args.fonts] if args.fonts else None
    try:
        summary = prepare_glyphs(Path(args.out), dirs, args.chars or CHARACTERS)
    except (RuntimeError, KeyError, ValueError) as e:  # bad --chars, no usable fonts
        raise UserError(str(e), code=1) from None
    return report(args.out, summary)


def report(out: str, summary: dict) -> int:
    print(f"wrote {summary['images']} images in {len(summary['classes'])} categories to {out}")
    for note in summary.get("skipped_fonts", []):
        print(f"skipped font: {note}")
    for twin in summary.get("twin_faces", []):
        print(f"left out {twin['face']}: draws the glyphs of {twin['twin_of']} (median RMS {twin['median_rms']})")
    print(f"licence: {summary['license']}. {summary['attribution']}")
    return 0
