"""`ganbridge generate`: one-shot generation to a file, no server needed.

The flags (--size, --seed, ...) are shorthands for the generator's own params, read off its params
model: a flag the generator has no param for is refused with the params it does have. Every file
carries its recipe (core/provenance.py); `--recipe FILE` remakes the item a file's recipe names,
with the installed checkpoint only if it is the one the recipe names.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ganbridge.core.credentials import ContentCredentials
    from ganbridge.core.settings import Settings
    from ganbridge.generators.base import Generator, Output


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("generate", help="one-shot generation to a file, no server needed")
    p.add_argument("generator", nargs="?", help="generator name: texture, image or music (see ganbridge models)")
    p.add_argument(
        "--recipe", metavar="FILE", help="remake the item whose recipe this PNG, SVG, MIDI or WAV file carries"
    )
    p.add_argument(
        "--any-checkpoint", action="store_true",
        help="with --recipe: remake it even if the installed checkpoint is not the recipe's (the output will differ)",
    )  # fmt: skip
    p.add_argument("--model", help="which trained model (texture: brick, grass, ...)")
    p.add_argument("--size", type=flags.positive_int, help="pixels: texture width = height, image size")
    p.add_argument("--width", type=flags.positive_int, help="texture width (an image is square: its --size)")
    p.add_argument("--height", type=flags.positive_int, help="texture height")
    p.add_argument("--seed", type=flags.non_negative_int)
    p.add_argument("--temperature", type=flags.non_negative, help="texture and music: variety")
    p.add_argument("--no-tile", action="store_true", help="texture: do not make it seamless")
    p.add_argument("--maps", help="texture: extra maps, any of height,normal,roughness,ao (written beside the output)")
    p.add_argument("--melody", metavar="FILE.mid", help="music: harmonize the highest voice of this MIDI file")
    p.add_argument(
        "--opening", metavar="FILE.mid", help="music: continue this MIDI file (1-4 bars, its voices highest first)"
    )
    p.add_argument(
        "--param", type=flags.key_value, action="append", default=[], metavar="KEY=VALUE",
        help="any other parameter of the generator (lists comma-separated, e.g. tracks=soprano,bass)",
    )  # fmt: skip
    flags.add_device(p, default="cpu")
    p.add_argument("-o", "--output", help="output file or folder (default GENERATOR-SEED.png here); made if missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganbridge.core import provenance
    from ganbridge.core.registry import load_generators

    if args.recipe is not None:
        return remake(args)
    if args.generator is None:
        raise UserError("name a generator (texture, image or music), or give --recipe FILE")
    if args.any_checkpoint:
        raise UserError("--any-checkpoint goes with --recipe FILE")
    settings = config.load(args)
    generators = load_generators(settings.models_dir, config.device(args.device))
    gen = generators.get(args.generator)
    if gen is None:
        raise UserError(f"no generator {args.generator!r} (installed: {', '.join(generators) or 'none'})")
    gen.configure(soundfont=settings.soundfont)
    params = validated(gen, raw_params(gen, args))
    seed = getattr(params, "seed", None)
    if seed is None:
        seed = secrets.randbelow(2**31)
        if "seed" in type(params).model_fields:
            params = params.model_copy(update={"seed": seed})
    out = rendered(gen, params, gen.random_latent(params, seed))
    ref = gen.checkpoint_for(params).as_dict()
    recipe = provenance.make_recipe(gen.name, ref, params.model_dump(mode="json"), seed)
    target = target_path(args.output, f"{args.generator}-{seed}.{out.format}")
    write_with_recipe(target, out, recipe, config.credentials(settings))
    print(f"wrote {target} (seed {seed})")
    return 0


def remake(args: argparse.Namespace) -> int:
    """--recipe FILE: the item the file's recipe names, made again, and whether it is the same."""
    given = [flag for flag, value in (("a generator", args.generator), ("--model", args.model), ("--size", args.size),
             ("--width", args.width), ("--height", args.height), ("--seed", args.seed),
             ("--temperature", args.temperature), ("--maps", args.maps), ("--param", args.param)) if value]  # fmt: skip
    if given or args.no_tile:
        raise UserError(
            f"with --recipe, the recipe gives the generator and its params: drop {(given or ['--no-tile'])[0]}"
        )
    from ganbridge.core.provenance import without_credentials

    source = Path(args.recipe)
    settings = config.load(args)
    original, again = remade(source, settings, args.device, args.any_checkpoint)
    target = target_path(args.output, f"{source.stem}-remade{source.suffix}")
    write_file(target, again.raw, again.format, again.recipe, config.credentials(settings), again.map_name)
    same = "byte-identical to" if again.unsigned() == without_credentials(original) else "different from"
    print(f"wrote {target}: {same} {source} (apart from their signatures)")
    return 0


