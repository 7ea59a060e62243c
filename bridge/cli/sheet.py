"""`ganbridge sheet`: a sample sheet of an installed texture model (exemplar, a 2x2 tiling, samples)."""

from __future__ import annotations

import argparse

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError
from ganbridge.cli.generate import target_path, validated


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("sheet", help="a sample sheet (PNG) of an installed texture model")
    p.add_argument("--model", required=True, help="an installed texture model (see ganbridge models)")
    p.add_argument("--size", type=flags.positive_int, default=256, help="sample size in pixels (32-2048)")
    p.add_argument("-o", "--output", help="output file or folder (default MODEL-sheet.png); made if missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import io

    import numpy as np
    from PIL import Image

    from ganbridge.core.registry import load_generators
    from ganbridge.generators.checkpoint import read_card
    from ganbridge.generators.gan.plots import sample_sheet
    from ganbridge.generators.texture.data import resolve_exemplar

    gen = load_generators(config.load(args).models_dir, "cpu").get("texture")
    refs = {ref.name: ref for ref in gen.checkpoints()} if gen else {}
    if gen is None or args.model not in refs:
        raise UserError(
            f"no texture model {args.model!r}; installed: {', '.join(refs) or 'none'} (see ganbridge models)"
        )
    params = validated(gen, {"model": args.model, "width": args.size, "height": args.size})
    outputs = gen.render([params] * 8, [gen.random_latent(params, seed) for seed in range(8)])
    samples = [np.asarray(Image.open(io.BytesIO(o.data)).convert("RGB")) for o in outputs]
    card = read_card(refs[args.model].path)
    try:
        (path, *_), _ = resolve_exemplar(card["data"]["source"])
        exemplar = np.asarray(Image.open(path).convert("RGB"))
    except (ValueError, OSError, ImportError, KeyError):
        exemplar = np.full_like(samples[0], 255)  # the exemplar is not on this machine: a blank tile
    target = target_path(args.output, f"{args.model}-sheet.png")
    sample_sheet(exemplar, samples).save(target)
    print(f"wrote {target}")
    return 0
