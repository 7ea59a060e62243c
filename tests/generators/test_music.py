"""The music generator: metrics on hand-made rolls, decoding, MIDI read back by an independent
reader (pretty_midi), training on a handful of real chorales, and the shipped model through the
bridge (MIDI, WAV by FluidSynth, variations and interpolation)."""

from __future__ import annotations

import base64
import io
import json
import math
import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from ganbridge.generators.music.evaluate import (
    empty_bars,
    pitch_class_entropy,
    polyphony,
    qualified_notes,
    scale_consistency,
    tonal_distance,
    used_pitch_classes,
)
from ganbridge.generators.music.model import MusicConfig, binarize
from ganbridge.generators.music.notes import (
    allowed_rows,
    decode_piece,
    decode_roll,
    detect_key,
    note_list,
    notes_to_midi,
    notes_to_roll,
    transposition,
)
from tests.conftest import make_settings, require_tool

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71]
# The ranges the shipped model's voices are decoded in (its card), each inside the voice's range
# in the 309 four-part 4/4 chorales (soprano 57-81, alto 53-74, tenor 48-69, bass 36-64).
SHIPPED_CARD = Path(__file__).parents[2] / "generators" / "weights" / "music" / "bach.json"
VOICE_RANGES = dict(
    zip(("soprano", "alto", "tenor", "bass"), json.loads(SHIPPED_CARD.read_text())["config"]["voice_ranges"])
)


# --- metrics on rolls with known answers ---------------------------------------------------------


def test_empty_bars_and_used_pitch_classes():
    notes = [(0, 60, 0, 4), (0, 64, 4, 4), (0, 67, 8, 8), (1, 48, 16, 16)]  # track 0 only in bar 1 of 2
    assert empty_bars(notes, 0, 2) == 0.5
    assert empty_bars(notes, 1, 2) == 0.5
    assert used_pitch_classes(notes, 0, 2) == 3  # C E G in its one non-empty bar
    assert used_pitch_classes(notes, 1, 2) == 1


def test_qualified_notes_counts_notes_long_enough():
    notes = [(0, 60, 0, 1), (0, 62, 1, 2), (0, 64, 3, 4), (1, 50, 0, 1)]
    assert qualified_notes(notes, 0, 2) == pytest.approx(2 / 3)
    assert qualified_notes(notes, 0, 3) == pytest.approx(1 / 3)
    assert qualified_notes(notes, 1, 2) == 0.0
    assert math.isnan(qualified_notes(notes, 2, 2))


def test_tonal_distance_is_zero_for_the_same_harmony_and_grows_with_distance():
    same = [(0, 60, 0, 16), (0, 64, 0, 16), (1, 48, 0, 16), (1, 52, 0, 16)]  # C+E in both
    assert tonal_distance(same, 0, 1, 1) == pytest.approx(0.0, abs=1e-9)
    fifth = [(0, 60, 0, 16), (1, 55, 0, 16)]  # C against G: close in tonal space
    tritone = [(0, 60, 0, 16), (1, 54, 0, 16)]  # C against F#: far
    assert 0 < tonal_distance(fifth, 0, 1, 1) < tonal_distance(tritone, 0, 1, 1)


def test_pitch_class_entropy_scale_consistency_and_polyphony():
    chromatic = [(0, 60 + i, i, 1) for i in range(12)]
    assert pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    assert pitch_class_entropy([(0, 60, 0, 4), (1, 72, 0, 4)]) == 0.0
    scale = [(0, p, i, 1) for i, p in enumerate(C_MAJOR_SCALE)]
    assert scale_consistency(scale) == 1.0
    assert scale_consistency(chromatic) == pytest.approx(7 / 12)
    assert polyphony([(0, 60, 0, 16), (1, 64, 0, 16)], 1) == 2.0
    assert polyphony([(0, 60, 0, 8), (1, 64, 4, 8), (2, 67, 14, 2)], 1) == pytest.approx((4 + 8 + 4 + 2) / 14)


# --- decoding, keys and MIDI -----------------------------------------------------------------------


def test_decode_roll_keeps_repeated_notes_apart_and_one_pitch_per_voice():
    config = MusicConfig()
    notes = [(0, 72, 0, 4), (0, 72, 4, 4), (0, 74, 8, 2), (1, 60, 0, 16), (3, 40, 2, 6)]
    probs = notes_to_roll(notes, config, 16) * 0.9
    probs[2, 5, 72 - config.low + 2] = 0.6  # a weaker second pitch in the alto: not a second note
    assert decode_roll(probs, config, 0.5) == sorted(notes, key=lambda n: (n[2], n[0]))
    assert decode_roll(probs, config, 0.95) == []  # density 0.05: nothing is certain enough


