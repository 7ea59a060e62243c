"""The DAW door with real peers: liblo's oscsend/oscdump, Pure Data running the shipped patch
headless, a JACK server with a second MIDI port recording what the bridge plays, and FluidSynth."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pretty_midi
import pytest

from tests.conftest import BridgeThread, make_settings, missing_host, require_tool
from tests.doors.test_osc import OscDump, free_udp_port, oscsend

pytestmark = pytest.mark.real_host

ROOT = Path(__file__).resolve().parents[2]
PATCH = ROOT / "plugins" / "daw" / "ganbridge.pd"


@pytest.fixture
def dump(tmp_path):
    d = OscDump(tmp_path)
    yield d
    d.close()


def _strings(line: str) -> list[str]:
    return re.findall(r'"([^"]*)"', line)


def _music_over_osc(bridge, dump, *pairs) -> tuple[str, str, list[str]]:
    """Generate music over OSC; (item, .mid path, note lines)."""
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    types = "s" + "".join(
        "s" + ("i" if isinstance(v, int) else "f" if isinstance(v, float) else "s") for v in pairs[1::2]
    )
    before = len(dump.lines())  # the dump keeps every earlier reply: read only this request's
    oscsend(bridge.osc_port, "/ganbridge/generate", types, "music", *pairs)
    deadline = time.monotonic() + 60
    while not any(line.startswith("/ganbridge/done") for line in dump.lines()[before:]):
        assert time.monotonic() < deadline, f"no /ganbridge/done; got {dump.lines()[before:]}"
        time.sleep(0.05)
    lines = dump.lines()[before:]
    result = next(line for line in lines if line.startswith("/ganbridge/result"))
    _, item, path = _strings(result)
    return item, path, [line for line in lines if line.startswith("/ganbridge/note")]


def test_music_over_osc_notes_file_and_knobs(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/set", "sss", "music", "key", "A minor")  # a knob default
    oscsend(bridge.osc_port, "/ganbridge/set", "ssf", "music", "tempo", 132.0)
    item, path, notes = _music_over_osc(bridge, dump, "bars", 2, "seed", 4, "tracks", "soprano,alto,bass")
    pm = pretty_midi.PrettyMIDI(path)
    assert [i.name for i in pm.instruments] == ["soprano", "alto", "bass"]
    assert pm.get_tempo_changes()[1][0] == pytest.approx(132.0, rel=1e-4)
    rec = bridge.core.store.get(item)
    assert rec.params["key"] == "A minor" and rec.params["bars"] == 2
    # one /ganbridge/note per MIDI note, typed i i i f f, in start order
    assert len(notes) == sum(len(i.notes) for i in pm.instruments)
    assert all(line.startswith("/ganbridge/note siiiff ") for line in notes)
    starts = [float(line.split()[-2]) for line in notes]
    assert starts == sorted(starts) and max(starts) < 8.0
    oscsend(bridge.osc_port, "/ganbridge/feedback", "sfs", item, -1.0, "daw")
    dump.wait_for(f'/ganbridge/ack s "{item}"')
    assert bridge.core.store.latest_rating(item) == -1


MELODY = "72:0:1,76:1:1,79:2:1,77:3:1,76:4:1,74:5:1,74:6:0.5,71:6.5:0.5,72:7:1"


def _soprano(note_lines: list[str]) -> list[tuple[int, float, float]]:
    """(pitch, start, length) of the soprano's /ganbridge/note lines (track 0)."""
    out = []
    for line in note_lines:
        track, pitch, _velocity, start, length = line.split()[-5:]
        if int(track) == 0:
            out.append((int(pitch), float(start), float(length)))
    return sorted(out)


def test_harmonizing_a_melody_over_osc(bridge, dump):
    item, path, notes = _music_over_osc(bridge, dump, "bars", 2, "seed", 3, "melody", MELODY)
    given = sorted((int(p), float(s), float(n)) for p, s, n in (note.split(":") for note in MELODY.split(",")))
    assert _soprano(notes) == given
    pm = pretty_midi.PrettyMIDI(path)
    assert [len(i.notes) > 0 for i in pm.instruments] == [True] * 4
    rec = bridge.core.store.get(item)
    assert sorted(tuple(n) for n in rec.params["melody"]) == given
    # a knob default holds it for the next generates; "none" clears it
    oscsend(bridge.osc_port, "/ganbridge/set", "sss", "music", "melody", MELODY.replace(",", "/"))
    _, _, again = _music_over_osc(bridge, dump, "bars", 2, "seed", 4)
    assert _soprano(again) == given
    oscsend(bridge.osc_port, "/ganbridge/set", "sss", "music", "melody", "none")
    _, _, free = _music_over_osc(bridge, dump, "bars", 2, "seed", 4)
    assert _soprano(free) != given


