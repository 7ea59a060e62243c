"""Your models next to the shipped ones: `ganbridge models` shows both and which serves, and
`train` says where to install, in the real models folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from ganbridge.core.registry import SHIPPED_WEIGHTS
from tests.cli.support import ganbridge


def install_as(tmp_path, kind: str, shipped: str, name: str, weights: bytes | None = None) -> None:
    folder = tmp_path / "models" / kind
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED_WEIGHTS / kind / f"{shipped}.json", folder / f"{name}.json")
    target = folder / f"{name}.safetensors"
    if weights is None:
        shutil.copy(SHIPPED_WEIGHTS / kind / f"{shipped}.safetensors", target)
    else:
        target.write_bytes(weights)


def entries(stdout: str, name: str) -> list[tuple[str, str]]:
    """(status line, source line) of every file listed under `name`."""
    lines = stdout.splitlines()
    return [(line, lines[i + 1]) for i, line in enumerate(lines) if line.startswith(f"  {name} ")]


def test_models_shows_a_user_model_and_the_shipped_one_it_hides(tmp_path):
    install_as(tmp_path, "texture", "grass", "brick")  # loads: it serves as brick
    install_as(tmp_path, "texture", "gravel", "tissue", weights=b"\x80\x04 not weights")  # does not load
    r = ganbridge(tmp_path, "models")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("texture (texture)")
    mine, shipped = entries(r.stdout, "brick")
    assert (
        " serves " in mine[0]
        and mine[1].strip() == f"user folder: {tmp_path / 'models' / 'texture' / 'brick.safetensors'}"
    )
    assert "hidden by your model" in shipped[0] and shipped[1].strip().startswith("shipped: ")
    grass_steps = json.loads((SHIPPED_WEIGHTS / "texture" / "grass.json").read_text())["training"]["steps"]
    assert grass_steps != json.loads((SHIPPED_WEIGHTS / "texture" / "brick.json").read_text())["training"]["steps"]
    assert f"steps {grass_steps}" in mine[0]  # the card of the file that serves: grass's, not brick's
    broken, fallback = entries(r.stdout, "tissue")
    assert "does not load" in broken[0] and broken[1].strip().startswith("user folder: ")
    assert " serves " in fallback[0] and fallback[1].strip().startswith("shipped: ")
    assert "skipping texture model" in r.stderr and "tissue.safetensors" in r.stderr
    assert f"your models folder: {tmp_path / 'models'}" in r.stdout


def test_train_prints_the_real_models_folder(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    # a relative models folder (from the environment) is printed as the absolute one it means
    r = ganbridge(
        tmp_path, "train", "texture", "--image", "noise.png", "--out", "run", "--steps", "1", "--batch", "2",
        "--crop", "32", "--sample-every", "1", "--device", "cpu", "--directions-samples", "100",
        GANBRIDGE_MODELS_DIR="my models",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    folder = (tmp_path / "my models" / "texture").resolve()
    assert f"install it with: mkdir -p '{folder}' && cp " in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith(f"'{folder}'/")
    # training ends by finding the new model's directions, and the install copies them too
    assert "finding the directions of noise" in r.stdout and "noise: 8 directions" in r.stdout
    assert (tmp_path / "run" / "noise.directions.safetensors").is_file()
    assert "run/noise.directions.safetensors" in r.stdout.splitlines()[-1]
    assert "<models dir>" not in r.stdout