def test_each_voice_is_read_only_inside_its_range_also_after_a_transposition():
    config = MusicConfig(voice_ranges=[[60, 79], [55, 74], [48, 67], [36, 60]])
    probs = notes_to_roll([(0, 84, 0, 4), (3, 40, 0, 4)], config, 4) * 0.9
    probs[0, :, 76 - config.low] = 0.7  # the soprano's next best pitch, inside its range
    assert decode_roll(probs, config, 0.5) == [(0, 84, 0, 4), (3, 40, 0, 4)]
    assert decode_roll(probs, config, 0.5, allowed_rows(config)) == [(0, 76, 0, 4), (3, 40, 0, 4)]
    # A C major cadence over a low bass, each bass note also likely an octave higher. To reach
    # F# major it moves down 6 (nearer the chorales' mean pitch than up 6), which would take the
    # bass's C and F below its range: the roll is read again with the ranges moved up by 6, and
    # there the bass takes the octave above (its G, inside either way, stays).
    cadence = _cadence()
    probs = notes_to_roll(cadence, config, 16) * 0.9
    octave_up = [(t, p + 12, s, n) for t, p, s, n in cadence if t == 3]
    probs = np.maximum(probs, notes_to_roll(octave_up, config, 16) * 0.7)
    moved, key = decode_piece(probs, config, 0.5, "major", "F# major")
    assert key == "F# major"
    assert [p for t, p, _, _ in moved if t == 3] == [48 - 6, 53 - 6, 43 - 6, 48 - 6]
    assert [p for t, p, _, _ in moved if t == 0] == [79 - 6, 77 - 6, 79 - 6, 79 - 6]
    assert all(config.voice_ranges[t][0] <= p <= config.voice_ranges[t][1] for t, p, _, _ in moved)
    # under key auto: as decoded, and named by what the 24-key detector hears
    assert decode_piece(probs, config, 0.5, "minor", None)[1] == "C major"


