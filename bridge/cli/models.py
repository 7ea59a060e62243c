"""`ganbridge models`: every model file, where it comes from, and which one serves each name."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ganbridge.cli import config, flags

if TYPE_CHECKING:
    from ganbridge.core.registry import ModelFile


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("models", help="list installed generators and models (shipped and yours)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import KINDS, candidates, load_generators

    settings = config.load(args)
    generators = load_generators(settings.models_dir, "cpu")
    serving = {ref.path for gen in generators.values() for ref in gen.checkpoints()}
    listed = 0
    for kind in KINDS:
        named = candidates(kind, settings.models_dir)
        if not named:
            continue
        gen = generators.get(kind)
        print(f"{gen.name} ({kind}): {gen.description}" if gen else f"{kind}: none of its model files loads")
        for files in named.values():
            for f in files:
                print_file(f, status(f, files, serving))
                listed += 1
    if not listed:
        print("no models installed")
    print(
        f"your models folder: {config.models_dir(settings)} (KIND/NAME.safetensors with NAME.json; a shipped NAME is hidden by yours)"
    )
    return 0 if generators else 1


def status(f: ModelFile, same_name: list[ModelFile], serving: set[Path]) -> str:
    if f.path in serving:
        return "serves"
    if any(other.path in serving for other in same_name):
        return "hidden by your model of this name" if not f.user else "does not load: the shipped one serves"
    return "does not load (see the warning above)"


def print_file(f: ModelFile, state: str) -> None:
    from ganbridge.generators.checkpoint import CheckpointError, file_sha256, read_card

    try:
        card = read_card(f.path)
    except (CheckpointError, ValueError):  # ValueError: a card that is not JSON
        card = {}
    licence = card.get("data", {}).get("license", "?")
    steps = card.get("training", {}).get("steps", "?")
    print(f"  {f.name:<12} {state}  sha256 {file_sha256(f.path)[:16]}  steps {steps}  data: {licence}")
    print(f"  {'':<12} {'user folder' if f.user else 'shipped'}: {f.path}")
