"""The parser class, argument types, and the flags several commands share (train, eval)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import NoReturn, TypeAlias

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Parser(argparse.ArgumentParser):
    """A command-line mistake is one line that names the command's --help, not a usage block.
    Sub-parsers are of this class too (argparse makes them of the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


# --- argument types: the message is what argparse prints after "argument --flag:" ------------


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535; 0: any free port)")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number >= 0")
    return value


def per_category(text: str) -> int:
    """Served samples per category: category c's seeds start at 1000 c, so at most 1000."""
    value = _int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number from 1 to 1000")
    return value


def multiple_of_4(text: str) -> int:
    """The image critic compares groups of 4 images (minibatch standard deviation)."""
    value = _int(text)
    if value < 4 or value % 4:
        raise argparse.ArgumentTypeError(f"{text} is not a positive multiple of 4")
    return value


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def device_name(text: str) -> str:
    """The spelling only; whether this machine has that GPU is checked when the command runs."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda or cuda:N")
    return text


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. --param bars=8)")
    return key, value


# --- shared flags -------------------------------------------------------------------------------


def add_device(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", type=device_name, default=default, help=f"auto, cpu, cuda or cuda:N (default {default})")


def add_train_flags(
    p: argparse.ArgumentParser,
    *,
    steps: int,
    batch: int,
    sample_every: int,
    batch_type: Callable[[str], int] = positive_int,
    batch_help: str = "examples per step",
) -> None:
    """What every `train KIND` takes; the defaults differ by kind."""
    p.add_argument("--out", required=True, help="output folder (weights, model card, samples, state)")
    p.add_argument("--name", help="model name (default: named after the data)")
    p.add_argument("--steps", type=positive_int, default=steps, help=f"training steps (default {steps})")
    p.add_argument("--batch", type=batch_type, default=batch, help=f"{batch_help} (default {batch})")
    p.add_argument(
        "--sample-every",
        type=positive_int,
        default=sample_every,
        help=f"steps between samples (default {sample_every})",
    )
    p.add_argument(
        "--snapshots",
        action="store_true",
        help="also export the model at every sample step to OUT/snapshots/step_N/ (pick the best with eval)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", type=device_name, default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N"
    )
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--restart", action="store_true", help="ignore saved state in --out and start over")


def add_width(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument(
        "--width", type=positive_int, default=default, help=f"generator width, last-stage channels ({default})"
    )


def add_eval_flags(p: argparse.ArgumentParser, kind: str, samples: str, count: int = 1000, seed: int = 0) -> None:
    """What every `eval KIND` takes (a texture's defaults are its card's: 16 samples, seed 99)."""
    p.add_argument("--model", required=True, help=f"a .safetensors file, or the name of an installed {kind} model")
    p.add_argument("--samples", type=positive_int, default=count, help=f"{samples} to generate (default {count})")
    p.add_argument("--seed", type=int, default=seed, help=f"latent seed (default {seed})")
    p.add_argument("--json", help="also write the table to this file")
    p.add_argument("--update-card", action="store_true", help="store the table in the model card")
