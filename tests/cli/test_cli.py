"""The command line: one-shot generation without a server, models, protocol schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ganbridge.core.provenance import without_credentials

ROOT = Path(__file__).resolve().parents[2]


# The commands' data folder (its signing identity among them), kept out of the user's own.
DATA_DIR = tempfile.mkdtemp(prefix="ganbridge-cli-data-")


def ganbridge(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    environment = {"GANBRIDGE_DATA_DIR": DATA_DIR, **os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "ganbridge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def test_generate_one_shot_is_reproducible(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for target in (a, b):
        r = ganbridge("generate", "texture", "--size", "256", "--seed", "7", "--maps", "normal", "-o", str(target))
        assert r.returncode == 0, r.stderr
        assert "seed 7" in r.stdout
    assert without_credentials(a.read_bytes()) == without_credentials(b.read_bytes())  # signatures aside
    assert Image.open(a).size == (256, 256) and (tmp_path / "a_normal.png").is_file()


def test_generate_reports_bad_params(tmp_path):
    r = ganbridge("generate", "texture", "--size", "3000", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "width" in r.stderr and "less than or equal to 2048" in r.stderr
    r = ganbridge("generate", "texture", "--model", "velvet")
    assert r.returncode == 2 and "model" in r.stderr
    r = ganbridge("generate", "melody")
    assert r.returncode == 2 and "no generator 'melody'" in r.stderr


def test_generate_music_file_with_list_params(tmp_path):
    import pretty_midi

    target = tmp_path / "chorale.mid"
    r = ganbridge("generate", "music", "--seed", "3", "--param", "bars=2", "--param", "key=E minor",
                  "--param", "tracks=soprano,bass", "--param", "program=19,19,19,32", "-o", str(target))  # fmt: skip
    assert r.returncode == 0, r.stderr
    pm = pretty_midi.PrettyMIDI(str(target))
    assert [(i.name, i.program) for i in pm.instruments] == [("soprano", 19), ("bass", 32)]
    r = ganbridge("generate", "music", "--param", "bars=99")
    assert r.returncode == 2 and "bars" in r.stderr


def _write_midi(path: Path, voices: list[list[tuple[int, float, float]]]) -> None:
    """A MIDI file by an independent writer (pretty_midi) at 120 bpm: notes (pitch, beat, beats)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for voice in voices:
        inst = pretty_midi.Instrument(program=0)
        inst.notes = [pretty_midi.Note(90, p, s / 2, (s + n) / 2) for p, s, n in voice]
        pm.instruments.append(inst)
    pm.write(str(path))


def _beats(path: Path) -> list[list[tuple[int, float, float]]]:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    beat = 60 / pm.get_tempo_changes()[1][0]
    return [sorted((n.pitch, round(n.start / beat, 3), round((n.end - n.start) / beat, 3)) for n in i.notes)
            for i in pm.instruments]  # fmt: skip


