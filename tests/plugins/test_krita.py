"""The Krita plugin in real Krita (Debian's krita 5.1), against a live bridge.

Two runs share one profile (the first start of a fresh profile is the slow part): `kritarunner`
driving the plugin's own modules offscreen, and the real GUI under Xvfb, where a test-only plugin
clicks through the docker. Each writes a .kra that Krita opens again (`inspect`) so the tests can
check layers, pixels and the stored recipes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbridge.plugin_build import build_krita
from tests.conftest import BridgeThread, make_settings
from tests.plugins.krita_support import KritaProfile

pytestmark = pytest.mark.real_host


@pytest.fixture(scope="module")
def krita_bridge(tmp_path_factory):
    b = BridgeThread(make_settings(tmp_path_factory.mktemp("krita-bridge")))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def profile(tmp_path_factory, krita_bridge):
    root = tmp_path_factory.mktemp("krita")
    plugin_zip = build_krita(root / "dist")
    return KritaProfile(root / "profile", plugin_zip, krita_bridge.url)


def inspect(profile: KritaProfile, kra: Path) -> dict:
    out = kra.parent / f"{kra.stem}-inspect"
    out.mkdir()
    return profile.kritarunner("inspect", {"kra": str(kra), "report": str(out / "report.json"), "out": str(out)})


def bgra_of_png(path: Path) -> np.ndarray:
    rgba = np.asarray(Image.open(path).convert("RGBA"))
    return rgba[..., [2, 1, 0, 3]]


def layer_pixels(layer: dict, key: str = "pixels") -> np.ndarray:
    _, _, w, h = layer["bounds"]
    return np.frombuffer(Path(layer[key]).read_bytes(), dtype=np.uint8).reshape(h, w, 4)


def expected_fill(texture: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    th, tw = texture.shape[:2]
    ys = (np.arange(y0, y0 + h) % th)[:, None]
    xs = (np.arange(x0, x0 + w) % tw)[None, :]
    return texture[ys, xs]


def test_kritarunner_drives_the_plugin_code(profile, krita_bridge, tmp_path):
    job = {
        "url": krita_bridge.url, "width": 256, "height": 192, "params": {"model": "gravel", "width": 64, "height": 48, "seed": 5},
        "selection": [40, 30, 150, 100], "kra": str(tmp_path / "runner.kra"), "report": str(tmp_path / "runner.json"),
    }  # fmt: skip
    ran = profile.kritarunner("drive", job)
    assert ran["krita"].startswith("5.")
    seen = inspect(profile, tmp_path / "runner.kra")
    layers = {entry["id"]: entry for entry in seen["layers"]}
    store = krita_bridge.core.store
    plain, fill = layers[ran["layer"]], layers[ran["fill_layer"]]
    texture = bgra_of_png(store.get(ran["items"][0]).file)
    assert plain["name"] == "GAN texture gravel seed 5" and plain["bounds"] == [0, 0, 64, 48]
    np.testing.assert_array_equal(layer_pixels(plain), texture)  # Krita holds the bridge's PNG, exactly
    assert fill["bounds"] == [40, 30, 150, 100]
    tex2 = bgra_of_png(store.get(ran["items"][1]).file)
    np.testing.assert_array_equal(layer_pixels(fill), expected_fill(tex2, 40, 30, 150, 100))
    recipes = json.loads(seen["annotation"])["layers"]
    assert recipes[ran["layer"]]["item"] == ran["items"][0] and recipes[ran["fill_layer"]]["seed"] == 5


def test_docker_in_the_real_gui(profile, krita_bridge, tmp_path):
    job = {
        "report": str(tmp_path / "gui.json"), "kra": str(tmp_path / "gui.kra"), "width": 320, "height": 240,
        "model": "brick", "size": 64, "seed": 11, "selection": [100, 60, 130, 90], "step_timeout": 40,
    }  # fmt: skip
    ran = profile.gui(job, krita_bridge.url)
    assert {"texture", "image"} <= set(ran["generators"])  # every bridge generator, no plugin change
    # Faults first: a clear message in the docker, nothing changed.
    assert "no document is open" in ran["no_document"]
    assert "U16" in ran["sixteen_bit"] and "Convert Image Color Space" in ran["sixteen_bit"]
    assert ran["sixteen_bit_unchanged"]
    assert "not connected to the bridge" in ran["no_bridge"] and "refused" in ran["no_bridge"]
    assert ran["click_ms"] < 50  # the click queues a request; the canvas never waits on the bridge
    seen = inspect(profile, tmp_path / "gui.kra")
    by_name = {entry["name"]: entry for entry in seen["layers"]}
    recipes = json.loads(seen["annotation"])["layers"]
    store = krita_bridge.core.store
    generated = by_name["GAN texture brick seed 11"]
    item = recipes[generated["id"]]["item"]
    np.testing.assert_array_equal(layer_pixels(generated), bgra_of_png(store.get(item).file))
    fill = by_name["GAN texture brick seed 11 fill"] if "GAN texture brick seed 11 fill" in by_name else None
    fill = fill or next(e for n, e in by_name.items() if n.endswith(" fill"))
    assert fill["bounds"] == [100, 60, 130, 90]
    fill_item = recipes[fill["id"]]["item"]
    np.testing.assert_array_equal(
        layer_pixels(fill), expected_fill(bgra_of_png(store.get(fill_item).file), 100, 60, 130, 90)
    )
    assert store.latest_rating(fill_item) == 1  # "Like" on the active (fill) layer reached the store
    # The document's session is saved in the .kra: every request and rating used it, so its likes
    # keep steering it when Krita opens the file again.
    session = seen["session"]
    assert session and store.ratings(fill_item) == {session: 1}
    assert all(r["session"] == session for r in recipes.values())
    assert all(store.get(r["item"]).session == session for r in recipes.values())
    # Nine generated layers, each with the bridge's full recipe saved in the .kra.
    assert len(recipes) == 9 and all(r["checkpoint"]["sha256"] for r in recipes.values())
    origins = sorted(r["origin"] for r in recipes.values())
    assert origins == ["generate"] * 2 + ["interpolate"] * 3 + ["steer"] * 2 + ["variations"] * 2
    blends = [r for r in recipes.values() if r["origin"] == "interpolate"]
    assert all(len(r["parents"]) == 2 for r in blends)
    assert ran["layers_after_cancel"] == 0  # cancelled at once: nothing reached the document
    assert ran["undo_removed_layers"] == 1  # the last result was one undo step
