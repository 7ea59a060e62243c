"""`ganbridge protocol --schema`: the JSON Schema of every protocol message."""

from __future__ import annotations

import argparse
import json

from ganbridge.cli import flags


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("protocol", help="protocol v1 reference")
    p.add_argument("--schema", action="store_true", required=True, help="print the JSON Schema of every message")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganbridge.core.protocol import protocol_schema

    print(json.dumps(protocol_schema(), indent=2))
    return 0
