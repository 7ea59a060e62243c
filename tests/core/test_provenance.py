"""Recipes inside the files: written by the bridge and the CLI, read back by independent readers
(Pillow's PNG text chunks, mido's meta events, the stdlib's RIFF chunk reader), and remade from the
file alone by `ganbridge generate --recipe` byte for byte."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image

from ganbridge.core.credentials import check
from ganbridge.core.provenance import (
    RecipeError,
    embed,
    make_recipe,
    read_recipe,
    recipe_latent,
    without_credentials,
)
from ganbridge.generators.base import draw_latent, seeded_rng
from tests.cli.test_cli import ganbridge
from tests.conftest import require_tool, small_texture

CHECKPOINT = {"name": "brick", "sha256": "ab" * 32}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 4), (200, 10, 30)).save(out, "PNG")
    return out.getvalue()


def _midi() -> bytes:
    mid = mido.MidiFile(type=1)
    track = mido.MidiTrack(
        [mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=480)]
    )
    mid.tracks.append(track)
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def _wav(frames: int = 101) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.arange(frames, dtype="<i2").tobytes())
    return out.getvalue()


def test_a_png_carries_its_recipe_and_a_summary_other_tools_show():
    recipe = make_recipe("texture", CHECKPOINT, {"width": 8, "height": 4, "model": "brick", "seed": 7}, 7)
    data = embed(_png(), "png", recipe)
    img = Image.open(io.BytesIO(data))
    assert img.tobytes() == Image.open(io.BytesIO(_png())).tobytes()  # the pixels are untouched
    assert json.loads(img.text["ganbridge"]) == recipe and recipe["params"] == {
        "width": 8,
        "height": 4,
        "model": "brick",
    }
    assert img.text["parameters"] == "ganbridge texture\nSeed: 7, Size: 8x4, Model hash: ababababab, Model: brick"
    assert read_recipe(data) == recipe


def test_a_midi_file_and_a_wav_file_carry_it_too():
    recipe = make_recipe("music", CHECKPOINT | {"name": "bach"}, {"bars": 4}, 3)
    midi = embed(_midi(), "mid", recipe)
    texts = [m.text for t in mido.MidiFile(file=io.BytesIO(midi)).tracks for m in t if m.type == "text"]
    assert texts == ["ganbridge:" + json.dumps(recipe, sort_keys=True, separators=(",", ":"))]
    notes = [m for t in mido.MidiFile(file=io.BytesIO(midi)).tracks for m in t if not m.is_meta]
    assert [(m.type, m.note) for m in notes] == [("note_on", 60), ("note_off", 60)]
    assert read_recipe(midi) == recipe

    wav = embed(_wav(), "wav", recipe)
    with wave.open(io.BytesIO(wav)) as w:  # a player still reads the same sound
        assert w.readframes(w.getnframes()) == np.arange(101, dtype="<i2").tobytes()
    assert wav[:4] == b"RIFF" and struct.unpack("<I", wav[4:8])[0] == len(wav) - 8 and wav[8:12] == b"WAVE"
    names, at = [], 12  # the RIFF chunks, walked by their sizes (padded to even)
    while at < len(wav):
        name, (size,) = wav[at : at + 4], struct.unpack("<I", wav[at + 4 : at + 8])
        names.append(name)
        if name == b"gbrc":
            assert json.loads(wav[at + 8 : at + 8 + size]) == recipe
        at += 8 + size + size % 2
    assert names == [b"fmt ", b"data", b"gbrc"]
    assert read_recipe(wav) == recipe


def test_an_item_not_drawn_from_its_seed_carries_its_latent():
    latent = draw_latent({"z": (4, 2, 2), "class": (1,)}, seeded_rng(1))
    recipe = make_recipe("image", CHECKPOINT, {"size": 64}, 12, latent, "variations", ["abc"])
    assert recipe["origin"] == "variations" and recipe["parents"] == ["abc"]
    back = recipe_latent(read_recipe(embed(_png(), "png", recipe)))
    assert back is not None and all(np.array_equal(back[k], latent[k]) for k in latent)
    assert recipe_latent(make_recipe("image", CHECKPOINT, {"size": 64}, 12)) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a PNG, SVG, MIDI or WAV file"),
        (_png(), "carries no ganbridge recipe"),
        (_midi(), "carries no ganbridge recipe"),
        (_wav(), "carries no ganbridge recipe"),
        (_png()[:30], "cut short"),
        (
            embed(_png(), "png", make_recipe("texture", CHECKPOINT, {}, 1)).replace(b'"ganbridge":1', b'"ganbridge":9'),
            "not a ganbridge recipe",
        ),  # fmt: skip
    ],
)
def test_a_file_without_a_readable_recipe_gets_one_clear_error(data, message):
    with pytest.raises(RecipeError, match=message):
        read_recipe(data)


def _item_file(item: dict, folder: Path, name: str) -> Path:
    path = folder / f"{name}.{item['format']}"
    path.write_bytes(base64.b64decode(item["data"]))
    return path


def test_bridge_items_are_remade_from_their_files_alone(ws, tmp_path):
    ws.send(
        {"type": "generate", "id": "p1", "generator": "texture", "params": small_texture(maps=["height"]), "seed": 41}
    )
    item = next(i for m in ws.until_final("p1") if m["type"] == "result" for i in m["items"])
    ws.send({"type": "variations", "id": "p2", "item": item["item"], "strength": 0.3, "count": 1})
    variation = next(i for m in ws.until_final("p2") if m["type"] == "result" for i in m["items"])
    recipe = read_recipe(base64.b64decode(item["data"]))
    assert recipe["generator"] == "texture" and recipe["seed"] == 41 and "latent" not in recipe
    assert read_recipe(base64.b64decode(variation["data"]))["parents"] == [item["item"]]
    height = item["maps"]["height"]
    assert read_recipe(base64.b64decode(height["data"])) == recipe | {"map": "height"}

    for name, part in (("seeded", item), ("variation", variation), ("height", height | {"format": "png"})):
        source = _item_file(part, tmp_path, name)
        r = ganbridge("generate", "--recipe", str(source), "-o", str(tmp_path / f"{name}-again.png"))
        assert r.returncode == 0, r.stderr
        assert "byte-identical" in r.stdout, r.stdout
        again = (tmp_path / f"{name}-again.png").read_bytes()
        assert without_credentials(again) == without_credentials(source.read_bytes())
        assert check(again, "png").unchanged  # the remake is signed too


def test_remaking_with_another_checkpoint_is_refused_unless_asked(tmp_path):
    source = tmp_path / "t.png"
    assert ganbridge("generate", "texture", "--size", "64", "--seed", "3", "-o", str(source)).returncode == 0
    recipe = read_recipe(source.read_bytes())
    other = tmp_path / "other.png"
    img = Image.open(source)
    plain = io.BytesIO()
    img.save(plain, "PNG")  # Pillow drops the text chunks it is not told to keep
    other.write_bytes(embed(plain.getvalue(), "png", recipe | {"checkpoint": {"name": "brick", "sha256": "0" * 64}}))
    r = ganbridge("generate", "--recipe", str(other), "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "000000000000" in r.stderr and "--any-checkpoint" in r.stderr, r.stderr
    r = ganbridge("generate", "--recipe", str(other), "--any-checkpoint", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 0 and "remaking it anyway" in r.stdout, r.stdout + r.stderr
    r = ganbridge("generate", "--recipe", str(source), "--seed", "4")
    assert r.returncode == 2 and "drop --seed" in r.stderr


def test_a_wav_preview_is_remade_from_its_recipe(tmp_path):
    require_tool("fluidsynth", "fluidsynth fluid-soundfont-gm")
    source = tmp_path / "m.wav"
    r = ganbridge("generate", "music", "--seed", "2", "--param", "bars=1", "--param", "format=wav", "-o", str(source))
    assert r.returncode == 0, r.stderr
    assert read_recipe(source.read_bytes())["params"]["format"] == "wav"
    r = ganbridge("generate", "--recipe", str(source), "-o", str(tmp_path / "again.wav"))
    assert r.returncode == 0 and "byte-identical" in r.stdout, r.stdout + r.stderr


def test_verify_remakes_each_file_and_names_what_was_changed(tmp_path):
    good, song = tmp_path / "t.png", tmp_path / "m.mid"
    assert ganbridge("generate", "texture", "--size", "64", "--seed", "8", "-o", str(good)).returncode == 0
    assert ganbridge("generate", "music", "--seed", "8", "--param", "bars=1", "-o", str(song)).returncode == 0
    r = ganbridge("verify", str(good), str(song))
    assert r.returncode == 0 and r.stdout.count(": verified: remade byte-identically") == 2, r.stdout + r.stderr

    recipe = read_recipe(good.read_bytes())
    img = Image.open(good)
    img.load()
    img.putpixel((5, 5), (0, 0, 0))
    plain = io.BytesIO()
    img.save(plain, "PNG")
    painted = tmp_path / "painted.png"
    painted.write_bytes(embed(plain.getvalue(), "png", recipe))
    damaged = tmp_path / "damaged.png"
    data = bytearray(good.read_bytes())
    data[data.rfind(b"IDAT") + 40] ^= 0x40  # inside the compressed pixels
    damaged.write_bytes(bytes(data))
    forged = tmp_path / "forged.png"  # pixels and recipe left alone, the signed manifest changed
    data = bytearray(good.read_bytes())
    data[data.find(b"caBX") + 200] ^= 0x01
    forged.write_bytes(bytes(data))
    padded = tmp_path / "padded.png"  # a byte of the padding the manifest reserves: no signature covers it
    data = bytearray(good.read_bytes())
    start = data.find(b"caBX") + 4
    data[data.index(b"\x00" * 64, start) + 32] ^= 0x01
    padded.write_bytes(bytes(data))
    relabelled = tmp_path / "relabelled.png"
    relabelled.write_bytes(embed(plain.getvalue(), "png", recipe | {"seed": 9}))
    mid = mido.MidiFile(song)
    note = next(m for t in mid.tracks for m in t if m.type == "note_on")
    note.note += 1
    moved = tmp_path / "moved.mid"
    mid.save(moved)
    misfit = tmp_path / "misfit.png"  # a latent of other shapes: one clear line, not a traceback
    latent = {"local": np.zeros((2, 3), np.float32)}
    misfit.write_bytes(
        embed(
            plain.getvalue(), "png", make_recipe("texture", recipe["checkpoint"], recipe["params"], 1, latent, "steer")
        )
    )
    r = ganbridge(
        "verify",
        str(painted),
        str(damaged),
        str(forged),
        str(padded),
        str(relabelled),
        str(moved),
        str(misfit),
        __file__,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    lines = dict(line.split(": not verified: ", 1) for line in r.stdout.splitlines())
    assert "pixel bytes differ" in lines[str(painted)]
    assert "cannot be decoded" in lines[str(damaged)] or "pixel bytes differ" in lines[str(damaged)]
    assert "credentials do not match" in lines[str(damaged)] and "credentials do not match" in lines[str(forged)]
    assert "caBX chunk was changed" in lines[str(padded)]
    assert "seed 9" in lines[str(relabelled)] and "pixel bytes differ" in lines[str(relabelled)]
    assert "bytes differ" in lines[str(moved)]
    assert "not a PNG, SVG, MIDI or WAV file" in lines[__file__]
    assert "latent does not fit texture" in lines[str(misfit)] and "Traceback" not in r.stderr


def _manifest(data: bytes, mime: str, sidecar: bytes | None = None) -> tuple[str, dict]:
    """The C2PA library's own reading: (validation state, active manifest)."""
    import c2pa

    reader = (
        c2pa.Reader(mime, io.BytesIO(data), manifest_data=sidecar) if sidecar else c2pa.Reader(mime, io.BytesIO(data))
    )
    try:
        return reader.get_validation_state(), reader.get_active_manifest()
    finally:
        reader.close()