def _cadence() -> list[tuple[int, int, int, int]]:
    """I - IV - V - I in C major, the bass at the bottom of the test's range."""
    chords = [(79, 72, 64, 36), (77, 72, 65, 41), (79, 74, 67, 43), (79, 72, 64, 36)]
    return [(t, chord[t], 4 * i, 4) for i, chord in enumerate(chords) for t in range(4)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_critic_sees_exactly_the_notes_the_decoder_plays(seed):
    """Training shows the critic binarize(probs); users hear decode_roll(probs). They must agree, or
    the generator is trained for a roll nobody hears (the droning voices of an earlier model)."""
    config = MusicConfig(pitches=20)
    rng = np.random.default_rng(seed)
    steps = 32
    # Mostly quiet with a few likely pitches, so holds, re-strikes, moves and rests all occur.
    probs = (rng.random((2 * config.n_tracks, steps, config.pitches)) ** 6).astype(np.float32)
    probs[0::2, :, rng.integers(config.pitches, size=3)] += 0.4
    probs = np.clip(probs, 0, 1)
    for threshold in (0.3, 0.5, 0.7):
        notes = decode_roll(probs, config, threshold)
        lengths = [n for *_, n in notes]
        assert len(notes) > 10 and min(lengths) == 1 and max(lengths) > 2  # not a trivial case
        seen = binarize(torch.from_numpy(probs)[None], threshold)[0].numpy()
        np.testing.assert_allclose(seen, notes_to_roll(notes, config, steps), atol=1e-6)  # p - p rounding


def test_binarize_passes_the_gradient_to_every_probability():
    probs = torch.full((1, 8, 16, 12), 0.3, requires_grad=True)
    binarize(probs).sum().backward()
    assert torch.equal(probs.grad, torch.ones_like(probs))


def test_key_detection_and_transposition():
    low_c = [(0, p - 12, 4 * i, 4) for i, p in enumerate(C_MAJOR_SCALE + [72, 67, 60])]  # mean pitch 53.7
    assert detect_key(low_c) == (0, "major")
    assert transposition(low_c, "D major", 0) == 2
    # up 6 rather than down 6: that keeps the mean nearer the chorales' (61)
    assert transposition(low_c, "F# major", 0) == 6
    high_c = [(t, p + 24, s, n) for t, p, s, n in low_c]
    assert transposition(high_c, "D major", 0) == 2 - 12  # an octave down, not two up


def test_midi_file_read_back_by_pretty_midi():
    notes = [(0, 72, 0, 8), (0, 74, 8, 8), (1, 64, 0, 16), (2, 55, 4, 12), (3, 48, 0, 16), (3, 43, 16, 16)]
    data = notes_to_midi(notes, 2, 120.0, [0, 1, 2, 3], [19, 19, 19, 32], ["soprano", "alto", "tenor", "bass"])
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert [i.name for i in pm.instruments] == ["soprano", "alto", "tenor", "bass"]
    assert [i.program for i in pm.instruments] == [19, 19, 19, 32]
    assert pm.get_tempo_changes()[1].tolist() == [120.0]
    assert [(ts.numerator, ts.denominator) for ts in pm.time_signature_changes] == [(4, 4)]
    assert pm.get_end_time() == pytest.approx(4.0)  # 2 bars of 4 beats at 120 bpm
    # note lengths merged from the roll: the bass's whole notes are whole notes, not 16 sixteenths
    bass = [(n.pitch, n.start, n.end) for n in pm.instruments[3].notes]
    assert bass == [(48, 0.0, 2.0), (43, 2.0, 4.0)]
    assert note_list(notes, [0, 3]) == [
        [0, 72, 96, 0.0, 2.0],
        [0, 74, 84, 2.0, 2.0],
        [1, 48, 96, 0.0, 4.0],
        [1, 43, 96, 4.0, 4.0],
    ]


# --- training on real chorales ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_music_model(tmp_path_factory) -> Path:
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.train import MusicTrainer, MusicTrainSettings

    data = load_music_data("bach", None, limit=6)
    out = tmp_path_factory.mktemp("music-train")
    settings = MusicTrainSettings(out=out, name="tiny", steps=4, batch=8, sample_every=2, save_every=2,
                                  snapshots=True, config=MusicConfig(width=16))  # fmt: skip
    return MusicTrainer(settings, "test", data).run()


def test_training_a_few_steps_writes_loadable_weights(tiny_music_model):
    from ganbridge.generators.checkpoint import read_card
    from ganbridge.generators.music.model import load_music_network

    model = load_music_network(tiny_music_model)
    card = read_card(tiny_music_model)
    assert card["kind"] == "music" and card["training"]["steps"] == 4
    assert card["data"]["train_pieces"] == 5 and card["data"]["held_out_pieces"] == 1
    assert "public domain" in card["data"]["license"]
    out = tiny_music_model.parent
    assert (out / "loss.png").is_file() and (out / "samples" / "step_000004.png").is_file()
    pretty_midi.PrettyMIDI(str(out / "samples" / "step_000004_0.mid"))  # a readable sample file
    assert model.net.config.width == 16


def test_training_snapshots_every_sample_step(tiny_music_model):
    """--snapshots: the EMA generator at each sample step, loadable and evaluable on its own."""
    from ganbridge.generators.checkpoint import read_card
    from ganbridge.generators.music.model import load_music_network

    snapshots = tiny_music_model.parent / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["step_000002", "step_000004"]
    early = snapshots / "step_000002" / "tiny.safetensors"
    assert read_card(early)["training"]["steps"] == 2
    a = load_music_network(early).net.state_dict()
    b = load_music_network(tiny_music_model).net.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # step 2's weights, not the final ones


def test_training_resumes_from_saved_state(tiny_music_model):
    from ganbridge.generators.music.data import load_music_data
    from ganbridge.generators.music.train import MusicTrainer, MusicTrainSettings

    data = load_music_data("bach", None, limit=6)
    settings = MusicTrainSettings(out=tiny_music_model.parent, name="tiny", steps=6, batch=8, sample_every=2,
                                  save_every=2, config=MusicConfig(width=16))  # fmt: skip
    trainer = MusicTrainer(settings, "test resume", data)
    trainer.run(resume=True)
    assert trainer.runs[0]["to_step"] == 4 and trainer.step == 6


def test_midi_folder_training_data(tmp_path):
    from ganbridge.generators.music.data import load_music_data

    good = notes_to_midi([(t, 72 - 7 * t, s, 4) for t in range(4) for s in range(0, 64, 4)], 4, 100.0,
                         [0, 1, 2, 3], [0] * 4, ["a", "b", "c", "d"])  # fmt: skip
    (tmp_path / "one.mid").write_bytes(good)
    (tmp_path / "two.mid").write_bytes(good)
    (tmp_path / "broken.mid").write_bytes(b"MThd nonsense")
    data = load_music_data(None, tmp_path)
    assert len(data.train) + len(data.held_out) == 2
    assert "broken.mid" in data.report["skipped"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .mid"):
        load_music_data(None, tmp_path / "empty")


def test_eval_command_prints_the_table(tiny_music_model, tmp_path):
    from ganbridge.cli.main import main

    folder = tmp_path / "midi"
    folder.mkdir()
    for k in range(3):
        notes = [(t, 74 - 7 * t - k, s, 4) for t in range(4) for s in range(0, 64, 4)]
        (folder / f"{k}.mid").write_bytes(notes_to_midi(notes, 4, 90.0, [0, 1, 2, 3], [0] * 4, list("satb")))
    out_json, sheet = tmp_path / "eval.json", tmp_path / "sheet.png"
    args = ["eval", "music", "--model", str(tiny_music_model), "--midi-folder", str(folder), "--samples", "20",
            "--json", str(out_json), "--sheet", str(sheet)]  # fmt: skip
    assert main(args) == 0
    table = json.loads(out_json.read_text())
    assert table["phrases"]["generated"] == 20 and table["phrases"]["held_out_real"] == 1
    real = table["metrics"]
    assert real["qn2/0"]["real"] == 1.0 and real["upc/0"]["real"] == 1.0 and real["eb/0"]["real"] == 0.0
    assert sheet.is_file()


# --- the shipped model through the bridge ----------------------------------------------------------


def _midi(item: dict) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(base64.b64decode(item["data"])))


def _items(ws, msg: dict) -> list[dict]:
    """Send a request; the items of its results, in order, once it is done."""
    ws.send(msg)
    msgs = ws.until_final(msg["id"])
    assert msgs[-1]["type"] == "done", msgs[-1]
    return [i for m in msgs if m["type"] == "result" for i in m["items"]]


def _generate(ws, rid: str, count: int = 1, **params) -> list[dict]:
    return _items(ws, {"type": "generate", "id": rid, "generator": "music", "params": params, "count": count})


def test_shipped_model_writes_four_part_midi_in_the_requested_key(ws):
    items = _generate(ws, "m1", bars=8, tempo=100, key="D minor", seed=3, program=[19, 19, 19, 32])
    item = items[0]
    assert item["format"] == "mid" and item["mime"] == "audio/midi" and item["key"] == "D minor"
    pm = _midi(item)
    assert [i.name for i in pm.instruments] == ["soprano", "alto", "tenor", "bass"]
    assert pm.get_tempo_changes()[1].tolist() == [pytest.approx(100.0, rel=1e-4)]
    assert pm.get_end_time() == pytest.approx(8 * 4 * 60 / 100)  # 8 bars
    notes = [(t, p, round(s * 4), round(n * 4)) for t, p, _, s, n in item["notes"]]
    assert detect_key(notes, "minor")[0] == 2  # tonic D
    assert len(item["notes"]) == sum(len(i.notes) for i in pm.instruments)


@pytest.mark.parametrize("key", ["auto", "D minor", "F# major", "B minor"])
def test_shipped_model_keeps_every_voice_inside_its_range_in_any_key(ws, key):
    for item in _generate(ws, f"range-{key}", count=4, bars=4, key=key, seed=21):
        pm = _midi(item)
        for inst in pm.instruments:
            low, high = VOICE_RANGES[inst.name]
            assert inst.notes and all(low <= n.pitch <= high for n in inst.notes), (key, inst.name)
        if key == "auto":  # the key a 24-key detector hears in the notes
            notes = [(t, p, round(s * 4), round(n * 4)) for t, p, _, s, n in item["notes"]]
            assert item["key"] == " ".join(_key_name(*detect_key(notes)))


def test_more_density_more_notes_on_the_shipped_model(ws):
    counts = []
    for density in (0.2, 0.35, 0.5, 0.65, 0.8, 1.0):
        items = _generate(ws, f"density-{density}", count=3, bars=4, seed=5, density=density)
        counts.append(sum(len(item["notes"]) for item in items))
    assert counts == sorted(counts) and counts[0] < counts[2] < counts[-1], counts


def _mood(ws, mood: str, **params) -> list[dict]:
    return _generate(ws, f"mood-{mood}-{len(params)}", count=16, bars=4, seed=40, mood=mood, **params)


def _shares(items: list[dict]) -> dict[str, float]:
    notes = [n for item in items for n in item["notes"]]
    return {
        "major": float(np.mean([detect_key(_as_steps(item))[1] == "major" for item in items])),
        "pitch": float(np.mean([n[1] for n in notes])),
        "notes": len(notes) / len(items),
    }


def _as_steps(item: dict) -> list[tuple[int, int, int, int]]:
    return [(t, p, round(s * 4), max(1, round(n * 4))) for t, p, _, s, n in item["notes"]]


def test_moods_act_on_mode_tempo_density_register_and_articulation(ws):
    sad, joyful, calm, agitated = (_mood(ws, m) for m in ("sad", "joyful", "calm", "agitated"))
    s, j, c, a = (_shares(items) for items in (sad, joyful, calm, agitated))
    assert j["major"] >= 0.75 and s["major"] <= 0.3, (j, s)  # valence: the mode (measured 1.00 and 0.14)
    assert [i["tempo"] for i in agitated] == pytest.approx([90 * 2**0.4] * 16)  # arousal 0.8: tempo x 1.32
    assert [i["tempo"] for i in calm] == pytest.approx([90 * 2**-0.35] * 16)
    assert _midi(agitated[0]).get_tempo_changes()[1][0] == pytest.approx(90 * 2**0.4, rel=1e-4)
    assert a["notes"] > 1.3 * c["notes"], (a, c)  # arousal: density
    assert j["pitch"] > s["pitch"] + 2, (j, s)  # valence + arousal: register

    # articulation: an agitated note sounds for 0.68 of its 16th-grid length, a calm one for all of it
    def off_grid(items: list[dict]) -> float:
        return float(np.mean([abs(n[4] * 4 - round(n[4] * 4)) > 1e-6 for item in items for n in item["notes"]]))

    assert off_grid(agitated) > 0.9 and off_grid(calm) == 0
    item = agitated[0]
    beat = 60 / item["tempo"]
    heard = sorted(round((n.end - n.start) / beat, 3) for inst in _midi(item).instruments for n in inst.notes)
    assert heard == sorted(round(n[4], 3) for n in item["notes"])  # the MIDI file sounds what the list says
    # valence and arousal given override the named mood's
    minor_joy = _shares(_mood(ws, "joyful", valence=-0.9))
    assert minor_joy["major"] <= 0.3, minor_joy


@pytest.mark.parametrize(
    ("params", "path"),
    [({"mood": "happy"}, "params.mood"), ({"valence": 2}, "params.valence"), ({"arousal": -1.5}, "params.arousal")],
)
def test_bad_moods_are_refused_clearly(ws, params, path):
    reply = ws.request({"type": "generate", "id": "bad-mood", "generator": "music", "params": params})
    assert reply["type"] == "error" and reply["code"] == "invalid_params"
    assert any(d["path"].startswith(path) for d in reply["details"]), reply


def _key_name(tonic: int, mode: str) -> tuple[str, str]:
    return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[tonic], mode


def test_tracks_subset_and_same_seed_same_music(ws):
    a = _generate(ws, "m2", seed=9, tracks=["soprano", "bass"])[0]
    b = _generate(ws, "m3", seed=9, tracks=["soprano", "bass"])[0]
    assert base64.b64decode(a["data"]) == base64.b64decode(b["data"])
    assert [i.name for i in _midi(a).instruments] == ["soprano", "bass"]
    assert {n[0] for n in a["notes"]} == {0, 1}


def _jaccard(a: list, b: list) -> float:
    sa, sb = {tuple(n[:2] + n[3:4]) for n in a}, {tuple(n[:2] + n[3:4]) for n in b}
    return len(sa & sb) / max(1, len(sa | sb))


def test_interpolation_morphs_one_item_into_the_other(ws):
    a = _generate(ws, "m4", seed=21, key="C major")[0]
    b = _generate(ws, "m5", seed=22, key="C major")[0]
    steps = _items(ws, {"type": "interpolate", "id": "m6", "from": a["item"], "to": b["item"], "steps": 8})
    assert len(steps) == 8
    assert steps[0]["notes"] == a["notes"] and steps[-1]["notes"] == b["notes"]
    to_a = [_jaccard(s["notes"], a["notes"]) for s in steps]
    to_b = [_jaccard(s["notes"], b["notes"]) for s in steps]
    assert np.mean(to_a[:3]) > np.mean(to_a[-3:]) and np.mean(to_b[-3:]) > np.mean(to_b[:3])


def test_variations_stay_close_to_their_item(ws):
    # Over 16 items, since one sparse item can be as far from its variations as from a stranger;
    # measured on the shipped model (90 items): note overlap 0.27 with variations, 0.03 with strangers.
    near, far = [], []
    for base in range(5, 165, 10):  # 16 items
        a = _generate(ws, f"v{base}", seed=base, key="G major")[0]
        msg = {"type": "variations", "id": f"n{base}", "item": a["item"], "strength": 0.3, "count": 3, "seed": base}
        near += [_jaccard(v["notes"], a["notes"]) for v in _items(ws, msg)]
        far += [
            _jaccard(f["notes"], a["notes"]) for f in _generate(ws, f"f{base}", seed=base + 1, key="G major", count=3)
        ]
    assert np.mean(near) > 2 * np.mean(far), (np.mean(near), np.mean(far))


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"bars": 0}, "params.bars"),
        ({"bars": 17}, "params.bars"),
        ({"tempo": 500}, "params.tempo"),
        ({"key": "H major"}, "params.key"),
        ({"tracks": ["piano"]}, "params.tracks"),
        ({"tracks": ["bass", "bass"]}, "params.tracks"),
        ({"program": [0, 0, 0, 200]}, "params.program"),
        ({"program": [0, 0]}, "params.program"),
        ({"density": 2}, "params.density"),
        ({"density": 0}, "params.density"),  # would be an empty file
    ],
)
def test_bad_music_params_are_refused_clearly(ws, params, path):
    reply = ws.request({"type": "generate", "id": "bad", "generator": "music", "params": params})
    assert reply["type"] == "error" and reply["code"] == "invalid_params"
    assert any(d["path"].startswith(path) for d in reply["details"]), reply


