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
from tests.conftest import missing_host

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
    named = file_manifest(paths, tmp_path, "my scans", "CC-BY 4.0", {"2.png": ("a friend", "CC0 1.0")})
    assert [(f["source"], f["license"]) for f in named["files"]] == [("my scans", "CC-BY 4.0")] * 2 + [
        ("a friend", "CC0 1.0")
    ]
    assert named["sha256"] != file_manifest(paths, tmp_path)["sha256"]  # the licences are part of what is hashed


def test_a_glyph_folder_records_each_image_under_its_font_and_licence(tmp_path):
    import json

    for char in "abcdef":  # 18 images: enough for a training folder
        (tmp_path / f"lower-{char}").mkdir()
        for i, font in enumerate(("dejavu-sans", "lato-bold-italic", "unlisted")):
            (tmp_path / f"lower-{char}" / f"{font}.png").write_bytes(_png(10 * i + ord(char)))
    fonts = [
        {"name": "DejaVu Sans", "licence": "Bitstream Vera (DejaVu)"},
        {"name": "Lato Bold Italic", "licence": "SIL OFL 1.1"},
    ]
    (tmp_path / "fonts.json").write_text(json.dumps(fonts))
    data = load_folder(tmp_path, source="glyphs", license="mixed")
    entries = {f["name"]: (f["source"], f["license"]) for f in data.report["manifest"]["files"]}
    assert entries["lower-a/dejavu-sans.png"] == ("font DejaVu Sans", "Bitstream Vera (DejaVu)")
    assert entries["lower-b/lato-bold-italic.png"] == ("font Lato Bold Italic", "SIL OFL 1.1")
    assert entries["lower-a/unlisted.png"] == ("glyphs", "mixed") and len(entries) == 18


def require_exemplar_package(source: str) -> None:
    """The Debian package a texture card's exemplar comes from (see missing_host)."""
    from ganbridge.generators.texture.data import GIMP_PATTERNS, OPENARENA_TEXTURES

    if source.startswith("gimp:") and not GIMP_PATTERNS.is_dir():
        missing_host("GIMP's patterns", "apt-get install gimp-data")
    if source.startswith("openarena:") and not OPENARENA_TEXTURES.is_file():
        missing_host("OpenArena's textures", "apt-get install openarena-081-textures")


def test_the_shipped_cards_name_their_training_files(tmp_path):
    """Every shipped model card lists its training files with hashes that the installed data sets
    still match (the scikit-image exemplars, the music21 chorales), and the list's own hash, which
    every item's recipe names."""
    import json

    import music21

    from ganbridge.generators.checkpoint import file_sha256
    from ganbridge.generators.music.data import corpus_root
    from ganbridge.generators.texture.data import resolve_exemplar

    weights = Path(__file__).parents[2] / "generators" / "weights"
    for path in sorted(weights.glob("*/*.json")):
        data = json.loads(path.read_text())["data"]
        manifest = data["manifest"]
        files = manifest["files"]
        listed = json.dumps(files, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(listed.encode()).hexdigest() == manifest["sha256"], path.name
        assert files and all(f["source"] and f["license"] for f in files), path.name
        if path.parent.name == "texture":
            require_exemplar_package(data["source"])
            (exemplar,), _ = resolve_exemplar(data["source"])
            assert [(f["name"], f["sha256"]) for f in files] == [(exemplar.name, file_sha256(exemplar))]
        elif path.parent.name == "music" and music21.__version__ in data["source"]:
            assert all(file_sha256(corpus_root() / f["name"]) == f["sha256"] for f in files), path.name


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