def test_bridge_files_carry_signed_content_credentials(ws):
    ws.send({"type": "generate", "id": "c1", "generator": "texture", "params": small_texture(), "seed": 4})
    item = next(i for m in ws.until_final("c1") if m["type"] == "result" for i in m["items"])
    data = base64.b64decode(item["data"])
    assert Path(item["file"]).read_bytes() == data
    state, manifest = _manifest(data, "image/png")
    assert state == "Valid"
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    created = assertions["c2pa.actions.v2"]["actions"][0]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert {use["use"] for use in assertions["cawg.training-mining"]["entries"].values()} == {"notAllowed"}
    assert assertions["org.ganbridge.recipe"] == read_recipe(data)

    pixels = bytearray(data)
    pixels[pixels.rfind(b"IDAT") + 40] ^= 0x01  # one bit of the compressed image
    tampered = check(bytes(pixels), "png")
    assert tampered.state == "Invalid" and "assertion.dataHash.mismatch" in tampered.failures


def test_a_midi_file_gets_its_credentials_beside_it(ws):
    ws.send({"type": "generate", "id": "c2", "generator": "music", "params": {"bars": 1}, "seed": 4})
    item = next(i for m in ws.until_final("c2") if m["type"] == "result" for i in m["items"])
    data = base64.b64decode(item["data"])
    sidecar = Path(item["file"] + ".c2pa").read_bytes()
    state, manifest = _manifest(data, "audio/midi", sidecar)
    assert state == "Valid" and manifest["title"] == "ganbridge music"
    assert not check(data[:-1] + bytes([data[-1] ^ 1]), "mid", sidecar).unchanged


