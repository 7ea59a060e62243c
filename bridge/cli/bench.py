"""`ganbridge bench`: generator, round-trip and batched-throughput figures (bench/ does the work)."""

from __future__ import annotations

import argparse

from ganbridge.cli import config, flags


def add_parser(sub: flags.SubParsers) -> None:
    p = sub.add_parser("bench", help="measure generator, round trip and batched throughput")
    p.add_argument("--size", type=flags.positive_int, default=512)
    p.add_argument("--runs", type=flags.positive_int, default=20, help="timed runs per figure")
    p.add_argument("--clients", type=flags.positive_int, default=16)
    p.add_argument("--requests", type=flags.positive_int, default=4, help="requests per client in the throughput test")
    flags.add_device(p)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument(
        "--only", choices=["all", "texture", "music", "steering", "live", "robustness", "none"], default="all",
        help="which paths to measure (live: dragged sliders' frames; robustness: fuzzing, a hog next to "
        "bystanders, a soak, not part of all)",
    )  # fmt: skip
    p.add_argument(
        "--targets",
        type=flags.positive_int,
        default=8,
        help="steering: hidden targets per generator (10 rounds of 8 each)",
    )
    p.add_argument("--fuzz", type=flags.non_negative_int, default=10_000, help="robustness: fuzzed inputs per door")
    p.add_argument("--seed", type=int, default=1, help="robustness: seed of the fuzzed inputs and the soak")
    p.add_argument("--soak-seconds", type=flags.non_negative, default=600.0, help="robustness: how long the soak runs")
    p.add_argument("--soak-clients", type=flags.positive_int, default=32, help="robustness: concurrent soak clients")
    p.add_argument(
        "--hog-size", type=flags.positive_int, default=2048, help="robustness: the hog's side (halved if refused)"
    )
    p.add_argument("--hog-count", type=flags.positive_int, default=16, help="robustness: textures per hog request")
    p.add_argument(
        "--bystanders", type=flags.non_negative_int, default=4, help="robustness: small-request clients next to the hog"
    )
    p.add_argument(
        "--backend", choices=["local", "ray"], default="local",
        help="ray: also measure a Ray Serve backend (a private head on this machine) next to in-process",
    )  # fmt: skip
    p.add_argument("--ray-size", type=flags.positive_int, default=128, help="texture size for the backend comparison")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganbridge.bench.main import run_bench

    config.device(args.device)  # a GPU this machine lacks: one line, before any bridge starts
    return run_bench(args)
