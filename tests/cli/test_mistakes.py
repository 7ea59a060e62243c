"""Every mistake a new user makes gets one line that names the fix, and a non-zero exit; never a
traceback. Each runs the real command in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

import ganbridge
from ganbridge.core.provenance import without_credentials
from tests.cli.support import ROOT, one_line, without_modules
from tests.cli.support import ganbridge as run


def test_version(tmp_path):
    r = run(tmp_path, "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ganbridge {ganbridge.__version__}"


def test_building_the_parser_imports_neither_torch_nor_a_generator():
    code = "import sys; from ganbridge.cli.main import build_parser; build_parser(); print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('ganbridge.generators')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# --- generate: the flags map onto each generator's own params --------------------------------


def test_size_flags_map_onto_each_generators_params(tmp_path):
    r = run(tmp_path, "generate", "image", "--size", "128", "--seed", "1", "-o", "image.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "image.png").size == (128, 128)
    r = run(tmp_path, "generate", "texture", "--width", "64", "--height", "32", "--seed", "1", "-o", "t.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "t.png").size == (64, 32)
    r = run(tmp_path, "generate", "texture", "--size", "48", "--height", "32", "--seed", "1", "-o", "t2.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "t2.png").size == (48, 32)
    one_line(run(tmp_path, "generate", "image", "--width", "128", "--height", "64"), 2, "square", "--size")
    line = one_line(run(tmp_path, "generate", "music", "--size", "64"), 2, "music has no size")
    assert "bars" in line and "tempo" in line  # the params it does have
    assert not (tmp_path / "outputs").exists() and len(list(tmp_path.glob("*.mid"))) == 0


def test_output_folders_are_made(tmp_path):
    r = run(tmp_path, "generate", "texture", "--size", "32", "--seed", "5", "-o", "new/deeper/x.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "new" / "deeper" / "x.png").size == (32, 32)
    r = run(tmp_path, "generate", "texture", "--size", "32", "--seed", "5", "-o", "folder/")
    assert r.returncode == 0, r.stderr
    made = [(tmp_path / "folder" / "texture-5.png"), (tmp_path / "new" / "deeper" / "x.png")]
    assert without_credentials(made[0].read_bytes()) == without_credentials(made[1].read_bytes())
    (tmp_path / "a-file").write_text("")
    one_line(run(tmp_path, "generate", "texture", "--size", "32", "-o", "a-file/x.png"), 1, "a-file")


@pytest.mark.parametrize(
    "args, code, needles",
    [
        (["--param", "bars"], 2, ["'bars' is not KEY=VALUE", "ganbridge generate --help"]),
        (["--param", "colour=red"], 2, ["texture has no parameter 'colour'", "width", "temperature"]),
        (["--model", "velvet"], 2, ["no texture model 'velvet'", "brick"]),
        (["--size", "20"], 2, ["width", "greater than or equal to 32", "height"]),
        (["--device", "gpu"], 2, ["'gpu' is not a device", "cuda:N"]),
        (["--device", "cuda:99"], 2, ["cuda:99"]),
        (["--param", "width=wide"], 2, ["width", "integer"]),
    ],
)
def test_generate_mistakes(tmp_path, args, code, needles):
    one_line(run(tmp_path, "generate", "texture", *args), code, *needles)
    assert not list(tmp_path.glob("*.png"))


def test_a_flag_the_generator_has_no_param_for(tmp_path):
    line = one_line(run(tmp_path, "generate", "image", "--temperature", "0.5"), 2, "image has no parameter")
    assert "truncation" in line


def test_unknown_generator(tmp_path):
    one_line(run(tmp_path, "generate", "melody"), 2, "no generator 'melody'", "texture")


def test_wav_without_fluidsynth_is_one_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    r = run(tmp_path, "generate", "music", "--param", "format=wav", "-o", "song.wav", PATH=str(empty))
    one_line(r, 1, "FluidSynth")
    assert not (tmp_path / "song.wav").exists()


# --- the [train] extra missing --------------------------------------------------------------


@pytest.mark.parametrize(
    "args, package",
    [
        (["data", "glyphs", "--out", "glyphs"], "fonttools"),
        (["train", "music", "--corpus", "bach", "--out", "out", "--steps", "1"], "music21"),
        (["train", "texture", "--image", "skimage:brick", "--out", "out", "--steps", "1"], "scikit-image"),
        (["eval", "music", "--model", "bach"], "music21"),
        (["eval", "texture", "--model", "brick"], "scikit-image"),
    ],
)
def test_a_missing_train_extra_names_the_install(tmp_path, args, package):
    env = without_modules(tmp_path, "skimage", "music21", "fontTools")
    one_line(run(tmp_path, *args, **env), 1, package, "pip install 'ganbridge[train]'")
    assert not (tmp_path / "out").exists() and not (tmp_path / "glyphs").exists()


# --- settings, models and the rest ------------------------------------------------------------


def test_bad_config_file_and_setting(tmp_path):
    one_line(run(tmp_path, "--config", "nowhere.toml", "models"), 2, "nowhere.toml")
    (tmp_path / "bad.toml").write_text("ws_port = [\n")
    one_line(run(tmp_path, "--config", "bad.toml", "models"), 2, "bad.toml")
    one_line(run(tmp_path, "models", GANBRIDGE_MAX_COUNT="lots"), 2, "max_count")


def test_unknown_models_for_sheet_and_eval(tmp_path):
    one_line(run(tmp_path, "sheet", "--model", "velvet"), 2, "no texture or image model 'velvet'", "brick", "glyphs")
    one_line(run(tmp_path, "sheet", "--model", "brick", "--size", "4096"), 2, "less than or equal to 2048")
    one_line(run(tmp_path, "sheet", "--model", "brick", "--rows", "3"), 2, "alphabet sheet")
    one_line(run(tmp_path, "sheet", "--model", "glyphs", "--rows", "40"), 2, "at most 32")
    one_line(run(tmp_path, "sheet", "--model", "glyphs", "--size", "128"), 2, "--size is for a texture")
    one_line(run(tmp_path, "sheet", "--model", "glyphs", "--param", "category=upper-A"), 2, "set by the sheet")
    one_line(run(tmp_path, "sheet", "--model", "glyphs", "--param", "truncation=7"), 2, "truncation")
    one_line(run(tmp_path, "eval", "music", "--model", "fugue"), 2, "no music model 'fugue'", "bach")
    one_line(run(tmp_path, "eval", "texture", "--model", "velvet"), 2, "no texture model 'velvet'", "brick")
    one_line(run(tmp_path, "eval", "texture", "--model", "brick", "--size", "100"), 2, "multiple of 16 from 32 to 2048")
    one_line(
        run(tmp_path, "eval", "texture", "--model", "brick", "--size", "4096"), 2, "multiple of 16 from 32 to 2048"
    )
    one_line(run(tmp_path, "eval", "image", "--model", "fugue", "--data", "."), 2, "no image model 'fugue'", "glyphs")


def test_unreadable_model_file_for_eval(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04 a pickle")
    one_line(run(tmp_path, "eval", "image", "--model", "junk.safetensors", "--data", "."), 2, "junk")


def test_command_line_mistakes_are_one_line(tmp_path):
    one_line(run(tmp_path), 2, "COMMAND", "ganbridge --help")
    one_line(run(tmp_path, "protocol"), 2, "--schema")
    one_line(
        run(tmp_path, "train", "image", "--data", ".", "--out", "o", "--steps", "0"), 2, "0 is not a whole number >= 1"
    )