def test_generate_harmonizes_a_midi_melody_and_continues_a_midi_opening(tmp_path):
    melody = [(72, 0, 1), (76, 1, 1), (79, 2, 1), (77, 3, 1), (76, 4, 2), (74, 6, 1), (72, 7, 1)]
    _write_midi(tmp_path / "tune.mid", [[*melody, (60, 0, 1), (64, 4, 2)]])  # two notes under it: not the melody
    r = ganbridge("generate", "music", "--melody", str(tmp_path / "tune.mid"), "--param", "bars=2",
                  "--seed", "5", "-o", str(tmp_path / "harmonized.mid"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    voices = _beats(tmp_path / "harmonized.mid")
    assert len(voices) == 4 and voices[0] == sorted(melody) and all(voices[1:])

    opening = [[(72, 0, 2), (71, 2, 2)], [(67, 0, 2), (67, 2, 2)], [(64, 0, 2), (62, 2, 2)], [(48, 0, 2), (55, 2, 2)]]
    _write_midi(tmp_path / "start.mid", opening)
    r = ganbridge("generate", "music", "--opening", str(tmp_path / "start.mid"), "--param", "bars=1",
                  "--seed", "6", "-o", str(tmp_path / "continued.mid"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    voices = _beats(tmp_path / "continued.mid")
    for given, voice in zip(opening, voices):
        assert [n for n in voice if n[1] < 4] == sorted(given) and any(n[1] >= 4 for n in voice)

    (tmp_path / "broken.mid").write_bytes(b"MThd not really")
    r = ganbridge("generate", "music", "--melody", str(tmp_path / "broken.mid"))
    assert r.returncode == 2 and "broken.mid: unreadable MIDI" in r.stderr
    r = ganbridge("generate", "music", "--melody", str(tmp_path / "missing.mid"))
    assert r.returncode == 2 and "missing.mid: cannot read it" in r.stderr


def test_models_lists_installed_textures():
    r = ganbridge("models")
    assert r.returncode == 0 and r.stdout.startswith("texture (texture)")
    assert "brick" in r.stdout and "sha256" in r.stdout and "CC0" in r.stdout


def test_protocol_schema_is_json():
    r = ganbridge("protocol", "--schema")
    schema = json.loads(r.stdout)
    assert schema["protocol"] == 1 and "Generate" in schema["requests"] and "busy" in schema["error_codes"]


def test_plugin_build_says_what_is_missing(tmp_path):
    r = ganbridge("plugin", "build", "blender", "--out", str(tmp_path), "--blender-ext", str(tmp_path / "nope.py"))
    assert r.returncode == 1 and "nope.py does not exist" in r.stderr
    fake = tmp_path / "blender_ext.py"
    fake.write_text("")
    r = ganbridge("plugin", "build", "blender", "--blender-ext", str(fake), "--wheel", str(tmp_path / "x.whl"))
    assert r.returncode == 1 and "websockets-X-py3-none-any.whl" in r.stderr
    assert not list(tmp_path.glob("*.zip"))


def test_sheet_of_a_texture_and_an_alphabet_sheet_of_glyphs(tmp_path):
    r = ganbridge("sheet", "--model", "brick", "--size", "64", "-o", str(tmp_path / "brick.png"))
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    assert Image.open(tmp_path / "brick.png").width > 64 * 4
    r = ganbridge("sheet", "--model", "glyphs", "--rows", "2", "--seed", "7", "-o", str(tmp_path / "abc.png"))
    assert r.returncode == 0, r.stderr
    sheet = np.asarray(Image.open(tmp_path / "abc.png").convert("L"), dtype=float)
    # 62 categories in two bands of 31 columns of 64 px cells (and gaps), 2 rows each, labelled
    assert sheet.shape[1] >= 70 + 31 * 68 and sheet.shape[0] >= 2 * (22 + 2 * 68)
    first_cell = sheet[22 + 4 : 22 + 68, 70 + 4 : 70 + 68]
    assert first_cell.min() < 60  # black ink on the light board
    again = ganbridge("sheet", "--model", "glyphs", "--rows", "2", "--seed", "7", "-o", str(tmp_path / "abc2.png"))
    assert again.returncode == 0 and (tmp_path / "abc.png").read_bytes() == (tmp_path / "abc2.png").read_bytes()


def spreads(stdout: str) -> list[float]:
    """The stroke-width spreads an alphabet sheet prints: as drawn, and at even weight if it was."""
    line = next(line for line in stdout.splitlines() if line.startswith("stroke width across each row"))
    return [float(word.strip(",")) for word in line.split(":")[1].split() if word[0].isdigit()]


def test_an_alphabet_sheet_gives_each_row_one_stroke_weight_unless_asked_to_draw_them_as_they_come(tmp_path):
    r = ganbridge("sheet", "--model", "glyphs", "--rows", "4", "-o", str(tmp_path / "even.png"))
    assert r.returncode == 0, r.stderr
    drawn, even = spreads(r.stdout)  # seeds 0-3: 0.22 as drawn, 0.05 even, on the shipped model
    assert drawn > 0.15 and even < 0.5 * drawn, r.stdout
    r = ganbridge("sheet", "--model", "glyphs", "--rows", "4", "--weight", "drawn", "-o", str(tmp_path / "drawn.png"))
    assert r.returncode == 0 and spreads(r.stdout) == [drawn], r.stdout
    assert (tmp_path / "even.png").read_bytes() != (tmp_path / "drawn.png").read_bytes()
    bold = ganbridge("sheet", "--model", "glyphs", "--rows", "1", "--weight", "drawn", "--param", "weight=1",
                     "-o", str(tmp_path / "bold.png"))  # fmt: skip
    assert bold.returncode == 0, bold.stderr
    # a weight of your own is for --weight drawn; --weight is for a glyph sheet
    clash = ganbridge("sheet", "--model", "glyphs", "--param", "weight=1", "-o", str(tmp_path / "x.png"))
    assert clash.returncode == 2 and "--weight drawn" in clash.stderr and not (tmp_path / "x.png").exists()
    texture = ganbridge("sheet", "--model", "brick", "--weight", "drawn", "-o", str(tmp_path / "y.png"))
    assert texture.returncode == 2 and "not a texture's" in texture.stderr
    svg = ganbridge("sheet", "--model", "glyphs", "--param", "format=svg", "-o", str(tmp_path / "z.png"))
    assert svg.returncode == 2 and "64 px PNG" in svg.stderr
    # on a background (which fills every cell's alpha) the weights are still found from the ink
    on_white = ganbridge("sheet", "--model", "glyphs", "--rows", "4", "--param", "background=#ffffff",
                         "-o", str(tmp_path / "white.png"))  # fmt: skip
    assert on_white.returncode == 0 and spreads(on_white.stdout) == [drawn, even], on_white.stdout
