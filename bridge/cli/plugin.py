"""`ganbridge plugin build`: the installable Blender extension and Krita plugin."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganbridge.cli import flags
from ganbridge.cli.errors import UserError


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("plugin", help="build the installable host plugins")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build a plugin package")
    build.add_argument("host", choices=["blender", "krita"], help="which host")
    build.add_argument("--out", default="dist", help="output folder (default dist/)")
    build.add_argument("--wheel", help="websockets-X-py3-none-any.whl to bundle (default: fetched with pip)")
    build.add_argument("--blender-ext", help="path to Blender's blender_ext.py (default: bpy here, or blender on PATH)")
    build.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
        raise UserError(str(e), code=1) from None
    return 0