@dataclass(frozen=True)
class Remade:
    """An item made again from a file's recipe: the generator's output for that file (the item
    itself, or the map it was), before its recipe goes in."""

    raw: bytes
    format: str
    recipe: dict  # the item's recipe (a map's without `map`)
    map_name: str | None

    def unsigned(self) -> bytes:
        """The file as the bridge writes it, its signature aside."""
        from ganbridge.core.credentials import seal

        return seal(self.raw, self.format, self.recipe, None, self.map_name)[0]


def remade(source: Path, settings: Settings, device: str, any_checkpoint: bool) -> tuple[bytes, Remade]:
    """(the file's bytes, the item its recipe names made again with the installed generators)."""
    from ganbridge.core import provenance
    from ganbridge.core.registry import load_generators

    try:
        original = source.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {source}: {e.strerror or e}") from None
    try:
        recipe = provenance.read_recipe(original)
        latent = provenance.recipe_latent(recipe)
        draw = provenance.recipe_draw(recipe)
    except provenance.RecipeError as e:
        raise UserError(f"{source}: {e}") from None
    generators = load_generators(settings.models_dir, config.device(device))
    gen = generators.get(recipe["generator"])
    if gen is None:
        raise UserError(
            f"{source}: its generator {recipe['generator']!r} is not installed (installed: {', '.join(generators)})"
        )
    gen.configure(soundfont=settings.soundfont)
    raw = {**gen.params_before, **recipe["params"]}
    if "seed" in gen.params_model.model_fields:
        raw["seed"] = recipe.get("seed")
    params = validated(gen, raw)
    check_checkpoint(source, recipe, gen.checkpoint_for(params).as_dict(), any_checkpoint)
    if latent is None:
        if not isinstance(recipe.get("seed"), int):
            raise UserError(f"{source}: the recipe has neither a seed nor a latent")
        latent = gen.random_latent(params, recipe["seed"], draw)
    expected = {k: tuple(v) for k, v in gen.latent_shapes(params).items()}
    if {k: v.shape for k, v in latent.items()} != expected:
        parts = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in expected.items())
        raise UserError(f"{source}: the recipe's latent does not fit {gen.name} with these params ({parts})")
    out = rendered(gen, params, latent)
    item = {k: v for k, v in recipe.items() if k != "map"}
    name = recipe.get("map")
    if name is None:
        return original, Remade(out.data, out.format, item, None)
    if name not in out.attachments:
        raise UserError(f"{source}: the recipe names a {name!r} map, which {gen.name} did not make")
    return original, Remade(out.attachments[name], out.format, item, name)


def check_checkpoint(source: Path, recipe: dict, installed: dict[str, str], anyway: bool) -> None:
    wanted = recipe["checkpoint"]
    if wanted.get("sha256") == installed["sha256"]:
        return
    what = (
        f"{source}: made with {recipe['generator']} checkpoint {wanted.get('name')!r} "
        f"(sha256 {str(wanted.get('sha256'))[:12]}…), but the installed {installed['name']!r} is "
        f"{installed['sha256'][:12]}…"
    )
    if not anyway:
        raise UserError(f"{what}; its output would differ (--any-checkpoint remakes it anyway)")
    print(f"{what}; remaking it anyway (--any-checkpoint): expect a different result")


def rendered(gen: Generator, params: BaseModel, latent: dict) -> Output:
    from ganbridge.generators.base import Unavailable

    try:
        gen.preflight(params)
        return gen.render([params], [latent])[0]
    except Unavailable as e:  # e.g. WAV without FluidSynth: the same message the bridge answers
        raise UserError(str(e), code=1) from None


def write_with_recipe(target: Path, out: Output, recipe: dict, credentials: ContentCredentials | None) -> None:
    """The output, and its maps beside it (named TARGET_MAP), each with the recipe inside and signed."""
    write_file(target, out.data, out.format, recipe, credentials)
    for name, data in out.attachments.items():
        write_file(
            target.with_name(f"{target.stem}_{name}{target.suffix}"), data, out.format, recipe, credentials, name
        )


def write_file(
    target: Path,
    data: bytes,
    fmt: str,
    recipe: dict,
    credentials: ContentCredentials | None,
    map_name: str | None = None,
) -> None:
    """One output (or map) at `target`, sealed (core/credentials.py); a MIDI file's manifest beside
    it as TARGET.c2pa."""
    from ganbridge.core.credentials import seal

    data, sidecar = seal(data, fmt, recipe, credentials, map_name)
    if sidecar is not None:
        target.with_name(target.name + ".c2pa").write_bytes(sidecar)
    target.write_bytes(data)


