"""The live benchmark's parts on a real bridge: a drag's frames and latencies, and the music loop
heard at a JACK MIDI port (the full figures come from `ganbridge bench --only live`)."""

from __future__ import annotations

import asyncio

import pytest

from ganbridge.bench.live import RATE_HZ, bystander, drag, fixed_cost
from ganbridge.bench.live_music import loop_changes
from tests.conftest import require_tool


def test_a_drag_counts_frames_and_every_moves_latency(bridge):
    row = asyncio.run(drag(bridge.url, "image", {"size": 64}, seconds=0.5))
    assert abs(row["moves"] - RATE_HZ * 0.5) <= 3  # a move each 1/RATE_HZ s
    assert 0 < row["frames"] <= row["moves"] and row["frames_per_s"] > 5
    assert 0 < row["latency_p50_ms"] <= row["latency_p90_ms"] < 1000


def test_the_fixed_cost_times_a_v1_and_a_binary_client_in_turns(bridge):
    times = asyncio.run(fixed_cost(bridge.url, "cpu", 3))
    assert sorted(times) == ["binary", "json", "raw"] and all(len(t) == 3 for t in times.values())
    # a round trip renders the same texture, so it cannot take less than a tenth of the raw render
    raw = min(times["raw"])
    assert all(t > raw / 10 for t in times["json"] + times["binary"]), times


def test_the_bystander_is_timed_beside_neighbours_that_run_as_programs_of_their_own(bridge):
    # each neighbour (a drag, a client generating) is a process of its own that must still be
    # running when its turn ends: one that died would leave "beside" timed alone
    row = asyncio.run(bystander(bridge.url, 2))
    assert all(row[k] > 0 for k in ("alone_p50_ms", "beside_drag_p50_ms", "beside_generating_p50_ms")), row
    assert row["drag_ratio"] == row["beside_drag_p50_ms"] / row["alone_p50_ms"], row


@pytest.mark.real_host
def test_the_music_loop_is_heard_changing_at_the_next_bar():
    require_tool("jackd", "jackd2")
    row = loop_changes(3, "cpu")
    assert row == {"changes": 3, "heard_at_next_bar": 3, "share": 1.0}, row