@pytest.mark.parametrize(
    ("types", "values", "code", "text"),
    [
        ("ssi", ("music", "bars", 40), "invalid_params", "bars"),
        ("sss", ("music", "key", "Z minor"), "invalid_params", "key"),
        ("sss", ("music", "tracks", "soprano,piano"), "invalid_params", "tracks"),
        ("sss", ("music", "program", "0,0,0,999"), "invalid_params", "program"),
        ("sss", ("music", "tempo", "fast"), "invalid_params", "tempo"),
        ("sss", ("music", "melody", "60:0:2,62:1:1"), "invalid_params", "overlap"),
        ("sss", ("music", "melody", "60:0"), "invalid_params", "melody"),
    ],
)
def test_bad_music_requests_over_osc(bridge, dump, types, values, code, text):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/generate", types, *values)
    error = next(line for line in dump.wait_for("/ganbridge/error") if line.startswith("/ganbridge/error"))
    assert code in error and text in error


def test_play_of_an_unknown_or_non_music_item(bridge, dump):
    oscsend(bridge.osc_port, "/ganbridge/reply_to", "i", dump.port)
    oscsend(bridge.osc_port, "/ganbridge/play", "s", "no-such-item")
    assert "unknown_item" in dump.wait_for("/ganbridge/error")[-1]
    oscsend(bridge.osc_port, "/ganbridge/play", "i", 3)
    assert "invalid_params" in dump.wait_for("item must be a string")[-1]


def test_osc_address_map_covers_every_address_the_door_handles():
    from ganbridge.doors.osc_mapping import OscMapping

    spec = json.loads((ROOT / "plugins" / "daw" / "osc_map.json").read_text())
    mapped = {a["address"] for a in spec["to_bridge"]}
    handled = set(OscMapping.addresses())
    assert mapped == handled


# --- Pure Data --------------------------------------------------------------------------------


def _run_patch(bridge, *sends: str) -> str:
    """Run the shipped patch headless against the bridge with these messages; its output."""
    pd = require_tool("pd", "puredata-core")
    cmd = [pd, "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", str(PATCH),
           "-send", f"gb-server 127.0.0.1 {bridge.osc_port} {free_udp_port()}"]  # fmt: skip
    for message in sends:
        cmd += ["-send", message]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    return out


def test_pd_patch_harmonizes_a_melody(bridge, tmp_path):
    try:
        out = _run_patch(bridge, "gb-melody 72:0:1/76:1:1/79:2:2", "gb-bars 1", "gb-generate bang")
    finally:  # a knob default is this host's: later tests from 127.0.0.1 must not harmonize it
        oscsend(bridge.osc_port, "/ganbridge/set", "sss", "music", "melody", "none")
    assert "error" not in out.lower(), out
    result = next(line for line in out.splitlines() if line.startswith("ganbridge: result"))
    pm = pretty_midi.PrettyMIDI(result.split()[-1])
    beat = 60 / 90  # the patch's default tempo
    soprano = [(n.pitch, round(n.start / beat, 3), round((n.end - n.start) / beat, 3)) for n in pm.instruments[0].notes]
    assert soprano == [(72, 0, 1), (76, 1, 1), (79, 2, 2)] and len(pm.instruments) == 4
    assert all(inst.notes for inst in pm.instruments)


def test_pd_patch_generates_and_plays_received_notes(bridge, tmp_path):
    out = _run_patch(bridge, "gb-bars 1", "gb-tempo 240", "gb-generate bang")
    assert "error" not in out.lower(), out
    received = [line for line in out.splitlines() if line.startswith("ganbridge: note")]
    result = next(line for line in out.splitlines() if line.startswith("ganbridge: result"))
    path = result.split()[-1]
    pm = pretty_midi.PrettyMIDI(path)
    assert len(received) == sum(len(i.notes) for i in pm.instruments) > 0
    # what the patch scheduled through [pipe] to [noteout]: pitch velocity duration(ms) channel
    played = [line.split()[1:] for line in out.splitlines() if line.startswith("play:")]
    expected = sorted((n.pitch, ch + 1) for ch, inst in enumerate(pm.instruments) for n in inst.notes)
    assert sorted((int(p), int(c)) for p, _, _, c in played) == expected
    item = bridge.core.store.get(Path(path).stem)
    assert item.params["bars"] == 1 and item.params["tempo"] == 240 and item.session == "pd"


