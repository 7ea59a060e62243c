"""`ganbridge train music` and `ganbridge eval music`: thin adapters over generators/music_*."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def add_train_parser(train_kinds) -> None:
    p = train_kinds.add_parser("music", help="a four-part piano-roll model from the Bach chorales or your MIDI files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", choices=["bach"], help="the chorales that ship with music21")
    src.add_argument("--midi-folder", help="a folder of your own 4-track, 4/4 MIDI files")
    p.add_argument("--out", required=True, help="output folder (weights, model card, samples, state)")
    p.add_argument("--name", help="model name (default: the corpus or folder name)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=64, help="generator width (last-stage channels)")
    p.add_argument("--limit", type=int, help="use only the first N pieces (a quick try)")
    p.add_argument("--loss", choices=["wgan-gp", "hinge"], default="wgan-gp")
    p.add_argument("--n-critic", type=int, default=5, help="critic steps per generator step")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate of both networks")
    p.add_argument("--mode-seeking", type=float, default=0.1, help="weight of the MSGAN diversity term (0: off)")
    p.add_argument("--sample-every", type=int, default=500, help="steps between sample rolls and MIDI files")
    p.add_argument(
        "--snapshots",
        action="store_true",
        help="also export the model at every sample step to OUT/snapshots/step_N/ (pick the best with eval)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--restart", action="store_true", help="ignore saved state in --out and start over")
    p.set_defaults(func=cmd_train_music)


def add_eval_parser(eval_kinds) -> None:
    p = eval_kinds.add_parser("music", help="MuseGAN/muspy metrics of generated vs held-out phrases")
    p.add_argument("--model", required=True, help="a .safetensors file, or the name of an installed music model")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--corpus", choices=["bach"], help="the corpus it was trained on (default: bach)")
    src.add_argument("--midi-folder", help="the MIDI folder it was trained on")
    p.add_argument("--samples", type=int, default=1000, help="generated 4-bar phrases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the table to this file")
    p.add_argument("--update-card", action="store_true", help="store the table in the model card")
    p.add_argument("--sheet", help="also write a piano-roll sheet (held-out phrases above, generated below)")
    p.set_defaults(func=cmd_eval_music)


def _fail(msg: str) -> int:
    print(f"ganbridge: {msg}", file=sys.stderr)
    return 2


def cmd_train_music(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import resolve_device
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.model import MusicConfig
    from ganbridge.generators.music.train import MusicTrainer, MusicTrainSettings

    try:
        device = resolve_device(args.device)
        folder = Path(args.midi_folder) if args.midi_folder else None
        data = load_music_data(args.corpus, folder, limit=args.limit, seed=args.seed)
    except ValueError as e:
        return _fail(f"train music: {e}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    name = args.name or (args.corpus or folder.resolve().name)
    settings = MusicTrainSettings(
        out=Path(args.out), name=name, steps=args.steps, batch=args.batch, sample_every=args.sample_every,
        save_every=min(250, args.sample_every), snapshots=args.snapshots, seed=args.seed, device=device, config=MusicConfig(width=args.width),
        loss=args.loss, n_critic=args.n_critic, lr_g=args.lr, lr_d=args.lr, mode_seeking=args.mode_seeking,
    )  # fmt: skip
    command = "ganbridge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        trainer = MusicTrainer(settings, command, data)
    except ValueError as e:
        return _fail(f"train music: {e}")
    print(
        f"{len(data.train)} pieces for training ({len(trainer.sampler)} 4-bar phrases), "
        f"{len(data.held_out)} held out for evaluation",
        file=sys.stderr,
    )
    try:
        weights = trainer.run(resume=not args.restart)
    except ValueError as e:  # saved state from another config
        return _fail(f"train music: {e}")
    print(f"wrote {weights} and {weights.with_suffix('.json').name}; samples in {settings.out / 'samples'}")
    print(f"install it with: cp {weights} {weights.with_suffix('.json')} <models dir>/music/")
    return 0


def store_eval_in_card(weights: Path, table: dict) -> None:
    """`eval --update-card`: the table goes into the model card's metrics."""
    from ganbridge.generators.checkpoint import read_card, write_card

    card = read_card(weights)
    card.setdefault("metrics", {})["eval"] = table
    write_card(weights, card)
    print(f"wrote the table into {weights.with_suffix('.json')}")


def _model_path(name: str) -> Path | None:
    from ganbridge.core.registry import weight_files

    path = Path(name)
    if path.is_file():
        return path
    found = [p for p in weight_files("music", None) if p.stem == name]
    return found[0] if found else None


def cmd_eval_music(args: argparse.Namespace) -> int:
    from ganbridge.generators.checkpoint import CheckpointError
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.evaluate import evaluate, print_table
    from ganbridge.generators.music.model import load_music_network

    path = _model_path(args.model)
    if path is None:
        return _fail(f"eval music: no music model {args.model!r} (give a .safetensors path or a shipped name)")
    try:
        model = load_music_network(path)
        folder = Path(args.midi_folder) if args.midi_folder else None
        data = load_music_data(None if folder else (args.corpus or "bach"), folder, seed=model.card["training"]["seed"])
    except (CheckpointError, ValueError) as e:
        return _fail(f"eval music: {e}")
    table, sheet = evaluate(model.net, data.held_out, n=args.samples, seed=args.seed)
    print_table(table)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    if args.sheet:
        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")
    if args.update_card:
        store_eval_in_card(path, table)
    return 0