def test_the_local_identity_is_private_and_credentials_can_be_turned_off(tmp_path):
    data_dir = tmp_path / "data"
    made = tmp_path / "t.png"
    r = ganbridge(
        "generate", "texture", "--size", "64", "--seed", "1", "-o", str(made), GANBRIDGE_DATA_DIR=str(data_dir)
    )
    assert r.returncode == 0, r.stderr
    assert (data_dir / "identity" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "identity").stat().st_mode & 0o777 == 0o700
    assert check(made.read_bytes(), "png").unchanged

    plain = tmp_path / "plain.png"
    r = ganbridge("generate", "texture", "--size", "64", "--seed", "1", "-o", str(plain), GANBRIDGE_CREDENTIALS="false")
    assert r.returncode == 0, r.stderr
    assert check(plain.read_bytes(), "png").state is None and plain.read_bytes() == without_credentials(
        made.read_bytes()
    )
    r = ganbridge("verify", str(plain))
    assert r.returncode == 0 and "no content credentials" in r.stdout, r.stdout
    r = ganbridge("generate", "texture", "--size", "64", "-o", str(plain), GANBRIDGE_CREDENTIALS_CERT=str(made))
    assert r.returncode == 2 and "go together" in r.stderr, r.stderr


@pytest.mark.parametrize(("fmt", "make"), [("png", _png), ("mid", _midi), ("wav", _wav)])
def test_a_file_written_again_keeps_one_recipe_and_two_different_ones_are_refused(fmt, make):
    first = make_recipe("texture", CHECKPOINT, {"size": 8}, 1)
    second = make_recipe("texture", CHECKPOINT, {"size": 8}, 2)
    again = embed(embed(make(), fmt, first), fmt, second)  # the second replaces the first
    assert read_recipe(again) == second
    assert embed(again, fmt, second) == again
    if fmt == "png":
        assert Image.open(io.BytesIO(again)).tobytes() == Image.open(io.BytesIO(make())).tobytes()
        chunks = [c for c in _png_chunk_list(again) if c[0] in (b"iTXt", b"tEXt")]
        assert [kind for kind, _ in chunks] == [b"iTXt", b"tEXt"]
        # a second, different recipe chunk spliced in by hand: which one is true cannot be told
        end = again.rfind(b"IEND") - 4
        itxt = b"ganbridge\x00\x00\x00\x00\x00" + json.dumps(first).encode()
        spliced = again[:end] + struct.pack(">I", len(itxt)) + b"iTXt" + itxt + b"\x00" * 4 + again[end:]
        with pytest.raises(RecipeError, match="2 different ganbridge recipes"):
            read_recipe(spliced)


