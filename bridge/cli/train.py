"""`ganbridge train texture|image|music`: a model from your own data, ready to install."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganbridge.cli import config, directions, flags, gallery
from ganbridge.cli.errors import UserError

if TYPE_CHECKING:
    from ganbridge.generators.gan.trainer import GanTrainer


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("train", help="train a generator on your own data")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    add_texture(kinds)
    add_image(kinds)
    add_music(kinds)


def add_texture(kinds: flags.SubParsers) -> None:
    p = kinds.add_parser("texture", help="a tileable texture model from one photo or a folder")
    p.add_argument(
        "--image",
        required=True,
        help="photo, folder of photos, skimage:NAME (brick, grass, ...), gimp:CATEGORY/NAME (Wood/walnut, ...) "
        "or openarena:PATH (textures/base_wall/metalblack03, ...)",
    )
    flags.add_train_flags(p, steps=2000, batch=8, sample_every=250)
    flags.add_width(p, 8)
    p.add_argument("--crop", type=flags.positive_int, default=128, help="training crop size, a multiple of 16")
    p.add_argument("--lr", type=flags.non_negative, default=2e-4)
    p.add_argument("--license", default="unknown (user-supplied exemplar)", help="licence of your exemplar")
    p.add_argument(
        "--patch-loss",
        type=flags.non_negative,
        default=0.0,
        help="weight of the patch-distribution loss beside the critic (0: adversarial only)",
    )
    add_directions(p)
    p.set_defaults(func=run_texture)


def add_image(kinds: flags.SubParsers) -> None:
    p = kinds.add_parser("image", help="a 64x64 RGBA image model from a folder (sub-folders = classes)")
    p.add_argument("--data", required=True, help="folder of images, or of class sub-folders of images")
    flags.add_train_flags(
        p,
        steps=8000,
        batch=32,
        sample_every=500,
        batch_type=flags.multiple_of_4,
        batch_help="images per step (a multiple of 4)",
    )
    flags.add_width(p, 32)
    p.add_argument("--no-classes", action="store_true", help="pool class sub-folders into one unconditional model")
    p.add_argument("--lr-g", type=flags.non_negative, default=2e-4, help="generator learning rate")
    p.add_argument(
        "--lr-d", type=flags.non_negative, default=4e-4, help="discriminator learning rate (TTUR: a stronger critic)"
    )
    p.add_argument(
        "--mode-seeking", type=flags.non_negative, default=1.0,
        help="weight of the mode-seeking term that keeps a model with classes from making one image per class "
        "(0: off; unconditional models do not use it)",
    )  # fmt: skip
    p.add_argument(
        "--class-loss", type=flags.non_negative, default=1.0,
        help="weight of the auxiliary classifier (AC-GAN) that makes a model with classes draw the class asked for "
        "(0: off; unconditional models do not use it)",
    )  # fmt: skip
    p.add_argument("--size", type=int, default=64, choices=[64], help="training size (64)")
    p.add_argument("--license", help="licence of your images (default: from the folder's dataset.json)")
    add_directions(p)
    add_gallery(p)
    p.set_defaults(func=run_image)


def add_music(kinds: flags.SubParsers) -> None:
    p = kinds.add_parser("music", help="a four-part piano-roll model from the Bach chorales or your MIDI files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", choices=["bach"], help="the chorales that ship with music21 (the [train] extra)")
    src.add_argument("--midi-folder", help="a folder of your own 4-track, 4/4 MIDI files")
    flags.add_train_flags(p, steps=6000, batch=32, sample_every=500, batch_help="4-bar phrases per step")
    flags.add_width(p, 64)
    p.add_argument("--limit", type=flags.positive_int, help="use only the first N pieces (a quick try)")
    p.add_argument("--loss", choices=["wgan-gp", "hinge"], default="wgan-gp")
    p.add_argument("--n-critic", type=flags.positive_int, default=5, help="critic steps per generator step")
    p.add_argument("--lr", type=flags.non_negative, default=3e-4, help="learning rate of both networks")
    p.add_argument(
        "--mode-seeking", type=flags.non_negative, default=0.1, help="weight of the MSGAN diversity term (0: off)"
    )
    add_directions(p)
    add_gallery(p)
    p.set_defaults(func=run_music)


def add_directions(p: argparse.ArgumentParser) -> None:
    """Training ends by finding the new model's directions (for sliders), unless told not to."""
    p.add_argument("--no-directions", action="store_true", help="do not find the model's directions at the end")
    directions.add_direction_flags(p, prefix="directions-")


