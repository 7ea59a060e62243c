"""`ganbridge sheet`: a sample sheet of an installed model a person can look at: for a texture
the exemplar, a 2x2 tiling and samples; for an image model with categories (glyphs) an alphabet
sheet, each row one latent drawn as every category, so that a row shows whether one style holds
across the characters."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError
from ganbridge.cli.generate import target_path, validated


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser(
        "sheet", help="a sample sheet (PNG) of an installed texture model, or an alphabet sheet of an image model"
    )
    p.add_argument(
        "--model",
        required=True,
        help="an installed texture model, or an image model with categories (ganbridge models)",
    )
    p.add_argument("--size", type=flags.positive_int, help="texture sample size in pixels (32-2048; default 256)")
    p.add_argument(
        "--rows", type=flags.positive_int, default=6, help="alphabet sheet: how many latents, one row each (at most 32)"
    )
    p.add_argument("--seed", type=flags.non_negative_int, default=0, help="alphabet sheet: the first row's seed")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        type=flags.key_value,
        metavar="KEY=VALUE",
        help="alphabet sheet: an image param for every cell (truncation=0.7, edges=soft)",
    )
    p.add_argument(
        "--weight",
        choices=["even", "drawn"],
        default="even",
        help="alphabet sheet: even draws each character at the stroke weight that gives it its row's median "
        "stroke width (one typeface's weight); drawn leaves each as the model draws it",
    )
    p.add_argument("-o", "--output", help="output file or folder (default MODEL-sheet.png); made if missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import load_generators

    generators = load_generators(config.load(args).models_dir, "cpu")
    texture, image = generators.get("texture"), generators.get("image")
    textures = {ref.name: ref for ref in texture.checkpoints()} if texture else {}
    images = {ref.name: ref for ref in image.checkpoints()} if image else {}
    if args.model in textures:
        if args.param or args.rows != 6 or args.seed or args.weight != "even":
            raise UserError(
                "--rows, --seed, --param and --weight are for an image model's alphabet sheet, not a texture's"
            )
        target = texture_sheet(texture, textures[args.model].path, args)
    elif args.model in images:
        if args.size is not None:
            raise UserError("--size is for a texture's sheet; an alphabet sheet draws each glyph at 64 px")
        target = alphabet_sheet(image, args)
    else:
        installed = ", ".join([*textures, *images]) or "none"
        raise UserError(f"no texture or image model {args.model!r}; installed: {installed} (see ganbridge models)")
    print(f"wrote {target}")
    return 0


def texture_sheet(gen: Any, checkpoint: Path, args: argparse.Namespace) -> Path:
    import io

    import numpy as np
    from PIL import Image

    from ganbridge.generators.checkpoint import read_card
    from ganbridge.generators.gan.plots import sample_sheet
    from ganbridge.generators.texture.data import exemplar_pixels, resolve_exemplar

    size = 256 if args.size is None else args.size
    params = validated(gen, {"model": args.model, "width": size, "height": size})
    outputs = gen.render([params] * 8, [gen.random_latent(params, seed) for seed in range(8)])
    samples = [np.asarray(Image.open(io.BytesIO(o.data)).convert("RGB")) for o in outputs]
    card = read_card(checkpoint)
    try:
        (path, *_), _ = resolve_exemplar(card["data"]["source"])
        exemplar = exemplar_pixels(path, size)
    except (ValueError, OSError, ImportError, KeyError):
        exemplar = np.full_like(samples[0], 255)  # the exemplar is not on this machine: a blank tile
    target = target_path(args.output, f"{args.model}-sheet.png")
    sample_sheet(exemplar, samples).save(target)
    return target


MAX_ROWS = 32


def alphabet_sheet(gen: Any, args: argparse.Namespace) -> Path:
    """Each row one seed's latent drawn as every category at the model's native size: the same
    `z`, only the category changes, which is what a consistent typeface asks of the model. With
    --weight even, each cell also has the `weight` param that brings its strokes to the row's
    median width (the model's latent leaves the weight uneven across characters: see
    docs/generators/images.md#alphabet-sheet), so every cell is still a render anyone can repeat."""
    import io

    import numpy as np
    from PIL import Image

    from ganbridge.generators.gan.plots import alphabet_rows
    from ganbridge.generators.image.adapter import ImageParams, stroke_width, weight_for_width

    def decoded(outputs: list) -> list[np.ndarray]:
        return [np.asarray(Image.open(io.BytesIO(o.data)).convert("RGBA")) for o in outputs]

    if args.rows > MAX_ROWS:
        raise UserError(f"--rows is at most {MAX_ROWS}, not {args.rows}")
    classes = gen.models[args.model].net.config.classes
    if not classes:
        raise UserError(f"image model {args.model!r} has no categories: an alphabet sheet needs them")
    extra = dict(args.param)
    for fixed in ("model", "category", "seed", "size", "format"):
        if fixed in extra:
            raise UserError(
                f"--param {fixed} is set by the sheet itself (each row a seed, each column a category, "
                "each cell a 64 px PNG)"
            )
    if "weight" in extra and args.weight == "even":
        raise UserError("--param weight is set per character by --weight even; add --weight drawn to set it yourself")

    def spread(row: list[np.ndarray]) -> float:
        widths = np.array([stroke_width(cell) for cell in row])
        return float(widths.std() / max(widths.mean(), 1e-6))

    rows, spreads = [], []
    for seed in range(args.seed, args.seed + args.rows):
        cells: list[ImageParams] = [
            cast(ImageParams, validated(gen, {**extra, "model": args.model, "category": c, "size": 64, "seed": seed}))
            for c in classes
        ]
        latent = gen.random_latent(cells[0], seed)
        # measured without a background, which would fill every cell's alpha
        clear = [c.model_copy(update={"background": "transparent"}) for c in cells]
        drawn = decoded(gen.render(clear, [latent] * len(clear)))
        spreads.append([spread(drawn)])
        if args.weight == "even":
            # from the cells as drawn at weight 0 (margin already clear: its pixels stay empty)
            width = float(np.median([stroke_width(cell) for cell in drawn]))
            weights = [weight_for_width(cell, width, c.margin) for c, cell in zip(clear, drawn)]
            cells = [c.model_copy(update={"weight": w}) for c, w in zip(cells, weights)]
            clear = [c.model_copy(update={"weight": w}) for c, w in zip(clear, weights)]
            drawn = decoded(gen.render(clear, [latent] * len(clear)))
            spreads[-1].append(spread(drawn))
        if cells[0].background != "transparent":
            drawn = decoded(gen.render(cells, [latent] * len(cells)))
        rows.append((f"seed {seed}", drawn))
    target = target_path(args.output, f"{args.model}-sheet.png")
    alphabet_rows(rows, classes).save(target)
    medians = np.median(np.array(spreads), axis=0)
    print(
        f"stroke width across each row's characters (std / mean, median of {len(rows)} rows): {medians[0]:.3f} as drawn"
        + (f", {medians[1]:.3f} at even weight" if len(medians) > 1 else "")
    )
    return target