@pytest.mark.real_host
def test_wav_preview_rendered_by_fluidsynth(ws):
    require_tool("fluidsynth", "fluidsynth fluid-soundfont-gm")
    item = _generate(ws, "w1", bars=2, tempo=120, seed=1, format="wav")[0]
    assert item["format"] == "wav" and item["mime"] == "audio/wav" and item["notes"]
    with wave.open(io.BytesIO(base64.b64decode(item["data"]))) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getnchannels() == 2 and w.getframerate() == 44100
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    assert 4.0 <= seconds <= 4.0 + 3.0  # 2 bars at 120 bpm, plus FluidSynth's release tail
    peak_dbfs = 20 * np.log10(np.abs(samples).max() / 32768)
    assert -1.5 < peak_dbfs < -0.5, peak_dbfs  # normalised (FluidSynth alone peaked near -19 dBFS)


def test_normalising_a_preview_scales_its_peak_and_leaves_silence_alone():
    from ganbridge.generators.music.audio import normalized

    def wav_of(samples: np.ndarray) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(44100)
            w.writeframes(samples.astype("<i2").tobytes())
        return out.getvalue()

    def samples_of(data: bytes) -> np.ndarray:
        with wave.open(io.BytesIO(data)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), "<i2")

    quiet = (np.sin(np.linspace(0, 200, 8000)) * 3000).astype(np.int16)
    loud = samples_of(normalized(wav_of(quiet)))
    assert abs(int(np.abs(loud).max()) - round(32767 * 10 ** (-1 / 20))) <= 1
    assert np.allclose(loud / np.abs(loud).max(), quiet / np.abs(quiet).max(), atol=1e-3)  # same shape
    silence = wav_of(np.zeros(800, np.int16))
    assert normalized(silence) == silence


def test_wav_without_a_soundfont_is_a_clear_error(tmp_path):
    from tests.conftest import BridgeThread

    b = BridgeThread(make_settings(tmp_path, soundfont=tmp_path / "missing.sf2", midi_out="none"))
    try:
        c = b.client()
        reply = c.request({"type": "generate", "id": "w", "generator": "music", "params": {"format": "wav"}})
        assert reply["code"] == "unavailable" and "missing.sf2" in reply["message"]
        assert _generate(c, "ok", bars=1)[0]["format"] == "mid"  # nothing else disturbed
        c.close()
    finally:
        b.stop()
