"""Training data with its consent recorded: each file's hash in the model card, and files whose C2PA
credentials forbid AI training refused by name (signed by the bridge's own signer, read by the
real c2pa library)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from ganbridge.core.credentials import ContentCredentials, Identity
from ganbridge.core.provenance import make_recipe
from ganbridge.generators.dataset import TrainingRefused, file_manifest, refuse_forbidden, training_use
from ganbridge.generators.image.data import MIN_IMAGES, load_folder

RECIPE = make_recipe("image", {"name": "glyphs", "sha256": "ab" * 32}, {"size": 64}, 1)


def _png(colour: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (16, 16), (colour, 0, 0, 255)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def signers(tmp_path_factory) -> dict[bool, ContentCredentials]:
    identity = Identity.local(tmp_path_factory.mktemp("identity"))
    return {allowed: ContentCredentials(identity, allow_ai_training=allowed) for allowed in (False, True)}


def test_the_manifest_lists_each_file_with_its_hash(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(_png(i))
    paths = sorted(tmp_path.glob("*.png"))
    manifest = file_manifest(paths, tmp_path)
    assert [f["name"] for f in manifest["files"]] == ["0.png", "1.png", "2.png"]
    assert all(
        f["sha256"] == hashlib.sha256((tmp_path / f["name"]).read_bytes()).hexdigest() for f in manifest["files"]
    )
    (tmp_path / "1.png").write_bytes(_png(9))
    assert file_manifest(paths, tmp_path)["sha256"] != manifest["sha256"]


def test_files_whose_credentials_forbid_training_are_refused_by_name(tmp_path, signers):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(MIN_IMAGES):
        (folder / f"plain{i:02}.png").write_bytes(_png(i))
    open_data, _ = signers[True].sign(_png(200), "png", RECIPE)
    (folder / "shared.png").write_bytes(open_data)
    assert training_use(folder / "shared.png") == "allowed" and training_use(folder / "plain00.png") is None
    data = load_folder(folder)
    assert len(data.report["manifest"]["files"]) == MIN_IMAGES + 1

    closed, _ = signers[False].sign(_png(201), "png", RECIPE)
    (folder / "made-by-ganbridge.png").write_bytes(closed)
    with pytest.raises(TrainingRefused, match="do not allow AI training: made-by-ganbridge.png"):
        load_folder(folder)


def test_a_midi_file_is_refused_by_its_sidecar(tmp_path, signers):
    import mido

    mid = mido.MidiFile(type=1)
    mid.tracks.append(
        mido.MidiTrack([mido.Message("note_on", note=60, time=0), mido.Message("note_off", note=60, time=96)])
    )
    out = io.BytesIO()
    mid.save(file=out)
    path = tmp_path / "song.mid"
    path.write_bytes(out.getvalue())
    refuse_forbidden([path])  # no credentials: nothing to refuse
    _, sidecar = signers[False].sign(path.read_bytes(), "mid", RECIPE)
    Path(str(path) + ".c2pa").write_bytes(sidecar)
    with pytest.raises(TrainingRefused, match="song.mid"):
        refuse_forbidden([path])