# --- JACK MIDI and FluidSynth --------------------------------------------------------------------


@pytest.fixture(scope="module")
def jack_server(tmp_path_factory):
    jackd = require_tool("jackd", "jackd2")
    log = tmp_path_factory.mktemp("jack") / "jackd.log"
    proc = subprocess.Popen([jackd, "--no-realtime", "-d", "dummy"], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    time.sleep(1.5)
    if proc.poll() is not None:
        missing_host(f"a running JACK server (jackd did not start: {log.read_text()[-300:]})", "apt-get install jackd2")
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def _bridge_on_jack(tmp_path: Path):
    """A bridge whose MIDI port is on JACK, an oscdump for its replies, the JACK backend and the
    name of the bridge's port as an input there."""
    import mido

    backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    name = f"gbtest{free_udp_port()}"
    b = BridgeThread(make_settings(tmp_path, midi_out=name, midi_api="UNIX_JACK"))
    port_name = next(n for n in backend.get_input_names() if name in n)
    return b, OscDump(tmp_path), backend, port_name


def test_virtual_midi_port_plays_the_item_in_order(jack_server, tmp_path):
    import mido

    b, dump, backend, port_name = _bridge_on_jack(tmp_path)
    try:
        assert b.core.player is not None and b.core.player.is_open
        received: list[tuple[float, mido.Message]] = []
        with backend.open_input(port_name, callback=lambda m: received.append((time.perf_counter(), m))):
            item, path, _ = _music_over_osc(b, dump, "bars", 1, "tempo", 240.0, "seed", 2)
            oscsend(b.osc_port, "/ganbridge/play", "s", item)
            playing = dump.wait_for("/ganbridge/playing")
            assert any(item in line for line in playing)
            dump.wait_for("/ganbridge/played", timeout=10)
            time.sleep(0.2)
        expected = [(m.note, m.channel) for m in mido.MidiFile(path) if m.type == "note_on" and m.velocity > 0]
        got = [(m.note, m.channel) for _, m in received if m.type == "note_on" and m.velocity > 0]
        assert got == expected  # every note, in order
        offs = sum(1 for _, m in received if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
        assert offs == len(got)
        span = received[-1][0] - received[0][0]
        assert 0.6 < span < 1.6  # one bar at 240 bpm is 1 s
        # stop cuts playback short and silences what sounds
        oscsend(b.osc_port, "/ganbridge/set", "ssi", "music", "bars", 8)
        received.clear()
        with backend.open_input(port_name, callback=lambda m: received.append((time.perf_counter(), m))):
            oscsend(b.osc_port, "/ganbridge/play", "s", item)
            time.sleep(0.3)
            oscsend(b.osc_port, "/ganbridge/stop")
            dump.wait_for("/ganbridge/stopped")
            time.sleep(0.2)
        ons = sum(1 for _, m in received if m.type == "note_on" and m.velocity > 0)
        offs = sum(1 for _, m in received if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
        assert 0 < ons < len(got) and offs == ons
    finally:
        dump.close()
        b.stop()


def _frame_notes(lines: list[str], live: str, seq: int) -> list[tuple[float, int, int]]:
    """A live frame's notes from oscdump lines: (start beat, channel, pitch), in the order a
    player sends them (by time, then channel, then pitch)."""
    notes = []
    for line in lines:
        if line.startswith("/ganbridge/live/note") and f'"{live}"' in line:
            _, _, _, frame, track, pitch, _velocity, start, _length = line.split()
            if int(frame) == seq:
                notes.append((float(start), int(track), int(pitch)))
    return sorted(notes)


def test_a_live_loop_changes_at_the_next_bar_with_no_gap_and_no_hanging_note(jack_server, tmp_path):
    import mido

    b, dump, backend, port_name = _bridge_on_jack(tmp_path)
    try:
        oscsend(b.osc_port, "/ganbridge/reply_to", "i", dump.port)
        oscsend(b.osc_port, "/ganbridge/live/open", "ssisfsi", "music", "bars", 1, "tempo", 240.0, "seed", 6)
        live = _strings(
            next(x for x in dump.wait_for("/ganbridge/live/frame") if x.startswith("/ganbridge/live/opened"))
        )[0]
        old = _frame_notes(dump.lines(), live, 0)
        received: list[tuple[float, mido.Message]] = []
        with backend.open_input(port_name, callback=lambda m: received.append((time.perf_counter(), m))):
            oscsend(b.osc_port, "/ganbridge/live/loop", "s", live)
            dump.wait_for("/ganbridge/live/looping")
            time.sleep(2.6)  # a bar is 1 s at 240 bpm
            oscsend(b.osc_port, "/ganbridge/live/move", "sfff", live, 4.0, -4.0, 4.0)
            dump.wait_for(f'"{live}" 1 ')  # the frame of move 1 (its notes, then the frame)
            time.sleep(2.6)
            oscsend(b.osc_port, "/ganbridge/stop")
            dump.wait_for(f'/ganbridge/stopped s "{live}"')
            time.sleep(0.3)
        new = _frame_notes(dump.lines(), live, 1)
        # a loop ends with its session: closing it (or its client going away) stops the port
        oscsend(b.osc_port, "/ganbridge/live/loop", "s", live)
        time.sleep(0.5)
        oscsend(b.osc_port, "/ganbridge/live/close", "s", live)
        dump.wait_for(f'/ganbridge/played s "{live}"', timeout=5)
        assert b.core.player.playing is None
        assert old and new and [n[1:] for n in old] != [n[1:] for n in new]
        ons = [(t, (m.channel, m.note)) for t, m in received if m.type == "note_on" and m.velocity > 0]
        offs = [m for _, m in received if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
        assert len(offs) == len(ons)  # every note ended, the stop's included
        # each bar is one frame's bar, whole: the old ones, then from a bar boundary the new ones
        bars, i = [], 0
        while i < len(ons):
            for label, notes in (("old", old), ("new", new)):
                keys = [n[1:] for n in notes]
                if [k for _, k in ons[i : i + len(keys)]] == keys:
                    bars.append((label, ons[i][0] - notes[0][0] * 0.25))  # when that bar began
                    i += len(keys)
                    break
            else:
                rest = [k for _, k in ons[i:]]  # the bar the stop cut short: a beginning of one
                assert any(rest == [n[1:] for n in notes][: len(rest)] for notes in (new, old)), (
                    f"notes {i}.. are no frame's bar: {ons[i : i + 8]}"
                )
                break
        labels = [label for label, _ in bars]
        assert (
            labels == sorted(labels, key=lambda x: x == "new") and labels.count("old") >= 2 and labels.count("new") >= 2
        )
        starts = [start for _, start in bars]
        gaps = [b2 - b1 for b1, b2 in zip(starts, starts[1:])]
        assert all(abs(g - 1.0) < 0.05 for g in gaps), gaps  # bar after bar, on one clock
    finally:
        dump.close()
        b.stop()


def test_no_midi_system_is_a_clear_error_and_nothing_else_breaks(tmp_path, monkeypatch):
    # A JACK client aimed at a server that does not exist: the port cannot open on any machine,
    # the bridge logs why and runs on
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"ganbridge-absent-{free_udp_port()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    b = BridgeThread(make_settings(tmp_path, midi_out="ganbridge", midi_api="UNIX_JACK"))
    dump = OscDump(tmp_path)
    try:
        assert b.core.player is not None and not b.core.player.is_open
        item, _, notes = _music_over_osc(b, dump, "bars", 1)
        assert notes
        oscsend(b.osc_port, "/ganbridge/play", "s", item)
        error = dump.wait_for("/ganbridge/error")[-1]
        assert "unavailable" in error and "MIDI system" in error
        oscsend(b.osc_port, "/ganbridge/ping")
        dump.wait_for("/ganbridge/pong")
    finally:
        dump.close()
        b.stop()


def test_wav_over_osc(bridge, dump):
    require_tool("fluidsynth", "fluidsynth fluid-soundfont-gm")
    _, path, notes = _music_over_osc(bridge, dump, "bars", 1, "format", "wav")
    assert path.endswith(".wav") and Path(path).read_bytes()[:4] == b"RIFF" and notes


def test_music_bench_measures_the_osc_paths(bridge):
    from ganbridge.bench.music import music_figures

    f = music_figures("cpu", bridge.osc_port, runs=3)
    assert f["music_notes_per_item"] > 0
    assert 0 < f["osc_ping_p50_ms"] <= f["osc_ping_p99_ms"]
    assert f["music_raw_p50_ms"] > 0 and f["osc_generate_p50_ms"] > 0
    assert f["osc_flood"]["sent"] == 5000 and f["osc_flood"]["answered"] > 0
