"""The `ganbridge` command: a thin adapter over the core, like the doors.

Each command is a module of this package with `add_parser(sub)` and its handler; heavy imports
(torch, the generators) happen in the handlers, so `ganbridge --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from ganbridge import __version__
from ganbridge.cli import (
    bench,
    data,
    deploy,
    directions,
    evaluate,
    flags,
    gallery,
    generate,
    models,
    plugin,
    protocol,
    serve,
    sheet,
    train,
    verify,
)
from ganbridge.cli.errors import one_line

COMMANDS = (
    serve,
    deploy,
    models,
    protocol,
    generate,
    verify,
    sheet,
    bench,
    plugin,
    train,
    evaluate,
    directions,
    gallery,
    data,
)


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(prog="ganbridge", description="Local bridge server for GAN generators")
    parser.add_argument("--version", action="version", version=f"ganbridge {__version__}")
    parser.add_argument("--config", help="config file (TOML); default: the user config folder's ganbridge/config.toml")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ganbridge: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        found = one_line(e)
        if found is None:
            raise  # a bug: its traceback is what a report of it needs
        message, code = found
        print(f"ganbridge: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
