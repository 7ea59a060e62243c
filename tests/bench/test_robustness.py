"""Robustness from outside, at CI sizes: bridge/bench_robustness.py against a real `ganbridge
serve` subprocess, reached only over its sockets (`ganbridge bench --only robustness` runs the
same harness at full size).

The fuzz tests are seeded: a failure message names the seed, the input's index and its bytes
as hex; `osc_corpus(SEED, n)[index]` gives the same OSC input again.
"""

from __future__ import annotations

import json

import pytest

from ganbridge.bench.robustness import (
    KILLER,
    ServerUnderTest,
    WireFault,
    fuzz,
    hog_and_bystanders,
    osc_bundle,
    osc_corpus,
    osc_msg,
    read_datagram,
    soak,
)
from ganbridge.cli.main import build_parser

SEED = 20261202


@pytest.fixture(scope="module")
def server():
    s = ServerUnderTest("cpu")
    yield s
    s.close()


def _report(f: dict) -> str:
    """What to replay: the seed, the kinds of failure, and the first failing inputs as hex."""
    keep = ("door", "seed", "inputs", "hangs", "crashes", "stalled", "restarts", "aborted_at", "failure_kinds",
            "failures", "lifecycle_examples")  # fmt: skip
    return json.dumps({k: f[k] for k in keep if k in f}, indent=1)[:6000]


def test_the_harness_reads_osc_strictly_and_makes_the_same_inputs_for_a_seed():
    assert read_datagram(osc_msg("/ganbridge/generate", "texture", "width", 32)) == [
        ("/ganbridge/generate", ("texture", "width", 32))
    ]
    nested = osc_bundle(osc_bundle(osc_msg("/ganbridge/ping")), osc_msg("/ganbridge/stop"))
    assert [a for a, _ in read_datagram(nested)] == ["/ganbridge/ping", "/ganbridge/stop"]
    for bad in (KILLER, b"", b"/ganbridge/ping\x00\x00\x00\x00", b"#bundleX" + bytes(8), osc_msg("/a") + b"x"):
        with pytest.raises(WireFault):
            read_datagram(bad)
    assert osc_corpus(SEED, 300) == osc_corpus(SEED, 300)
    assert osc_corpus(SEED, 10, killer=True)[-1] == ("known_killer", KILLER)


def test_bench_parser_takes_the_robustness_flags():
    args = build_parser().parse_args(["bench", "--only", "robustness", "--fuzz", "50", "--soak-seconds", "3"])
    assert (args.only, args.fuzz, args.soak_seconds, args.soak_clients, args.hog_size) == (
        "robustness",
        50,
        3,
        32,
        2048,
    )


def test_osc_fuzz_every_invalid_datagram_gets_exactly_one_error(server):
    f = fuzz("osc", 1500, SEED, server, max_restarts=3, idle_probes=20)
    assert f["inputs"] == 1500 and f["aborted_at"] is None, _report(f)
    assert (f["hangs"], f["crashes"], f["stalled"]) == (0, 0, 0), _report(f)
    assert f["tracebacks"] == 0, server.first_traceback()
    assert f["invalid"] > 500 and f["invalid_one_error"] == f["invalid"], _report(f)
    assert f["valid_silent"] == 0 and f["malformed_replies"] == 0, _report(f)
    assert f["jobs_accepted"] > 0 and f["jobs_unfinished"] == 0 and f["after_final"] == 0, _report(f)


def test_ws_fuzz_one_answer_per_frame_and_the_connection_stays_open(server):
    f = fuzz("ws", 1500, SEED, server, max_restarts=3, idle_probes=20)
    assert f["inputs"] == 1500 and f["aborted_at"] is None, _report(f)
    assert (f["hangs"], f["crashes"], f["stalled"]) == (0, 0, 0), _report(f)
    assert f["tracebacks"] == 0, server.first_traceback()
    assert f["closed"] == 0, _report(f)
    assert f["violations"] == 0 and f["lifecycle_violations"] == 0, _report(f)
    assert f["invalid_one_error"] == f["error_expected"] > 500, _report(f)
    assert f["answers"].get("accepted", 0) > 50 and f["requests_unfinished"] == 0, _report(f)


def test_a_bystander_waits_at_most_about_one_hog_batch(server):
    f = hog_and_bystanders(server, hog_size=512, hog_count=4, bystanders=2, bystander_size=128, requests=8)
    assert f["bystander_errors"] == 0 and f["hog"]["errors"] == 0 and f["hog"]["batches"] >= 2, f
    assert not f["crashed"] and f["tracebacks"] == 0, server.first_traceback()
    # loose (x1.5): a 2-core machine running both sides is noisy
    limit = (f["hog_batch_ms"]["p50"] + f["alone_ms"]["p50"]) * 1.5
    assert f["with_hog_ms"]["p50"] < limit, f


def test_soak_every_request_ends_once_and_every_reply_matches_the_protocol(server):
    f = soak(server, clients=8, seconds=20, seed=SEED)
    assert (f["hangs"], f["crashes"], f["tracebacks"]) == (0, 0, 0), server.first_traceback()
    assert f["violations"] == 0, f["examples"]
    assert f["faults"] == 0, f["examples"]
    assert sum(f["requests"].values()) > 100 and f["disconnects"] > 0, f


def test_osc_known_killer_bundle_of_element_size_minus_4():
    """Its own bridge: one that loops on this datagram is killed by the harness (a hang), not
    left spinning."""
    server = ServerUnderTest("cpu")
    try:
        f = fuzz("osc", 0, SEED, server, killer=True, max_restarts=1, idle_probes=5)
    finally:
        server.close()
    assert (f["hangs"], f["crashes"]) == (0, 0), _report(f)
    assert f["invalid"] == f["invalid_one_error"] == 1, _report(f)


def test_the_bench_times_the_door_s_reader_on_the_corpus_and_the_largest_datagrams():
    from ganbridge.bench.robustness import osc_read_times

    f = osc_read_times(SEED, 200)
    assert f["corpus"]["n"] == 201 and len(f["largest_max_ms"]) == 3
