"""The generated parts of the documentation, rendered from the code they describe.

The params tables come from each generator's live params schema, the shipped-model figures from
the model cards beside the weights, and the CLI reference from the argparse parser. Pages hold
them between `<!-- generated:NAME:begin -->` and `<!-- generated:NAME:end -->` markers;

    python -m ganbridge.reference --write     # rewrite every region (run from the repository root)
    python -m ganbridge.reference --check     # exit 1, naming the pages, when one is stale

tests/test_docs.py runs the check, so a changed schema, card or flag fails the tests until the
pages are rewritten: the docs cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganbridge.generators.base import Generator

# Which generated regions each page must hold (path relative to the repository root). A page
# that lost a marker fails the check instead of silently keeping stale text.
PAGES: dict[str, tuple[str, ...]] = {
    "docs/generators/textures.md": ("params-texture", "models-texture", "directions-texture"),
    "docs/generators/images.md": ("params-image", "models-image", "directions-image"),
    "docs/generators/music.md": ("params-music", "models-music", "directions-music"),
    "docs/reference/cli.md": ("cli",),
}

# Where each kind's sample sheets and loss plots live (docs/<folder>/<model>.png, <model>-loss.png,
# <model>-directions.png).
SHEET_FOLDERS = {"texture": "docs/textures", "image": "docs/images", "music": "docs/music"}

REGION = re.compile(
    r"<!-- generated:(?P<name>[a-z0-9-]+):begin -->\n(?P<body>.*?)<!-- generated:(?P=name):end -->",
    re.DOTALL,
)

# An enum longer than this is summarised (first and last values and a count), so that a model
# with 63 categories does not turn one table cell into a wall of text.
MAX_LISTED_CHOICES = 30


def build_cli_parser() -> argparse.ArgumentParser:
    """The `ganbridge` command's parser. The one place the reference imports the CLI from, so a
    move of `build_parser` is a one-line fix here."""
    from ganbridge.cli.main import build_parser

    return build_parser()


def load_shipped_generators() -> dict[str, Generator]:
    """The generators over the shipped models only (no user models folder), on the CPU: the same
    tables on every machine."""
    from ganbridge.core.registry import load_generators

    return load_generators(None, "cpu")


# --- small Markdown helpers ---------------------------------------------------------------------


def cell(text: object) -> str:
    """Text safe inside a table cell: one line, pipes escaped (also inside code spans, as GFM wants)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(value: object) -> str:
    return f"`{value}`"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def link(text: str, target: str, page_dir: str) -> str:
    """A Markdown link from a page in `page_dir` to `target` (both relative to the repository root)."""
    return f"[{text}]({posixpath.relpath(target, page_dir)})"


def thousands(n: float) -> str:
    return f"{n:,.0f}"


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    return f"{minutes // 60} h {minutes % 60} min"


def literal(value: Any) -> str:
    """A default as a client would write it: a bare word for text, JSON for the rest, `null` read
    as "none"."""
    if value is None:
        return "none"
    return code(value if isinstance(value, str) else json.dumps(value))


# --- params tables ------------------------------------------------------------------------------


def _choices(values: list[Any]) -> str:
    if len(values) <= MAX_LISTED_CHOICES:
        return ", ".join(code(v) for v in values)
    return f"{code(values[0])}, {code(values[1])} … {code(values[-1])} ({len(values)} values)"