def raw_params(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """--param KEY=VALUE pairs and the shorthand flags, as the generator's params."""
    fields = list(gen.params_model.model_fields)
    params: dict[str, Any] = dict(args.param)
    params |= size_params(gen.name, fields, args.size, args.width, args.height)
    shorthands = {
        "model": args.model,
        "seed": args.seed,
        "temperature": args.temperature,
        "tileable": False if args.no_tile else None,
        "maps": args.maps.split(",") if args.maps else None,
        "melody": melody_from(args.melody) if args.melody else None,
        "opening": opening_from(args.opening) if args.opening else None,
    }
    params |= {k: v for k, v in shorthands.items() if v is not None}
    unknown = [k for k in params if k not in fields]
    if unknown:
        raise UserError(f"{gen.name} has no parameter {unknown[0]!r}; its parameters: {', '.join(fields)}")
    models = [ref.name for ref in gen.checkpoints()]
    if "model" in params and params["model"] not in models:
        raise UserError(
            f"no {gen.name} model {params['model']!r}; installed: {', '.join(models)} (see ganbridge models)"
        )
    return split_lists(gen, params)


def _midi_voices(path: str) -> list[list[tuple[int, int, int]]]:
    from ganbridge.generators.music.notes import midi_voices

    try:
        voices = midi_voices(Path(path).read_bytes())
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    if not voices:
        raise UserError(f"{path}: no notes")
    return voices


def melody_from(path: str) -> list[list[float]]:
    """The highest voice of a MIDI file as a melody param, one note at a time: a note is cut
    where the next one starts, and of notes starting together the highest is kept."""
    notes: dict[int, tuple[int, int]] = {}
    for pitch, start, length in _midi_voices(path)[0]:
        if start not in notes or pitch > notes[start][0]:
            notes[start] = (pitch, length)
    starts = sorted(notes)
    ends = [*starts[1:], None]
    return [
        [pitch, start / 4, (length if end is None else min(length, end - start)) / 4]
        for start, end, (pitch, length) in ((s, e, notes[s]) for s, e in zip(starts, ends))
    ]


def opening_from(path: str) -> list[list[float]]:
    """A MIDI file's voices (highest first: soprano, alto, tenor, bass) as an opening param."""
    voices = _midi_voices(path)
    if len(voices) > 4:
        raise UserError(f"{path}: {len(voices)} voices; an opening has at most four (soprano, alto, tenor, bass)")
    return [[v, pitch, start / 4, length / 4] for v, notes in enumerate(voices) for pitch, start, length in notes]


def size_params(generator: str, fields: list[str], size: int | None, width: int | None, height: int | None) -> dict:
    """--size/--width/--height onto what the generator has: width and height, one square size, or none."""
    if size is width is height is None:
        return {}
    if "width" in fields and "height" in fields:
        sides = {"width": size if width is None else width, "height": size if height is None else height}
        return {k: v for k, v in sides.items() if v is not None}
    if "size" in fields:
        given = {v for v in (size, width, height) if v is not None}
        if len(given) > 1:
            raise UserError(f"{generator} output is square: give one --size N")
        return {"size": given.pop()}
    raise UserError(f"{generator} has no size (no --size, --width, --height); its parameters: {', '.join(fields)}")


def split_lists(gen: Generator, params: dict[str, Any]) -> dict[str, Any]:
    """A list param given as text takes comma-separated values, as over OSC."""
    props = gen.params_model.model_json_schema().get("properties", {})
    for key, value in params.items():
        if isinstance(value, str) and props.get(key, {}).get("type") == "array":
            params[key] = [v for v in value.split(",") if v]
    return params


def validated(gen: Generator, raw: dict[str, Any]) -> BaseModel:
    """The params, or every problem with them in one line."""
    from pydantic import ValidationError

    from ganbridge.core.protocol import field_problem

    try:
        return gen.params_model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'params'}: {field_problem(err)}" for err in e.errors(include_url=False)
        )
        raise UserError(f"{gen.name} {problems}") from None


def target_path(output: str | None, default_name: str) -> Path:
    """-o FILE, or a folder (one ending in a slash, or one that exists) to put the default name in;
    missing folders are made, as a user expects of an output path."""
    if output is None:
        return Path(default_name)
    path = Path(output)
    if output.endswith(("/", os.sep)) or path.is_dir():
        path = path / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
