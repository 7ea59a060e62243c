"""`ganbridge serve`: the bridge itself, WebSocket and OSC on one process."""

from __future__ import annotations

import argparse

from ganbridge.cli import config, flags
from ganbridge.cli.errors import UserError

LOG_LEVELS = ["debug", "info", "warning", "error"]


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("serve", help="run the bridge (WebSocket + OSC)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--ws-port", type=flags.port, help="WebSocket port (default 8765; 0: any free port)")
    p.add_argument("--osc-port", type=flags.port, help="OSC UDP port (default 9100; 0: any free port)")
    p.add_argument("--device", type=flags.device_name, help="where generators run: auto (default), cpu, cuda or cuda:N")
    p.add_argument("--token", help="clients must send this token in hello")
    p.add_argument("--output", help="folder for generated files")
    p.add_argument("--log-level", choices=LOG_LEVELS)
    p.add_argument("--no-batching", action="store_true", help="run each request alone (for comparison)")
    p.add_argument("--midi-out", help="name of the virtual MIDI port music plays out of (none: no port)")
    p.add_argument("--midi-api", help="MIDI system: auto, LINUX_ALSA, UNIX_JACK, MACOSX_CORE, WINDOWS_MM")
    p.add_argument("--soundfont", help="General MIDI .sf2 for WAV output (default: the system's)")
    p.add_argument("--backend", choices=["local", "ray"], help="where generation runs (default local)")
    p.add_argument("--ray-address", help="with --backend ray: local (default), auto, HOST:6379 or ray://HOST:10001")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ganbridge.core.settings import ConfigError, secure_settings
    from ganbridge.generators.base import Unavailable
    from ganbridge.server import serve_forever

    settings = config.load(
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
    if settings.backend == "local":
        config.device(settings.device)  # a GPU this machine lacks: refused before anything loads
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    generated = secure_settings(settings)
    if generated:
        print(f"{settings.host} is not a loopback address, so clients need a token. Token: {generated}", flush=True)
    try:
        asyncio.run(serve_forever(settings))
    except KeyboardInterrupt:
        pass
    except Unavailable as e:  # an unreachable cluster; a port in use is an OSError (errors.one_line)
        raise UserError(str(e), code=1) from None
    except ConfigError as e:  # e.g. a signing certificate C2PA refuses
        raise UserError(str(e)) from None
    return 0