def _png_chunk_list(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + size]))
        at += 12 + size
    return chunks


def test_the_credentials_name_the_checkpoint_and_the_parents_as_ingredients(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ganbridge.core.credentials import ContentCredentials, Identity

    credentials = ContentCredentials(Identity.local(tmp_path / "identity"))
    checkpoint = CHECKPOINT | {"data_sha256": "cd" * 32}
    latent = draw_latent({"z": (4,)}, seeded_rng(1))
    recipes = [
        make_recipe("texture", checkpoint, {"size": 8}, 1),
        make_recipe("texture", checkpoint, {"size": 8}, None, latent, "interpolate", ["item-a", "item-b"]),
    ]
    with ThreadPoolExecutor(4) as pool:  # each worker thread signs with its own signer, kept between files
        signed = list(pool.map(lambda r: credentials.sign(embed(_png(), "png", r), "png", r)[0], recipes * 4))
    for data, recipe in zip(signed, recipes * 4):
        state, manifest = _manifest(data, "image/png")
        assert state == "Valid"
        model, *parents = manifest["ingredients"]
        assert model["relationship"] == "inputTo" and model["instance_id"] == "ganbridge:checkpoint:" + "ab" * 32
        assert model["metadata"]["org.ganbridge.checkpoint"] == checkpoint
        assert model["data_types"] == [{"type": "c2pa.types.model.pytorch"}]
        assert [p["instance_id"] for p in parents] == [f"ganbridge:item:{p}" for p in recipe.get("parents", [])]
        assert all(p["relationship"] == "inputTo" and p["format"] == "image/png" for p in parents)