def _range(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    parts = []
    if above is not None:
        parts.append(f"> {above}" + (f", ≤ {high}" if high is not None else ""))
    elif low is not None and high is not None:
        parts.append(f"{low}–{high}")
    elif low is not None:
        parts.append(f"≥ {low}")
    elif high is not None:
        parts.append(f"≤ {high}")
    if "multipleOf" in schema:
        parts.append(f"a multiple of {schema['multipleOf']}")
    return ", ".join(parts)


def _item_count(schema: dict[str, Any]) -> str:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and low == high:
        return f"exactly {low}"
    if low is not None and high is not None:
        return f"{low}–{high}"
    if high is not None:
        return f"up to {high}"
    if low is not None:
        return f"at least {low}"
    return "any number"


def describe_type(schema: dict[str, Any]) -> tuple[str, str]:
    """(type, accepted values) of one property of a params JSON Schema."""
    if "anyOf" in schema:
        options = [describe_type(s) for s in schema["anyOf"]]
        kinds = " or ".join(kind for kind, _ in options)
        accepts = "; ".join(a for _, a in options if a)
        return kinds, accepts
    kind = schema.get("type", "any")
    if "const" in schema:
        return "choice", f"{code(schema['const'])} only"
    if "enum" in schema:
        return "choice", _choices(schema["enum"])
    if kind == "array" and "prefixItems" in schema:  # a fixed tuple, such as a note
        return f"[{', '.join(describe_type(item)[0] for item in schema['prefixItems'])}]", ""
    if kind == "array":
        items = schema.get("items", {})
        item_kind, item_accepts = describe_type(items)
        noun = {"choice": "choices", "integer": "integers", "number": "numbers", "text": "texts"}
        plural = noun.get(item_kind, item_kind)
        accepts = f"{_item_count(schema)} of {item_accepts}" if item_accepts else f"{_item_count(schema)} {plural}"
        return f"list of {plural}", accepts
    if kind in ("integer", "number"):
        return kind, _range(schema)
    if kind == "boolean":
        return "true/false", ""
    if kind == "string":
        return "text", f"matching {code(schema['pattern'])}" if "pattern" in schema else ""
    if kind == "null":
        return "null", ""
    return str(kind), ""


def params_table(schema: dict[str, Any]) -> str:
    """One row per param: name, the label the host plugins show (the schema's title), type,
    default, the values it accepts and its description."""
    rows = []
    for name, prop in schema.get("properties", {}).items():
        kind, accepts = describe_type(prop)
        rows.append(
            [
                code(name),
                prop.get("title", ""),
                kind,
                literal(prop["default"]) if "default" in prop else "required",
                accepts,
                prop.get("description", ""),
            ]
        )
    return table(["param", "shown as", "type", "default", "accepts", "meaning"], rows)


def render_params(kind: str, generators: dict[str, Generator]) -> str:
    gen = generators[kind]
    schema = gen.params_model.model_json_schema()
    required = schema.get("required", [])
    which = (
        f"{', '.join(code(r) for r in required)} must be given; the others are optional"
        if required
        else "Every param is optional: a request may send any subset"
    )
    return (
        f"The bridge describes `{gen.name}` as: *{gen.description}*. {which}, and a value outside "
        "what the table accepts gets `invalid_params`.\n\n" + params_table(schema)
    )


# --- shipped models -----------------------------------------------------------------------------


@dataclass
class Shipped:
    """One shipped model: its name, card, and the repository paths the docs link to."""

    name: str
    card: dict[str, Any]
    card_path: str
    sheet: str | None
    loss_plot: str | None
    directions_sheet: str | None


def shipped_models(kind: str, generators: dict[str, Generator], root: Path) -> list[Shipped]:
    from ganbridge.generators.checkpoint import read_card

    folder = SHEET_FOLDERS[kind]
    found = []
    for ref in generators[kind].checkpoints():
        sheet, loss = f"{folder}/{ref.name}.png", f"{folder}/{ref.name}-loss.png"
        directions = f"{folder}/{ref.name}-directions.png"
        found.append(
            Shipped(
                name=ref.name,
                card=read_card(ref.path),
                card_path=f"generators/weights/{kind}/{ref.name}.json",
                sheet=sheet if (root / sheet).is_file() else None,
                loss_plot=loss if (root / loss).is_file() else None,
                directions_sheet=directions if (root / directions).is_file() else None,
            )
        )
    return found


def training_time(training: dict[str, Any]) -> str:
    """Wall time summed over the runs the card records; runs without a time are counted, not guessed."""
    runs = training.get("runs")
    if not runs:
        seconds = training.get("seconds_this_run")
        return duration(seconds) if seconds else "not recorded"
    timed = [r["seconds"] for r in runs if "seconds" in r]
    text = duration(sum(timed)) if timed else "not recorded"
    untimed = len(runs) - len(timed)
    text += f" in {len(runs)} runs" if len(runs) > 1 else ""
    return text + (f" ({untimed} untimed)" if untimed and timed else "")


def machine(training: dict[str, Any]) -> str:
    return " ".join(str(training.get("machine", "not recorded")).split())


def _links(model: Shipped, page_dir: str) -> str:
    parts = [link("model card", model.card_path, page_dir)]
    if model.sheet:
        parts.append(link("sample sheet", model.sheet, page_dir))
    if model.loss_plot:
        parts.append(link("loss plot", model.loss_plot, page_dir))
    return ", ".join(parts)


def render_texture_models(models: list[Shipped], page_dir: str) -> str:
    rows = []
    for m in models:
        data, training, metrics = m.card["data"], m.card["training"], m.card["metrics"]
        rows.append(
            [
                link(code(m.name), m.card_path, page_dir),
                f"{code(data['source'])} ({'grey' if data.get('grayscale') else 'colour'})",
                data["license"],
                thousands(training["steps"]),
                training_time(training),
                f"{metrics['patch_swd_generated']:.3f}{'*' if training.get('patch_loss') else ''} "
                f"({metrics['patch_swd_generated'] / metrics['patch_swd_real_floor']:.1f}x; "
                f"{metrics['patch_swd_real_floor']:.3f} / {metrics['patch_swd_untrained']:.3f})",
                link("sheet", m.sheet, page_dir) if m.sheet else "",
            ]
        )
    header = [
        "model", "exemplar", "licence of the data", "steps", "training time", "patch SWD (x floor; floor / untrained)"
    ]  # fmt: skip
    out = [table([*header, "samples"], rows)]
    machines = sorted({machine(m.card["training"]) for m in models})
    out.append(f"Machine{'s' if len(machines) > 1 else ''} in the cards: {', '.join(machines)}.")
    notes = sorted({m.card["metrics"].get("patch_swd_note", "") for m in models} - {""})
    out += [f"Patch SWD: {note}." for note in notes]
    if any(m.card["training"].get("patch_loss") for m in models):
        out.append(
            "*: trained with `--patch-loss`, which matches patch distributions directly, so its patch SWD "
            "flatters it; compare the appearance gap (`ganbridge eval texture`)."
        )
    return "\n\n".join(out)


def _facts(rows: list[tuple[str, str]]) -> str:
    return table(["", ""], rows)


def render_image_models(models: list[Shipped], page_dir: str) -> str:
    out = []
    for m in models:
        card = m.card
        data, training, ev = card["data"], card["training"], card["metrics"]["eval"]
        classes = data.get("classes") or {}
        out.append(f"**{code(m.name)}** ({_links(m, page_dir)})")
        out.append(
            _facts(
                [
                    ("architecture", card.get("architecture", "")),
                    (
                        "data",
                        f"{thousands(data['images'])} images"
                        + (f" in {len(classes)} categories" if classes else " (no categories)")
                        + f", {thousands(data['held_out'])} held out for evaluation"
                        + ("; grey (its colour channels are tied)" if card.get("config", {}).get("grayscale") else ""),
                    ),
                    ("licence of the data", data["license"]),
                    (
                        "training",
                        f"{thousands(training['steps'])} steps of batch {training['batch']}, "
                        f"{training_time(training)}; last run on {machine(training)}",
                    ),
                    ("loss", training.get("loss", "")),
                ]
            )
        )
        has_classes = "class_agreement" in ev["generated"]
        header = ["vs the held-out images", "SWD ×10³ (64 / 32 / 16 px)", "mean", "precision", "recall"]
        header += ["coverage", "spread"] + (["class agreement"] if has_classes else [])
        rows = []
        for key, label in (
            ("generated", "generated"),
            ("real_train (floor)", "real (floor)"),
            ("untrained (ceiling)", "untrained (ceiling)"),
        ):
            row = ev[key]
            swd = row["swd_x1000"]
            cells = [label, " / ".join(f"{swd[p]:.1f}" for p in ("64px", "32px", "16px")), f"{swd['mean']:.1f}"]
            cells += [f"{row[k]:.3f}" for k in ("precision", "recall", "coverage")] + [f"{row['spread']:.2f}"]
            rows.append(cells + ([f"{row['class_agreement']:.3f}"] if has_classes else []))
        out.append(table(header, rows))
        setup, copy = ev["setup"], ev["copy_check"]
        out.append(
            f"{thousands(setup['samples'])} samples against {thousands(setup['held_out'])} held-out images; "
            f"features: {setup['features']}, k = {setup['k']}. Copy check: median distance to the nearest "
            f"training image {copy['median_nn_distance_generated']} for samples, "
            f"{copy['median_nn_distance_held_out']} for held-out images; "
            f"{copy['share_generated_closer_than_5pct_of_held_out']:.1%} of samples are closer than the "
            f"closest 5% of held-out ones ({copy['note']})."
        )
    return "\n\n".join(out)


def _pair(entry: dict[str, Any]) -> str:
    text = f"{entry['generated']:.2f} / {entry['real']:.2f}"
    if "meets_target" in entry:
        text += " ✓" if entry["meets_target"] else " ✗"
    return text


def render_music_models(models: list[Shipped], page_dir: str) -> str:
    out = []
    for m in models:
        card = m.card
        data, training, ev = card["data"], card["training"], card["metrics"]["eval"]
        tracks, metrics, phrases = ev["tracks"], ev["metrics"], ev["phrases"]
        out.append(f"**{code(m.name)}** ({_links(m, page_dir)})")
        out.append(
            _facts(
                [
                    ("architecture", card.get("architecture", "")),
                    ("data", data["source"]),
                    (
                        "pieces",
                        f"{data['kept']} of {data['chorales_in_corpus_read']} kept, "
                        f"{data['train_pieces']} for training and {data['held_out_pieces']} held out; "
                        f"{thousands(data['phrases'])} training phrases",
                    ),
                    ("licence of the data", data["license"]),
                    (
                        "training",
                        f"{thousands(training['steps'])} steps of batch {training['batch']}, "
                        f"{training_time(training)}; last run on {machine(training)}",
                    ),
                    ("loss", training.get("loss", "")),
                    ("targets met", ev.get("targets_met", "")),
                ]
            )
        )
        out.append(
            f"`ganbridge eval music`: {thousands(phrases['generated'])} generated {phrases['bars']}-bar phrases "
            f"against the {phrases['held_out_real']} phrases of the held-out pieces, generated / real "
            "(✓ meets its target, ✗ misses it, no mark: no target):"
        )
        rows = [
            [voice] + [_pair(metrics[f"{name}/{i}"]) for name in ("eb", "upc", "qn2", "qn3")]
            for i, voice in enumerate(tracks)
        ]
        header = ["voice", "EB (empty bars)", "UPC (pitch classes per bar)", "QN (≥ 2 steps)", "QN (≥ 3 steps)"]
        out.append(table(header, rows))
        pairs = sorted(k for k in metrics if k.startswith("td/"))
        td_rows = []
        for key in pairs:
            a, b = (int(i) for i in key[3:].split("-"))
            td_rows.append([f"{tracks[a]} – {tracks[b]}", _pair(metrics[key])])
        out.append(table(["TD (tonal distance)", "generated / real"], td_rows))
        others = [("pce", "pitch-class entropy (bits)"), ("sc", "scale consistency"), ("poly", "polyphony")]
        out.append(table(["muspy", "generated / real"], [[label, _pair(metrics[k])] for k, label in others]))
        if "harmony" in ev:
            out.append(_harmony_table(ev, tracks))
    return "\n\n".join(out)


def _harmony_table(ev: dict, tracks: list[str]) -> str:
    """The harmony statistics of `ganbridge eval music` (generators/music/harmony.py defines them)."""
    from ganbridge.generators.music.evaluate import HARMONY_LABELS

    rows = []
    columns = [c for c in ("generated", "real", "random", "harmonized") if c in next(iter(ev["harmony"].values()))]
    for key, row in ev["harmony"].items():
        kind, _, track = key.partition("/")
        label = f"{tracks[int(track)]} notes outside the held-out range" if track else HARMONY_LABELS[kind]
        rows.append([label] + [f"{row[which]:.3f}" for which in columns])
    heard = ", ".join(f"{mode} {share:.0%}" for mode, share in ev.get("mode_heard", {}).items())
    intro = (
        "Harmony and voice leading ([definitions](../../generators/music/harmony.py)); random: the held-out "
        "rhythm with uniform random pitches in each voice's range"
        + (
            "; harmonized: the held-out sopranos, alto, tenor and bass chosen under them"
            if "harmonized" in columns
            else ""
        )
        + ":"
    )
    heads = {"generated": "generated", "real": "held-out Bach", "random": "random notes", "harmonized": "harmonized"}
    body = table(["statistic", *(heads[c] for c in columns)], rows)
    out = f"{intro}\n\n{body}\n\nAsked mode heard by the 24-key detector: {heard}."
    if ev.get("melody_kept") is not None:
        out += f" Harmonized sopranos kept note for note: {ev['melody_kept']:.0%}."
    if ev.get("key_heard") is not None:
        out += f" Asked key (tonic and mode) heard: {ev['key_heard']:.0%}."
    if ev.get("moods"):
        out += "\n\n" + _mood_table(ev["moods"])
    return out


def _mood_table(moods: dict[str, dict[str, float]]) -> str:
    """What each named mood measures (`ganbridge eval music`, generators/music/mood.py)."""
    rows = [
        [code(mood), f"{row['major']:.0%}", f"{row['tempo']:.0f}", f"{row['mean_pitch']:.1f}",
         f"{row['notes_per_voice_bar']:.2f}", f"{row['articulation']:.2f}"]
        for mood, row in moods.items()
    ]  # fmt: skip
    intro = "Moods ([what each does](../../generators/music/mood.py)), key auto, 4 bars, from the default 90 bpm:"
    header = [
        "mood",
        "heard as major",
        "tempo (bpm)",
        "mean pitch",
        "notes per voice per bar",
        "share of each note sounding",
    ]
    return f"{intro}\n\n{table(header, rows)}"


def render_directions(models: list[Shipped], page_dir: str) -> str:
    """Each shipped model's directions (`ganbridge directions`, generators/directions.py), from
    the "directions" section of its card: how many, their changes, and the held-out check."""
    found = [m for m in models if "directions" in m.card]
    if not found:
        return "No shipped model has directions yet: `ganbridge directions KIND` makes them."
    rows = []
    for m in found:
        d, check = m.card["directions"], m.card["directions"]["check"]
        rest = check["ratio_rest"]
        rows.append(
            [
                link(code(m.name), m.card_path, page_dir),
                str(d["count"]),
                " ".join(f"{c:.2f}" for c in d["changes"]),
                f"{check['ratio_first']:.1f}×",
                f"{check['ratio_mean']:.1f}×",
                " ".join(f"{r:.1f}" for r in rest) if rest else "",
                f"{check['measured_over_change'][0]:.2f}",
                f"{thousands(d['samples'])} in {d['seconds']:.0f} s",
                link("sheet", m.directions_sheet, page_dir) if m.directions_sheet else "",
            ]
        )
    header = [
        "model", "directions", "change per unit (1st … last)", "direction 1 vs random", "all vs random",
        "directions 2… vs random ⊥ direction 1", "measured / predicted (direction 1)", "samples, time", "moved ±2",
    ]  # fmt: skip
    first = found[0].card["directions"]
    settings = ", ".join(f"{k} {v}" for k, v in first["settings"].items())
    held = first["check"]["held_out"]
    return (
        f"Found at {settings} on the features: {first['feature']}. Change: how far one unit along a direction "
        f"moves those features, in standard deviations over the fit's samples. The check moves {held} held-out "
        f"latents ±{first['check']['step']:g} along each direction and measures the change common to all of "
        "them, against random unit directions of the same shapes (and, for directions 2 on, random ones "
        f"orthogonal to direction 1).\n\n{table(header, rows)}"
    )


MODEL_RENDERERS: dict[str, Callable[[list[Shipped], str], str]] = {
    "texture": render_texture_models,
    "image": render_image_models,
    "music": render_music_models,
}


# --- the CLI reference --------------------------------------------------------------------------
# argparse has no public way to walk a parser, so this reads its documented-in-practice private
# attributes (`_actions`, `_choices_actions`, `_mutually_exclusive_groups`), stable since Python
# 3.2. The parser's own formatted help is not used: its line wrapping follows the terminal width,
# and its layout changes between Python versions.


def _flag_value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return ", ".join(code(c) for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return code(metavar)


def _flag_help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own %(default)s-style expansions
        try:
            text = text % {**vars(action), "prog": prog}
        except (KeyError, TypeError, ValueError):
            pass
    return text


def _flag_default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS or default == []:
        return ""
    return code(default)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            out += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return out


def _option_name(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def _exclusions(parser: argparse.ArgumentParser) -> dict[int, str]:
    """For each option in a mutually exclusive group, the note its row gets."""
    notes: dict[int, str] = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            others = " or ".join(code(_option_name(a)) for a in group._group_actions if a is not action)
            notes[id(action)] = f"this or {others} is required" if group.required else f"not with {others}"
    return notes


def _options_table(parser: argparse.ArgumentParser) -> str:
    exclusive = _exclusions(parser)
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        name = ", ".join(code(s) for s in action.option_strings) if action.option_strings else code(action.dest)
        notes = []
        if action.required and action.option_strings:
            notes.append("required")
        if isinstance(action, argparse._AppendAction):
            notes.append("repeatable")
        if id(action) in exclusive:
            notes.append(exclusive[id(action)])
        help_text = _flag_help(action, parser.prog)
        if notes:
            help_text = f"{help_text} ({'; '.join(notes)})" if help_text else "; ".join(notes)
        rows.append([name, _flag_value(action), _flag_default(action), help_text])
    if not rows:
        return "No options."
    return table(["argument", "value", "default", "meaning"], rows)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def render_cli(parser: argparse.ArgumentParser) -> str:
    """Every command and sub-command of `ganbridge`, its help and its flags: a heading per
    command (## for commands, ### below them), the help line, then its arguments."""
    commands = [f"{parser.prog} {name}" for name, _, _ in _subcommands(parser)]
    out = [
        f"## `{parser.prog}`",
        f"{parser.description}. Commands: " + ", ".join(f"[`{c}`](#{slug(c)})" for c in commands) + ".",
        _options_table(parser),
    ]

    def walk(p: argparse.ArgumentParser, path: str, help_text: str, depth: int) -> None:
        children = _subcommands(p)
        out.append(f"{'#' * min(depth + 1, 4)} `{path}`")
        if help_text:
            out.append(help_text[0].upper() + help_text[1:] + ".")
        if children:
            names = [f"{path} {name}" for name, _, _ in children]
            out.append("Sub-commands: " + ", ".join(f"[`{n}`](#{slug(n)})" for n in names) + ".")
        options = _options_table(p)
        if options != "No options." or not children:
            out.append(options)
        for name, child_help, child in children:
            walk(child, f"{path} {name}", child_help, depth + 1)

    for name, help_text, sub in _subcommands(parser):
        walk(sub, f"{parser.prog} {name}", help_text, 1)
    return "\n\n".join(out)


# --- regions: render, check, write --------------------------------------------------------------


class Renderer:
    """Renders each named region once per run (loading the generators is the slow part)."""

    def __init__(self, root: Path):
        self.root = root
        self._generators: dict[str, Generator] | None = None

    @property
    def generators(self) -> dict[str, Generator]:
        if self._generators is None:
            self._generators = load_shipped_generators()
        return self._generators

    def render(self, name: str, page: str) -> str:
        page_dir = posixpath.dirname(page)
        what, _, kind = name.partition("-")
        if name == "cli":
            return render_cli(build_cli_parser())
        if what == "params" and kind in MODEL_RENDERERS:
            return render_params(kind, self.generators)
        if what == "models" and kind in MODEL_RENDERERS:
            return MODEL_RENDERERS[kind](shipped_models(kind, self.generators, self.root), page_dir)
        if what == "directions" and kind in MODEL_RENDERERS:
            return render_directions(shipped_models(kind, self.generators, self.root), page_dir)
        raise ValueError(f"{page}: unknown generated region {name!r}")


def regenerate(text: str, page: str, renderer: Renderer) -> str:
    """`text` with every generated region replaced by what the code renders now."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        body = renderer.render(name, page).strip()
        return f"<!-- generated:{name}:begin -->\n\n{body}\n\n<!-- generated:{name}:end -->"

    return REGION.sub(replace, text)


def problems(root: Path, renderer: Renderer | None = None) -> list[str]:
    """What is wrong with the generated regions under `root`: missing pages or markers, stale text."""
    renderer = renderer or Renderer(root)
    found = []
    for page, names in PAGES.items():
        path = root / page
        if not path.is_file():
            found.append(f"{page}: missing")
            continue
        text = path.read_text(encoding="utf-8")
        present = [m["name"] for m in REGION.finditer(text)]
        found += [
            f"{page}: no generated region {name!r}: add <!-- generated:{name}:begin --> and "
            f"<!-- generated:{name}:end --> on lines of their own where it belongs"
            for name in names
            if name not in present
        ]
        if regenerate(text, page, renderer) != text:
            found.append(f"{page}: generated text is stale: run python -m ganbridge.reference --write")
    return found


def write(root: Path) -> list[str]:
    """Rewrite every page's generated regions; the pages that changed."""
    renderer = Renderer(root)
    changed = []
    for page in PAGES:
        path = root / page
        text = path.read_text(encoding="utf-8")
        new = regenerate(text, page, renderer)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganbridge.reference",
        description="Render the generated regions of the docs (params tables, shipped models, CLI reference).",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the regions in place")
    action.add_argument("--check", action="store_true", help="exit 1 when a region is stale or missing")
    parser.add_argument("--root", default=".", help="the repository root (default: the current folder)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "docs").is_dir():
        print(f"{parser.prog}: no docs/ folder in {root.resolve()}; run it from the repository root", file=sys.stderr)
        return 2
    if args.check:
        found = problems(root)
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    missing = [p for p in PAGES if not (root / p).is_file()]
    if missing:
        print(f"{parser.prog}: missing pages: {', '.join(missing)}", file=sys.stderr)
        return 2
    for page in write(root):
        print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