def add_gallery(p: argparse.ArgumentParser) -> None:
    """Image and music training ends by making the model's steering gallery, unless told not to."""
    p.add_argument("--no-gallery", action="store_true", help="do not make the model's steering gallery at the end")
    gallery.add_count_flag(p, prefix="gallery-")


class Run:
    """What every training run needs before it starts (so a bad setting or device fails at once,
    not after hours) and does when it ends."""

    def __init__(self, args: argparse.Namespace, kind: str) -> None:
        self.kind = kind
        self.install_dir = config.models_dir(config.load(args)) / kind
        self.device = config.device(args.device)
        self.command = "ganbridge " + shlex.join(sys.argv[1:])
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)

    def train(self, trainer: GanTrainer, args: argparse.Namespace) -> int:
        try:
            weights = trainer.run(resume=not args.restart)
        except ValueError as e:  # a saved state in --out from another config or class list
            raise UserError(f"{e} (or start over with --restart)") from None
        from ganbridge.generators.directions import directions_path
        from ganbridge.generators.gallery import gallery_path

        card = weights.with_suffix(".json")
        print(f"wrote {weights} and {card.name}; samples in {Path(args.out) / 'samples'}")
        files = [weights, card]
        if not args.no_directions and self.make_directions(weights, args):
            files.append(directions_path(weights))
        if self.kind in gallery.KINDS and not args.no_gallery and self.make_gallery(weights, args):
            files.append(gallery_path(weights))
        folder = shlex.quote(str(self.install_dir))
        print(f"install it with: mkdir -p {folder} && cp {shlex.join(str(f) for f in files)} {folder}/")
        return 0

    def make_directions(self, weights: Path, args: argparse.Namespace) -> bool:
        """The new model's directions beside it; a failure leaves the trained model as it is (the
        user can make them later) rather than failing the run."""
        print(f"finding the directions of {weights.stem} for sliders (--no-directions skips this)")
        try:
            directions.make_directions(
                self.kind, weights, samples=args.directions_samples, count=args.directions_count, seed=args.seed,
                device=self.device, command=self.command,
            )  # fmt: skip
        except UserError as e:
            print(
                f"no directions made: {e}; make them later: ganbridge directions {self.kind} --model {shlex.quote(str(weights))}"
            )
            return False
        return True

    def make_gallery(self, weights: Path, args: argparse.Namespace) -> bool:
        """The new model's steering gallery beside it; a failure, like one of its directions,
        leaves the trained model as it is."""
        print(f"making the steering gallery of {weights.stem} (--no-gallery skips this)")
        try:
            gallery.make(self.kind, weights, args.gallery_count, self.device, self.command)
        except UserError as e:
            print(
                f"no gallery made: {e}; make it later: ganbridge gallery {self.kind} --model {shlex.quote(str(weights))}"
            )
            return False
        return True


