"""`ganbridge eval texture|image|music`: quality figures of a trained model against its data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError

if TYPE_CHECKING:
    from ganbridge.generators.image.data import ImageData
    from ganbridge.generators.image.model import LoadedImageNetwork


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("eval", help="quality figures of a trained model against held-out data")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    texture = kinds.add_parser("texture", help="patch SWD, cell edges and appearance vs the model's exemplar")
    flags.add_eval_flags(texture, "texture", "textures", count=16, seed=99)
    texture.add_argument(
        "--size", type=flags.positive_int, help="texture side in pixels (default: twice the training crop)"
    )
    texture.add_argument("--sheet", help="also write a sample sheet (the exemplar, a sample tiled, samples) here")
    texture.set_defaults(func=run_texture)
    image = kinds.add_parser("image", help="SWD, precision/recall/coverage and a copy check vs held-out images")
    flags.add_eval_flags(image, "image", "images")
    image.add_argument("--data", required=True, help="the folder it was trained on (its held-out tenth is used)")
    image.add_argument("--sheet", help="also write a sample sheet (held-out images above, samples below) here")
    image.add_argument(
        "--served-truncation",
        type=float,
        nargs="+",
        metavar="T",
        help="the 'as served' rows at these truncations (default: the image params' default)",
    )
    image.add_argument(
        "--served-per-category",
        type=flags.per_category,
        default=20,
        help="samples per category for the 'as served' rows (default 20, at most 1000; a model without "
        "categories draws 8 times as many)",
    )
    image.set_defaults(func=run_image)
    music = kinds.add_parser("music", help="MuseGAN/muspy metrics of generated vs held-out phrases")
    flags.add_eval_flags(music, "music", "4-bar phrases")
    src = music.add_mutually_exclusive_group()
    src.add_argument("--corpus", choices=["bach"], help="the corpus it was trained on (default: bach)")
    src.add_argument("--midi-folder", help="the MIDI folder it was trained on")
    music.add_argument("--sheet", help="also write a piano-roll sheet (held-out phrases above, generated below)")
    music.set_defaults(func=run_music)


def model_path(args: argparse.Namespace, kind: str) -> Path:
    """--model as a file, or the name of an installed model of `kind` (yours or shipped)."""
    from ganbridge.core.registry import weight_files

    path = Path(args.model)
    if path.is_file():
        return path
    installed = weight_files(kind, config.load(args).models_dir)
    for found in installed:
        if found.stem == args.model:
            return found
    names = ", ".join(p.stem for p in installed) or "none"
    raise UserError(f"no {kind} model {args.model!r}: give a .safetensors file or an installed name ({names})")


def write_outputs(args: argparse.Namespace, table: dict, weights: Path) -> None:
    """--json and --update-card; the sheet is each kind's own."""
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    if args.update_card:
        from ganbridge.generators.checkpoint import read_card, write_card

        card = read_card(weights)
        card.setdefault("metrics", {})["eval"] = table
        write_card(weights, card)
        print(f"wrote the table into {weights.with_suffix('.json')}")


