"""`ganbridge gallery KIND`: make the steering gallery of installed models (see
generators/gallery.py) and write it beside each checkpoint, with a line in its model card."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ganbridge.cli import config, flags
from ganbridge.cli.directions import add_kind_and_models, chosen_models, model_generator
from ganbridge.cli.errors import UserError

KINDS = ("image", "music")  # the kinds whose outputs have a look; a texture's latent grows with its size


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("gallery", help="make the gallery that steering picks from (image and music models)")
    add_kind_and_models(p, KINDS)
    add_count_flag(p)
    flags.add_device(p, "cpu")
    p.set_defaults(func=run)


def add_count_flag(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--count (with `prefix`, for train: --gallery-count)."""
    p.add_argument(
        f"--{prefix}count", type=flags.positive_int, default=2048, help="seeded outputs in the gallery (default 2048)"
    )


def run(args: argparse.Namespace) -> int:
    command = "ganbridge " + shlex.join(sys.argv[1:])
    for path in chosen_models(args):
        make(args.kind, path, args.count, config.device(args.device), command)
    return 0


def make(kind: str, weights: Path, count: int, device: str, command: str) -> None:
    """Render `count` seeded outputs of the checkpoint `weights` at its default params, write
    their looks beside it and a "gallery" section into its card. Prints what it made."""
    import numpy as np
    from tqdm import tqdm

    from ganbridge.generators import gallery as galleries
    from ganbridge.generators.checkpoint import read_card, write_card

    gen = model_generator(kind, weights, device)
    name = weights.stem
    params = gen.params_model.model_validate({"model": name})

    def looks_of(seeds: list[int]) -> np.ndarray:
        outputs = gen.render([params] * len(seeds), [gen.random_latent(params, s) for s in seeds])
        looks = [out.look for out in outputs if out.look is not None]
        if len(looks) < len(outputs):
            raise UserError(f"{kind} model {name}'s outputs have no look to make a gallery of")
        return np.stack(looks)

    start = time.monotonic()
    made = {"params": params.model_dump(mode="json"), "count": count, "command": command}
    with tqdm(total=count, desc=f"gallery {name}", unit="output") as bar:
        gallery = galleries.make_gallery(
            looks_of,
            count,
            gen.latent_shapes(params),
            list(gen.discrete_parts(params)),
            made,
            gen.look_standardized,
            tick=bar.update,
        )
    made["seconds"] = round(time.monotonic() - start, 1)
    target = galleries.gallery_path(weights)
    galleries.save_gallery(target, gallery)
    card = read_card(weights)
    card["gallery"] = {**made, "looks": int(gallery.looks.shape[1]), "standardized": gen.look_standardized}
    write_card(weights, card)
    print(f"wrote {target} ({count} outputs, looks of {gallery.looks.shape[1]} numbers, {made['seconds']} s)")
