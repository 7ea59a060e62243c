"""The `ganbridge` command: a thin adapter over the core, like the doors."""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import sys
from pathlib import Path

from ganbridge.cli import deploy as cli_ray
from ganbridge.cli import music as cli_music


def _cmd_train(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import resolve_device
    from ganbridge.generators.texture.train import TextureTrainer, TextureTrainSettings

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        print(f"ganbridge train: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    name = args.name or (args.image.split(":", 1)[1] if args.image.startswith("skimage:") else Path(args.image).stem)
    settings = TextureTrainSettings(
        image=args.image,
        out=out,
        name=name,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        sample_every=args.sample_every,
        save_every=args.sample_every,
        snapshots=args.snapshots,
        seed=args.seed,
        license=args.license,
        device=device,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    command = "ganbridge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        trainer = TextureTrainer(settings, command)
    except ValueError as e:
        print(f"ganbridge train: {e}", file=sys.stderr)
        return 2
    weights = trainer.run(resume=not args.restart)
    print(f"wrote {weights} and {weights.with_suffix('.json').name}; samples in {out / 'samples'}")
    print(f"install it with: cp {weights} {weights.with_suffix('.json')} <models dir>/texture/")
    return 0


def _settings(args: argparse.Namespace, **overrides):
    from ganbridge.core.settings import load_settings

    config = Path(args.config) if getattr(args, "config", None) else None
    return load_settings(config, overrides)


def _cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ganbridge.core.settings import ConfigError, secure_settings
    from ganbridge.server import serve_forever

    try:
        settings = _settings(
            args,
            host=args.host,
            ws_port=args.ws_port,
            osc_port=args.osc_port,
            device=args.device,
            token=args.token,
            output_dir=args.output,
            log_level=args.log_level,
            batching=False if args.no_batching else None,
            midi_out=args.midi_out,
            midi_api=args.midi_api,
            soundfont=args.soundfont,
            backend=args.backend,
            ray_address=args.ray_address,
        )
    except ConfigError as e:
        print(f"ganbridge serve: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    generated = secure_settings(settings)
    if generated:
        print(f"{settings.host} is not a loopback address, so clients need a token. Token: {generated}", flush=True)
    from ganbridge.generators.base import Unavailable

    try:
        asyncio.run(serve_forever(settings))
    except KeyboardInterrupt:
        pass
    except (OSError, ValueError, Unavailable) as e:  # a port in use, a bad setting, an unreachable cluster
        print(f"ganbridge serve: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import load_generators
    from ganbridge.generators.checkpoint import read_card

    settings = _settings(args)
    generators = load_generators(settings.models_dir, "cpu")
    if not generators:
        print("no generators installed")
        return 1
    for gen in generators.values():
        print(f"{gen.name} ({gen.kind}): {gen.description}")
        for ref in gen.checkpoints():
            card = read_card(ref.path)
            licence = card.get("data", {}).get("license", "?")
            steps = card.get("training", {}).get("steps", "?")
            print(f"  {ref.name:<12} sha256 {ref.sha256[:16]}  steps {steps}  data: {licence}")
            print(f"  {'':<12} {ref.path}")
    return 0


def _cmd_protocol(args: argparse.Namespace) -> int:
    from ganbridge.core.protocol import protocol_schema

    print(json.dumps(protocol_schema(), indent=2))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ganbridge.core.registry import load_generators, resolve_device

    settings = _settings(args)
    generators = load_generators(settings.models_dir, resolve_device(args.device))
    gen = generators.get(args.generator)
    if gen is None:
        print(
            f"ganbridge generate: no generator {args.generator!r} (installed: {', '.join(generators)})", file=sys.stderr
        )
        return 2
    params: dict = {k: v for k, v in (p.split("=", 1) for p in args.param)}
    props = gen.params_model.model_json_schema().get("properties", {})
    for key, value in params.items():  # list params take a comma-separated value, as over OSC
        if props.get(key, {}).get("type") == "array":
            params[key] = [v for v in value.split(",") if v]
    if args.size:
        params["width"] = params["height"] = args.size
    for key in ("model", "width", "height", "seed", "temperature"):
        if getattr(args, key, None) is not None:
            params[key] = getattr(args, key)
    if args.no_tile:
        params["tileable"] = False
    if args.maps:
        params["maps"] = args.maps.split(",")
    try:
        p = gen.params_model.model_validate(params)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            print(f"ganbridge generate: {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    seed = p.seed if getattr(p, "seed", None) is not None else secrets.randbelow(2**31)
    if "seed" in type(p).model_fields:
        p = p.model_copy(update={"seed": seed})
    out = gen.render([p], [gen.random_latent(p, seed)])[0]
    target = Path(args.output or f"{args.generator}-{seed}.{out.format}")
    target.write_bytes(out.data)
    for name, data in out.attachments.items():
        target.with_name(f"{target.stem}_{name}{target.suffix}").write_bytes(data)
    print(f"wrote {target} (seed {seed})")
    return 0


def _cmd_sheet(args: argparse.Namespace) -> int:
    """A sample sheet of an installed texture model: exemplar, a 2x2 tiling, eight samples."""
    import io

    import numpy as np
    from PIL import Image

    from ganbridge.core.registry import load_generators
    from ganbridge.generators.checkpoint import read_card
    from ganbridge.generators.gan.plots import sample_sheet
    from ganbridge.generators.texture.data import resolve_exemplar

    gen = load_generators(_settings(args).models_dir, "cpu").get("texture")
    if gen is None or args.model not in [c.name for c in gen.checkpoints()]:
        print(f"ganbridge sheet: no texture model {args.model!r} installed (see ganbridge models)", file=sys.stderr)
        return 2
    params = gen.params_model.model_validate({"model": args.model, "width": args.size, "height": args.size})
    outputs = gen.render([params] * 8, [gen.random_latent(params, seed) for seed in range(8)])
    samples = [np.asarray(Image.open(io.BytesIO(o.data)).convert("RGB")) for o in outputs]
    card = read_card(gen.models[args.model].ref.path)
    try:
        (path, *_), _ = resolve_exemplar(card["data"]["source"])
        exemplar = np.asarray(Image.open(path).convert("RGB"))
    except (ValueError, OSError, ImportError):
        exemplar = np.full_like(samples[0], 255)  # the exemplar is not on this machine
    target = Path(args.output or f"{args.model}-sheet.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    sample_sheet(exemplar, samples).save(target)
    print(f"wrote {target}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from ganbridge.bench.main import run_bench

    return run_bench(args)


def _cmd_plugin(args: argparse.Namespace) -> int:
    from ganbridge.plugin_build import BuildError, build_blender, build_krita

    wheel = Path(args.wheel) if args.wheel else None
    try:
        if args.host == "blender":
            path = build_blender(Path(args.out), wheel, Path(args.blender_ext) if args.blender_ext else None)
            print(f"built and validated {path}")
            print("install it in Blender: Edit > Preferences > Get Extensions > (menu) Install from Disk")
        else:
            path = build_krita(Path(args.out), wheel)
            print(f"built {path}")
            print("install it in Krita: Tools > Scripts > Import Python Plugin from File, then restart Krita")
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_train_image(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import resolve_device
    from ganbridge.generators.image.data import DataError
    from ganbridge.generators.image.emoji import dataset_info
    from ganbridge.generators.image.model import ImageConfig
    from ganbridge.generators.image.train import ImageTrainer, ImageTrainSettings

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        print(f"ganbridge train: {e}", file=sys.stderr)
        return 2
    data = Path(args.data)
    info = dataset_info(data)
    settings = ImageTrainSettings(
        data=data,
        out=Path(args.out),
        name=args.name or data.resolve().name,
        steps=args.steps,
        batch=args.batch,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        mode_seeking=args.mode_seeking,
        class_loss=args.class_loss,
        sample_every=args.sample_every,
        snapshots=args.snapshots,
        seed=args.seed,
        license=args.license or info.get("license", "unknown (user-supplied images)"),
        source=info.get("attribution", "") or info.get("source", ""),
        device=device,
        config=ImageConfig(width=args.width),
        use_classes=not args.no_classes,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    command = "ganbridge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        trainer = ImageTrainer(settings, command)
    except DataError as e:
        print(f"ganbridge train: {e}", file=sys.stderr)
        return 2
    report = trainer.data.report
    print(
        f"{report['images']} images ({report['held_out']} held out for evaluation), "
        f"classes: {', '.join(f'{k} {v}' for k, v in report['classes'].items()) or 'none (unconditional)'}",
        file=sys.stderr,
    )
    if report["grayscale"]:
        print("the images are grey wherever they have ink: the model will draw in grey", file=sys.stderr)
    if report["unreadable"]:
        print(f"skipped {len(report['unreadable'])} unreadable: {', '.join(report['unreadable'][:5])}", file=sys.stderr)
    if report["converted"]:
        print(
            f"converted {report['converted']} images to 64x64 RGBA (e.g. {next(iter(report['conversions'].items()))})",
            file=sys.stderr,
        )
    try:
        weights = trainer.run(resume=not args.restart)
    except ValueError as e:  # a saved state from another config or class list
        print(f"ganbridge train: {e}", file=sys.stderr)
        return 2
    print(f"wrote {weights} and {weights.with_suffix('.json').name}; samples in {settings.out / 'samples'}")
    print(f"install it with: cp {weights} {weights.with_suffix('.json')} <models dir>/image/")
    return 0


def _cmd_eval_image(args: argparse.Namespace) -> int:
    from ganbridge.core.registry import weight_files
    from ganbridge.generators.checkpoint import CheckpointError
    from ganbridge.generators.image.data import DataError, load_folder
    from ganbridge.generators.image.evaluate import evaluate, samples_by_class
    from ganbridge.generators.image.model import load_image_network

    path = Path(args.model)
    if not path.is_file():
        found = [p for p in weight_files("image", None) if p.stem == args.model]
        if not found:
            print(
                f"ganbridge eval: no image model {args.model!r} (give a .safetensors path or a shipped name)",
                file=sys.stderr,
            )
            return 2
        path = found[0]
    try:
        model = load_image_network(path)
        data = load_folder(Path(args.data), model.net.config.size, use_classes=bool(model.net.config.classes))
    except (CheckpointError, DataError) as e:
        print(f"ganbridge eval: {e}", file=sys.stderr)
        return 2
    if data.classes and data.classes != model.net.config.classes:
        print(f"ganbridge eval: the folder's classes {data.classes} differ from the model's", file=sys.stderr)
        return 2
    samples: list = []
    table = evaluate(
        model.net, data.train, data.held_out, n=args.samples, seed=args.seed, keep=samples,
        train_labels=data.train_labels, held_out_labels=data.held_out_labels,
    )  # fmt: skip
    classes = bool(model.net.config.classes)
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
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    if args.sheet:
        from ganbridge.generators.gan.plots import class_sheet, data_vs_samples

        Path(args.sheet).parent.mkdir(parents=True, exist_ok=True)
        if classes:
            first_held_out: dict = {}
            for label, img in zip(data.held_out_labels, data.held_out):
                first_held_out.setdefault(int(label), img)
            sheet = class_sheet(data.classes, first_held_out, samples_by_class(model.net, 4, args.seed))
        else:
            sheet = data_vs_samples(list(data.held_out[:48]), samples[:48])
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")
    if args.update_card:
        cli_music.store_eval_in_card(path, table)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    try:
        if args.dataset == "glyphs":
            from ganbridge.generators.image.glyphs import CHARACTERS, prepare_glyphs

            dirs = [Path(d) for d in args.fonts] if args.fonts else None
            summary = prepare_glyphs(Path(args.out), dirs, args.chars or CHARACTERS)
        else:
            from ganbridge.generators.image.emoji import prepare_emoji

            summary = prepare_emoji(Path(args.out), Path(args.tarball) if args.tarball else None)
    except (RuntimeError, OSError, KeyError, ValueError) as e:
        print(f"ganbridge data: {e}", file=sys.stderr)
        return 1
    print(f"wrote {summary['images']} images in {len(summary['classes'])} categories to {args.out}")
    for note in summary.get("skipped_fonts", []):
        print(f"skipped font: {note}")
    print(f"licence: {summary['license']}. {summary['attribution']}")
    return 0


def _multiple_of_4(text: str) -> int:
    """The image critic compares groups of 4 images (minibatch standard deviation)."""
    value = int(text)
    if value < 4 or value % 4:
        raise argparse.ArgumentTypeError(f"{text} is not a positive multiple of 4")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganbridge", description="Local bridge server for GAN generators")
    parser.add_argument("--config", help="config file (TOML); default: the user config folder's ganbridge/config.toml")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bridge (WebSocket + OSC)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; others need a token)")
    serve.add_argument("--ws-port", type=int, help="WebSocket port (default 8765)")
    serve.add_argument("--osc-port", type=int, help="OSC UDP port (default 9100)")
    serve.add_argument("--device", help="where generators run: auto (default), cpu, cuda or cuda:N")
    serve.add_argument("--token", help="clients must send this token in hello")
    serve.add_argument("--output", help="folder for generated files")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-batching", action="store_true", help="run each request alone (for comparison)")
    serve.add_argument("--midi-out", help="name of the virtual MIDI port music plays out of (none: no port)")
    serve.add_argument("--midi-api", help="MIDI system: auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM")
    serve.add_argument("--soundfont", help="General MIDI .sf2 for WAV output (default: the system's)")
    serve.add_argument("--backend", choices=["local", "ray"], help="where generation runs (default local)")
    serve.add_argument("--ray-address", help="with --backend ray: local (default), auto, HOST:6379 or ray://HOST:10001")
    serve.set_defaults(func=_cmd_serve)

    cli_ray.add_parser(sub)

    models = sub.add_parser("models", help="list installed generators and checkpoints")
    models.set_defaults(func=_cmd_models)

    protocol = sub.add_parser("protocol", help="protocol v1 reference")
    protocol.add_argument("--schema", action="store_true", required=True, help="print the JSON Schema of every message")
    protocol.set_defaults(func=_cmd_protocol)

    gen = sub.add_parser("generate", help="one-shot generation to a file, no server needed")
    gen.add_argument("generator", help="generator name, e.g. texture")
    gen.add_argument("--model", help="which trained model (texture: brick, grass, ...)")
    gen.add_argument("--size", type=int, help="width = height")
    gen.add_argument("--width", type=int)
    gen.add_argument("--height", type=int)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--temperature", type=float)
    gen.add_argument("--no-tile", action="store_true", help="do not make it seamless")
    gen.add_argument("--maps", help="extra maps, e.g. height,normal (written beside the output)")
    gen.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="any other parameter")
    gen.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    gen.add_argument("-o", "--output", help="output file (default GENERATOR-SEED.png)")
    gen.set_defaults(func=_cmd_generate)

    sheet = sub.add_parser("sheet", help="a sample sheet (PNG) of an installed texture model")
    sheet.add_argument("--model", required=True)
    sheet.add_argument("--size", type=int, default=256, help="sample size, a multiple of 16")
    sheet.add_argument("-o", "--output", help="output file (default MODEL-sheet.png)")
    sheet.set_defaults(func=_cmd_sheet)

    bench = sub.add_parser("bench", help="measure generator, round trip and batched throughput")
    bench.add_argument("--size", type=int, default=512)
    bench.add_argument("--runs", type=int, default=20, help="timed runs per figure")
    bench.add_argument("--clients", type=int, default=16)
    bench.add_argument("--requests", type=int, default=4, help="requests per client in the throughput test")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.add_argument(
        "--only", choices=["all", "texture", "music", "robustness", "none"], default="all",
        help="which paths to measure (robustness: fuzzing, a hog next to bystanders, a soak; not part of all)",
    )  # fmt: skip
    bench.add_argument("--fuzz", type=int, default=10_000, help="robustness: fuzzed inputs per door")
    bench.add_argument("--seed", type=int, default=1, help="robustness: seed of the fuzzed inputs and the soak")
    bench.add_argument("--soak-seconds", type=float, default=600.0, help="robustness: how long the soak runs")
    bench.add_argument("--soak-clients", type=int, default=32, help="robustness: concurrent soak clients")
    bench.add_argument("--hog-size", type=int, default=2048, help="robustness: the hog's side (halved if refused)")
    bench.add_argument("--hog-count", type=int, default=16, help="robustness: textures per hog request")
    bench.add_argument("--bystanders", type=int, default=4, help="robustness: small-request clients next to the hog")
    bench.add_argument(
        "--backend", choices=["local", "ray"], default="local",
        help="ray: also measure a Ray Serve backend (a private head on this machine) next to in-process",
    )  # fmt: skip
    bench.add_argument("--ray-size", type=int, default=128, help="texture size for the backend comparison")
    bench.set_defaults(func=_cmd_bench)

    plugin = sub.add_parser("plugin", help="build the installable host plugins")
    plugin_actions = plugin.add_subparsers(dest="action", required=True)
    build = plugin_actions.add_parser("build", help="build a plugin package")
    build.add_argument("host", choices=["blender", "krita"], help="which host")
    build.add_argument("--out", default="dist", help="output folder (default dist/)")
    build.add_argument("--wheel", help="websockets-X-py3-none-any.whl to bundle (default: fetched with pip)")
    build.add_argument("--blender-ext", help="path to Blender's blender_ext.py (default: bpy here, or blender on PATH)")
    build.set_defaults(func=_cmd_plugin)

    train = sub.add_parser("train", help="train a generator on your own data")
    train_kinds = train.add_subparsers(dest="kind", required=True)
    tex = train_kinds.add_parser("texture", help="a tileable texture model from one photo or a folder")
    tex.add_argument("--image", required=True, help="photo, folder of photos, or skimage:NAME (brick, grass, ...)")
    tex.add_argument("--out", required=True, help="output folder (weights, model card, samples, state)")
    tex.add_argument("--name", help="model name (default: the image's name)")
    tex.add_argument("--steps", type=int, default=2000)
    tex.add_argument("--batch", type=int, default=8)
    tex.add_argument("--crop", type=int, default=128, help="training crop size, a multiple of 16")
    tex.add_argument("--lr", type=float, default=2e-4)
    tex.add_argument("--sample-every", type=int, default=250, help="steps between sample sheets and saves")
    tex.add_argument(
        "--snapshots",
        action="store_true",
        help="also export the model at every sample step to OUT/snapshots/step_N/ (pick the best with eval)",
    )
    tex.add_argument("--seed", type=int, default=0)
    tex.add_argument("--license", default="unknown (user-supplied exemplar)", help="licence of your exemplar")
    tex.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    tex.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    tex.add_argument("--restart", action="store_true", help="ignore saved state in --out and start over")
    tex.set_defaults(func=_cmd_train)
    img = train_kinds.add_parser("image", help="a 64x64 RGBA image model from a folder (sub-folders = classes)")
    img.add_argument("--data", required=True, help="folder of images, or of class sub-folders of images")
    img.add_argument("--out", required=True, help="output folder (weights, model card, samples, state)")
    img.add_argument("--name", help="model name (default: the folder's name)")
    img.add_argument("--steps", type=int, default=8000)
    img.add_argument("--batch", type=_multiple_of_4, default=32, help="images per step (a multiple of 4)")
    img.add_argument("--width", type=int, default=32, help="generator width (last-stage channels)")
    img.add_argument("--no-classes", action="store_true", help="pool class sub-folders into one unconditional model")
    img.add_argument("--lr-g", type=float, default=2e-4, help="generator learning rate")
    img.add_argument("--lr-d", type=float, default=4e-4, help="discriminator learning rate (TTUR: a stronger critic)")
    img.add_argument(
        "--mode-seeking",
        type=_non_negative,
        default=1.0,
        help="weight of the mode-seeking term that keeps a model with classes from making one image per class "
        "(0: off; unconditional models do not use it)",
    )
    img.add_argument(
        "--class-loss",
        type=_non_negative,
        default=1.0,
        help="weight of the auxiliary classifier (AC-GAN) that makes a model with classes draw the class asked for "
        "(0: off; unconditional models do not use it)",
    )
    img.add_argument("--size", type=int, default=64, choices=[64], help="training size (64)")
    img.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    img.add_argument(
        "--snapshots",
        action="store_true",
        help="also export the model at every sample step to OUT/snapshots/step_N/ (pick the best with eval)",
    )
    img.add_argument("--seed", type=int, default=0)
    img.add_argument("--license", help="licence of your images (default: from the folder's dataset.json)")
    img.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    img.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    img.add_argument("--restart", action="store_true", help="ignore saved state in --out and start over")
    img.set_defaults(func=_cmd_train_image)
    cli_music.add_train_parser(train_kinds)

    evaluate = sub.add_parser("eval", help="quality figures of a trained model against held-out data")
    eval_kinds = evaluate.add_subparsers(dest="kind", required=True)
    ev = eval_kinds.add_parser("image", help="SWD, precision/recall/coverage and a copy check vs held-out images")
    ev.add_argument("--model", required=True, help="a .safetensors file, or the name of an installed image model")
    ev.add_argument("--data", required=True, help="the folder it was trained on (its held-out tenth is used)")
    ev.add_argument("--samples", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", help="also write the table to this file")
    ev.add_argument("--update-card", action="store_true", help="store the table in the model card")
    ev.add_argument("--sheet", help="also write a sample sheet (held-out images above, samples below) here")
    ev.set_defaults(func=_cmd_eval_image)
    cli_music.add_eval_parser(eval_kinds)

    data = sub.add_parser("data", help="prepare a training folder from a data set that ships in a package")
    data_kinds = data.add_subparsers(dest="dataset", required=True)
    emoji = data_kinds.add_parser("emoji", help="Twemoji 64x64 PNGs (CC-BY 4.0) from npm emoji-datasource-twitter")
    emoji.add_argument("--out", required=True, help="folder to write (one sub-folder per category)")
    emoji.add_argument("--tarball", help="the package's .tgz if you have it (default: npm pack)")
    emoji.set_defaults(func=_cmd_data)
    glyphs = data_kinds.add_parser(
        "glyphs", help="letters and digits rendered from installed fonts (OFL, Apache 2.0 and DejaVu licences only)"
    )
    glyphs.add_argument("--out", required=True, help="folder to write (one sub-folder per character)")
    glyphs.add_argument(
        "--fonts",
        action="append",
        help="a folder searched for .ttf/.otf/.ttc fonts (repeatable; default /usr/share/fonts)",
    )
    glyphs.add_argument("--chars", help="the characters to render (default: A-Z a-z 0-9)")
    glyphs.set_defaults(func=_cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