def run_texture(args: argparse.Namespace) -> int:
    from ganbridge.generators.texture.model import TextureConfig
    from ganbridge.generators.texture.train import TextureTrainer, TextureTrainSettings

    run = Run(args, "texture")
    name = args.name or (
        Path(args.image.split(":", 1)[1]).name
        if args.image.startswith(("skimage:", "gimp:"))
        else Path(args.image).stem
    )
    settings = TextureTrainSettings(
        image=args.image, out=Path(args.out), name=name, steps=args.steps, batch=args.batch, crop=args.crop,
        lr=args.lr, sample_every=args.sample_every, save_every=args.sample_every, snapshots=args.snapshots,
        seed=args.seed, license=args.license, patch_loss=args.patch_loss, device=run.device,
        config=TextureConfig.of_width(args.width),
    )  # fmt: skip
    try:
        trainer = TextureTrainer(settings, run.command)
    except ValueError as e:
        raise UserError(str(e)) from None
    return run.train(trainer, args)


def run_image(args: argparse.Namespace) -> int:
    from ganbridge.generators.image.emoji import dataset_info
    from ganbridge.generators.image.model import ImageConfig
    from ganbridge.generators.image.train import ImageTrainer, ImageTrainSettings

    run = Run(args, "image")
    data = Path(args.data)
    info = dataset_info(data)
    settings = ImageTrainSettings(
        data=data, out=Path(args.out), name=args.name or data.resolve().name, steps=args.steps, batch=args.batch,
        lr_g=args.lr_g, lr_d=args.lr_d, mode_seeking=args.mode_seeking, class_loss=args.class_loss,
        sample_every=args.sample_every, snapshots=args.snapshots, seed=args.seed,
        license=args.license or info.get("license", "unknown (user-supplied images)"),
        source=info.get("attribution", "") or info.get("source", ""), device=run.device,
        config=ImageConfig(width=args.width), use_classes=not args.no_classes,
    )  # fmt: skip
    try:
        trainer = ImageTrainer(settings, run.command)
    except ValueError as e:  # DataError: no images, too few, unreadable
        raise UserError(str(e)) from None
    print_data_report(trainer.data.report)
    return run.train(trainer, args)


def print_data_report(report: dict) -> None:
    """What the image trainer made of the folder: counts, classes, and what it had to change."""
    classes = ", ".join(f"{k} {v}" for k, v in report["classes"].items()) or "none (unconditional)"
    print(
        f"{report['images']} images ({report['held_out']} held out for evaluation), classes: {classes}", file=sys.stderr
    )
    if report["grayscale"]:
        print("the images are grey wherever they have ink: the model will draw in grey", file=sys.stderr)
    if report["unreadable"]:
        print(f"skipped {len(report['unreadable'])} unreadable: {', '.join(report['unreadable'][:5])}", file=sys.stderr)
    if report["converted"]:
        example = next(iter(report["conversions"].items()))
        print(f"converted {report['converted']} images to 64x64 RGBA (e.g. {example})", file=sys.stderr)


def run_music(args: argparse.Namespace) -> int:
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.model import MusicConfig
    from ganbridge.generators.music.train import MusicTrainer, MusicTrainSettings

    run = Run(args, "music")
    folder = Path(args.midi_folder) if args.midi_folder else None
    try:
        data = load_music_data(args.corpus, folder, limit=args.limit, seed=args.seed)
    except ValueError as e:  # no such folder, too few usable pieces
        raise UserError(str(e)) from None
    name = args.name or args.corpus or (folder.resolve().name if folder else "music")
    settings = MusicTrainSettings(
        out=Path(args.out), name=name, steps=args.steps, batch=args.batch, sample_every=args.sample_every,
        save_every=min(250, args.sample_every), snapshots=args.snapshots, seed=args.seed, device=run.device,
        config=MusicConfig(width=args.width), loss=args.loss, n_critic=args.n_critic, lr_g=args.lr, lr_d=args.lr,
        mode_seeking=args.mode_seeking,
    )  # fmt: skip
    try:
        trainer = MusicTrainer(settings, run.command, data)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(
        f"{len(data.train)} pieces for training ({len(trainer.sampler)} 4-bar phrases), "
        f"{len(data.held_out)} held out for evaluation",
        file=sys.stderr,
    )
    return run.train(trainer, args)
