"""`ganbridge directions KIND`: find the directions of installed models (see
generators/directions.py), write them beside each checkpoint and into its model card."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError

if TYPE_CHECKING:
    from PIL import Image

    from ganbridge.generators.base import ModelSetGenerator

KINDS = ("texture", "image", "music")


def held_out(samples: int) -> int:
    """Latents of the held-out check: a quarter of the fit's, at most 64 (a tiny run checks little)."""
    return min(64, max(8, samples // 4))


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("directions", help="find the main directions of variation of installed models (for sliders)")
    add_kind_and_models(p, KINDS)
    add_direction_flags(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sheet", metavar="FOLDER",
        help="also write FOLDER/NAME-directions.png: one row per direction, outputs moved from -2 to +2 along it",
    )  # fmt: skip
    p.add_argument(
        "--sheet-only", action="store_true", help="only write the sheets (--sheet) of the directions the models have"
    )
    flags.add_device(p, "cpu")
    p.set_defaults(func=run)


def add_kind_and_models(p: argparse.ArgumentParser, kinds: tuple[str, ...]) -> None:
    """KIND and --model, for the commands that work on installed models (see `chosen_models`)."""
    p.add_argument("kind", choices=kinds, metavar="KIND", help=f"one of {', '.join(kinds)}")
    p.add_argument(
        "--model", nargs="+", metavar="NAME",
        help="installed model names or .safetensors files (default: every installed model of KIND)",
    )  # fmt: skip


def chosen_models(args: argparse.Namespace) -> list[Path]:
    """The checkpoints `--model` names, or every installed one of KIND; a UserError when none."""
    from ganbridge.core.registry import weight_files

    installed = weight_files(args.kind, config.load(args).models_dir)
    paths = [model_path(args.kind, name, installed) for name in args.model] if args.model else installed
    if not paths:
        raise UserError(f"no {args.kind} models installed (see ganbridge models)", code=1)
    return paths


def model_generator(kind: str, weights: Path, device: str) -> ModelSetGenerator:
    """The generator of `kind` over the one checkpoint `weights`; a UserError if it does not load."""
    from ganbridge.core.registry import build_generator, load_model_file
    from ganbridge.generators.base import ModelSetGenerator
    from ganbridge.generators.checkpoint import CheckpointError

    try:
        gen = build_generator(kind, [load_model_file(kind, weights, device)], device)
    except (CheckpointError, OSError) as e:
        raise UserError(str(e)) from None
    assert isinstance(gen, ModelSetGenerator)  # every kind's generator is one
    return gen


def add_direction_flags(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--samples and --count (with `prefix`, for train: --directions-samples, --directions-count)."""
    p.add_argument(
        f"--{prefix}samples", type=flags.positive_int, default=1024,
        help="seeded outputs the directions are fitted on (default 1024)",
    )  # fmt: skip
    p.add_argument(
        f"--{prefix}count", type=flags.positive_int, default=8,
        help="directions to keep, best first (default 8; fewer if the latent is smaller)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.sheet_only and not args.sheet:
        raise UserError("--sheet-only needs --sheet FOLDER")
    paths = chosen_models(args)
    device = config.device(args.device)
    command = "ganbridge " + shlex.join(sys.argv[1:])
    for path in paths:
        if not args.sheet_only:
            make_directions(
                args.kind, path, samples=args.samples, count=args.count, seed=args.seed, device=device, command=command
            )
        if args.sheet:
            target = Path(args.sheet) / f"{path.stem}-directions.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            direction_sheet(args.kind, path, device).save(target)
            print(f"wrote {target}")
    return 0


def model_path(kind: str, name: str, installed: list[Path]) -> Path:
    """`name` as a .safetensors file, or the installed model of that name (yours or shipped)."""
    path = Path(name)
    if path.suffix == ".safetensors" and path.is_file():
        return path
    for found in installed:
        if found.stem == name:
            return found
    names = ", ".join(p.stem for p in installed) or "none"
    raise UserError(f"no {kind} model {name!r}: give a .safetensors file or an installed name ({names})")


def make_directions(
    kind: str, weights: Path, *, samples: int, count: int, seed: int, device: str, command: str
) -> None:
    """Find, check and write the directions of the checkpoint `weights`: the file beside it and
    the "directions" section of its card. Prints what it found."""
    from tqdm import tqdm

    from ganbridge.generators import directions as found
    from ganbridge.generators.checkpoint import read_card, write_card

    gen = model_generator(kind, weights, device)
    name = weights.stem
    probe = gen.direction_probe(gen.direction_params(name))
    if samples < found.min_samples(probe.direction_shapes):
        raise UserError(
            f"{samples} samples are too few for {kind} model {name}: its latent reduces to "
            f"{found.reduced_size(probe.direction_shapes)} numbers, so it takes at least "
            f"{found.min_samples(probe.direction_shapes)}"
        )
    start = time.monotonic()
    with tqdm(total=samples, desc=f"directions {name}", unit="output") as bar:
        directions, standard = found.find_directions(probe, samples=samples, count=count, seed=seed, tick=bar.update)
        bar.total = samples + found.check_cost(held_out(samples), len(directions))  # then the held-out check
        check = found.check_directions(
            probe, standard, directions, held_out=held_out(samples), seed=seed, tick=bar.update
        )
    section = {
        "method": found.METHOD_ABOUT,
        "feature": gen.direction_features,
        "samples": samples,
        "seed": seed,
        "settings": gen.direction_settings,
        "count": len(directions),
        "names": [d.name for d in directions],
        "changes": [round(d.change, 4) for d in directions],
        "shapes": {k: list(v) for k, v in probe.direction_shapes.items()},
        "check": check,
        "seconds": round(time.monotonic() - start, 1),
        "command": command,
    }
    target = found.directions_path(weights)
    found.save_directions(target, directions, section)
    card = read_card(weights)
    card["directions"] = section
    write_card(weights, card)
    changes = " ".join(f"{d.change:.2f}" for d in directions)
    print(
        f"{name}: {len(directions)} directions, change per unit {changes}; held-out, direction 1 moves the "
        f"features {check['ratio_first']}x as much as a random direction ({check['ratio_mean']}x on average)"
    )
    print(f"wrote {target} and the directions section of {weights.with_suffix('.json').name} ({section['seconds']} s)")


SHEET_VALUES = [-2.0, -1.0, 0.0, 1.0, 2.0]
SHEET_BASES = 2  # starting outputs per row


def direction_sheet(kind: str, weights: Path, device: str) -> Image.Image:
    """The sheet of the directions beside `weights`: a row per direction, for SHEET_BASES seeded
    outputs each moved by SHEET_VALUES along it, drawn as the kind's outputs look (a texture, an
    image on a checkerboard, a piano roll)."""
    from ganbridge.generators.directions import shifted
    from ganbridge.generators.gan.plots import direction_sheet as sheet

    gen = model_generator(kind, weights, device)
    params = gen.direction_params(weights.stem)
    directions = gen.directions(params)
    if not directions:
        raise UserError(f"{kind} model {weights.stem} has no directions to draw: run ganbridge directions {kind} first")
    rows = []
    for d in directions:
        latents = [
            shifted(gen.random_latent(params, seed), [d], [value])
            for seed in range(SHEET_BASES)
            for value in SHEET_VALUES
        ]
        rows.append((d.name, pictures(kind, gen, params, latents)))
    return sheet(rows, SHEET_VALUES, SHEET_BASES)


def pictures(kind: str, gen: ModelSetGenerator, params: Any, latents: list) -> list[Image.Image]:
    """Each latent's output as a picture: a texture at 3/4 size, an image at twice its size on a
    checkerboard (so transparency shows), a piece as a piano roll."""
    import io

    import numpy as np
    from PIL import Image

    from ganbridge.generators.gan.plots import image_grid, piano_roll
    from ganbridge.generators.music.model import STEPS_PER_BAR

    outputs = gen.render([params] * len(latents), latents)
    if kind == "music":
        config = gen.models[params.model].net.config
        steps = params.total_bars * STEPS_PER_BAR
        return [piano_roll(roll_notes(o.extra["notes"]), steps, config.low, config.pitches, scale=2) for o in outputs]
    images = [np.asarray(Image.open(io.BytesIO(o.data)).convert("RGBA")) for o in outputs]
    if kind == "image":
        return [image_grid([img], columns=1, scale=2) for img in images]
    # Shown at 3/4 size: eighty noisy 128-pixel textures make a sheet of 1-2 MB.
    return [Image.fromarray(img[..., :3]).resize((96, 96), Image.Resampling.LANCZOS) for img in images]


def roll_notes(notes: list[list]) -> list[tuple[int, int, int, int]]:
    """The protocol's notes ([track, pitch, velocity, start beat, length in beats]) in 16th steps."""
    from ganbridge.generators.music.model import STEPS_PER_BEAT

    return [(t, p, round(start * STEPS_PER_BEAT), round(length * STEPS_PER_BEAT)) for t, p, _, start, length in notes]