def run_texture(args: argparse.Namespace) -> int:
    import numpy as np

    from ganbridge.generators.gan.plots import sample_sheet
    from ganbridge.generators.texture.adapter import MAX_SIDE, MIN_SIDE
    from ganbridge.generators.texture.data import exemplar_pixels, resolve_exemplar
    from ganbridge.generators.texture.evaluate import evaluate
    from ganbridge.generators.texture.model import load_texture_network

    path = model_path(args, "texture")
    try:
        model = load_texture_network(path)
        data, crop = model.card["data"], model.card["training"]["crop"]
        source, grayscale = data["source"], data["grayscale"]
    except ValueError as e:  # CheckpointError
        raise UserError(f"cannot evaluate {path.name}: {e}") from None
    except (KeyError, TypeError):
        raise UserError(f"cannot evaluate {path.name}: its card names no exemplar (data.source) or crop") from None
    side = args.size or 2 * crop
    stride = model.net.config.stride
    if side % stride or not MIN_SIDE <= side <= MAX_SIDE:
        raise UserError(f"--size must be a multiple of {stride} from {MIN_SIDE} to {MAX_SIDE}")
    try:
        paths, _ = resolve_exemplar(source)
        # As training tiles a pattern for its crops; a larger --size, to twice its side.
        exemplars = [exemplar_pixels(p, max(crop, side // 2)) for p in paths]
    except (ValueError, OSError) as e:  # an exemplar that is not installed here, or unreadable
        raise UserError(f"cannot evaluate {path.name}: its exemplar {source}: {e}") from None
    keep: list[np.ndarray] = []
    table = evaluate(model.net, exemplars, side, grayscale, samples=args.samples, seed=args.seed, keep=keep)
    print_texture_table(table)
    write_outputs(args, table, path)
    if args.sheet:
        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        sample_sheet(exemplars[0], keep[:8]).save(args.sheet)
        print(f"wrote {args.sheet}")
    return 0


def print_texture_table(table: dict) -> None:
    floor = table["patch_swd_real_floor"] or float("nan")  # a flat exemplar has no spread to compare
    print(f"{'vs the exemplar':22} {'patch SWD':>10} {'x floor':>8} {'appearance gap':>15}")
    print(
        f"{'generated':22} {table['patch_swd_generated']:10.4f} {table['patch_swd_generated'] / floor:8.2f}"
        f" {table['appearance_gap_generated']:15.4f}"
    )
    print(f"{'real (floor)':22} {floor:10.4f} {1:8.2f} {table['appearance_gap_real_floor']:15.4f}")
    print(
        f"{'untrained (ceiling)':22} {table['patch_swd_untrained']:10.4f} {table['patch_swd_untrained'] / floor:8.2f}"
    )
    print(
        f"cell-edge contrast {table['cell_edge_contrast']:.3f} (the exemplar's {table['cell_edge_contrast_exemplar']:.3f};"
        " 1.0: no block pattern)"
    )
    print(f"patch SWD: {table['patch_swd_note']}")
    print("appearance gap: RMS difference of mean shift-invariant statistics (colour, sharpness, feature size,")
    print("lightness histogram) from those of exemplar crops; no training loss here optimises it")


def run_image(args: argparse.Namespace) -> int:
    from ganbridge.generators.image.data import load_folder
    from ganbridge.generators.image.evaluate import evaluate
    from ganbridge.generators.image.model import load_image_network

    path = model_path(args, "image")
    truncations = served_truncations(args)
    try:
        model = load_image_network(path)
        data = load_folder(Path(args.data), model.net.config.size, use_classes=bool(model.net.config.classes))
    except ValueError as e:  # CheckpointError, DataError
        raise UserError(str(e)) from None
    if data.classes and data.classes != model.net.config.classes:
        raise UserError(f"the folder's classes {data.classes} differ from the model's {model.net.config.classes}")
    samples: list = []
    table = evaluate(
        model.net, data.train, data.held_out, n=args.samples, seed=args.seed, keep=samples,
        train_labels=data.train_labels, held_out_labels=data.held_out_labels,
    )  # fmt: skip
    print_image_table(table, bool(model.net.config.classes))
    table["served"] = served_table(model, data, truncations, args.served_per_category, args.seed)
    print_served_table(table["served"])
    write_outputs(args, table, path)
    if args.sheet:
        from ganbridge.generators.gan.plots import class_sheet, data_vs_samples
        from ganbridge.generators.image.evaluate import samples_by_class

        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        if model.net.config.classes:
            first_held_out: dict = {}
            for label, img in zip(data.held_out_labels, data.held_out):
                first_held_out.setdefault(int(label), img)
            sheet = class_sheet(data.classes, first_held_out, samples_by_class(model.net, 4, args.seed))
        else:
            sheet = data_vs_samples(list(data.held_out[:48]), samples[:48])
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")
    return 0


def served_truncations(args: argparse.Namespace) -> list[float | None]:
    """--served-truncation checked against the image params (before any work), each value once."""
    from pydantic import ValidationError

    from ganbridge.generators.image.adapter import ImageParams

    kept: list[float | None] = []
    for t in args.served_truncation or [None]:
        if t is not None:
            try:
                t = ImageParams.model_validate({"model": "any", "truncation": t}).truncation
            except ValidationError as e:
                raise UserError(f"--served-truncation {t}: {e.errors()[0]['msg'].lower()}") from None
        if t not in kept:
            kept.append(t)
    return kept


def served_table(
    model: LoadedImageNetwork, data: ImageData, truncations: list[float | None], per_category: int, seed: int
) -> dict:
    from ganbridge.generators.image.adapter import ImageGenerator
    from ganbridge.generators.image.served import served_figures

    return served_figures(
        ImageGenerator([model]), model.ref.name, data.train, data.train_labels, data.held_out, data.held_out_labels,
        truncations=truncations, per_category=per_category, seed=seed,
    )  # fmt: skip


def print_served_table(served: dict) -> None:
    print()
    print("as served (through the bridge's image params: crisp edges, margin; native size):")
    print(f"{'':22} {'nearest in category':>19} {'spread':>7} {'recall':>7} {'haze':>7} {'border':>7} {'smears':>7}")
    for name, row in served.items():
        if name in ("any_balance", "setup"):
            continue
        nic = "" if row["nearest_in_category"] is None else f"{row['nearest_in_category']:.3f}"
        recall = "" if row["recall"] is None else f"{row['recall']:.3f}"
        print(
            f"{name:22} {nic:>19} {row['spread']:7.2f} {recall:>7} {row['haze']:7.2%} {row['border']:7.1%}"
            f" {row['smears']:7.1%}"
        )
    if "any_balance" in served:
        b = served["any_balance"]
        print(
            f"category any over {b['seeds']} seeds: each category {b['fewest']}-{b['most']} times ({b['even']} is even)"
        )
    print(
        "nearest in category: samples whose nearest training image is of the asked category; haze: pixels of "
        "alpha 1-15;"
    )
    print(
        "border: samples with alpha on the outermost pixels; smears: samples with more light (grey) solid ink than "
        "99% of held-out images"
    )


def print_image_table(table: dict, classes: bool) -> None:
    print(
        f"{'vs held-out':22} {'SWD x1e3 (64/32/16 px, mean)':34} precision  recall  coverage  spread"
        + ("  class agreement" if classes else "")
    )
    for name in ("generated", "real_train (floor)", "untrained (ceiling)"):
        row = table[name]
        swd = row["swd_x1000"]
        levels = " / ".join(f"{swd[k]:.1f}" for k in ("64px", "32px", "16px")) + f"  ({swd['mean']:.1f})"
        agreement = f"  {row['class_agreement']:15.3f}" if classes else ""
        print(
            f"{name:22} {levels:34} {row['precision']:9.3f} {row['recall']:7.3f} {row['coverage']:9.3f}"
            f" {row['spread']:7.2f}{agreement}"
        )
    print(f"spread: mean distance between two images of one {'category' if classes else 'set'} (features)")
    if classes:
        print("class agreement: samples whose 5 nearest training images are mostly of their category")
        print("(the floor row's spread and class agreement: held-out images and their own categories)")
    copy = table["copy_check"]
    print(
        f"nearest training image, median RMS distance: generated {copy['median_nn_distance_generated']}, "
        f"held-out {copy['median_nn_distance_held_out']}; generated closer than the 5th percentile of held-out: "
        f"{copy['share_generated_closer_than_5pct_of_held_out']:.1%}"
    )


def run_music(args: argparse.Namespace) -> int:
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.evaluate import evaluate, mood_table, print_table
    from ganbridge.generators.music.model import load_music_network

    path = model_path(args, "music")
    folder = Path(args.midi_folder) if args.midi_folder else None
    try:
        model = load_music_network(path)
        data = load_music_data(None if folder else (args.corpus or "bach"), folder, seed=model.card["training"]["seed"])
    except ValueError as e:  # CheckpointError, a folder without usable pieces
        raise UserError(str(e)) from None
    table, sheet = evaluate(model.net, data.held_out, n=args.samples, seed=args.seed)
    table["moods"] = mood_table(model, n=max(8, args.samples // 8), seed=args.seed)
    print_table(table)
    write_outputs(args, table, path)
    if args.sheet:
        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")
    return 0
