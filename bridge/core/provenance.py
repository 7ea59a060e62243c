"""Recipes inside the files: every PNG, SVG, MIDI and WAV the bridge or the CLI writes carries the
recipe that remakes it, so a file is its own record wherever it goes (sans-I/O: bytes in, bytes
out).

A recipe is JSON: `ganbridge` (the recipe format, 1), `generator`, `checkpoint` {name, sha256},
`params`, `seed` and `origin`. A generated item's seed draws its latent; an item made by
variations, interpolation or steering is not drawn from its seed alone (a variation's seed is
that of its perturbation), so it carries its latent itself (`latent`: the safetensors bytes of its
float32 parts, base64) and its `parents` (item ids in the bridge's store). A map of a texture (height, normal) says
which (`map`). Nothing in it names a time, a session or the file's own id: the same recipe makes
the same bytes, embedded recipe included.

Where it goes:
- PNG: an iTXt chunk `ganbridge` with the recipe, and a tEXt chunk `parameters` in the style
  Stable Diffusion web UIs write and image viewers show (`Seed: 7, Size: 512x512, Model: brick, ...`),
  both before IEND.
- MIDI: a text meta event `ganbridge:` + the recipe at the start of the first track.
- WAV: a RIFF chunk `gbrc` with the recipe after the others (players skip chunks they do not know).
- SVG: a `<metadata id="ganbridge-recipe">` element with the recipe (XML-escaped) first inside
  the root element. C2PA puts its manifest into that element too (`<c2pa:manifest>`, with its
  namespace on the root), which `without_credentials` takes out again.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
import zlib
from typing import Any

import mido
import numpy as np
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from ganbridge.generators.base import LATENT_DRAW, Latent

RECIPE_VERSION = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIDI_PREFIX = "ganbridge:"
WAV_CHUNK = b"gbrc"
SVG_RECIPE = re.compile(rb'<metadata id="ganbridge-recipe">(.*?)</metadata>', re.DOTALL)
SVG_MANIFEST = re.compile(rb"<c2pa:manifest>.*?</c2pa:manifest>", re.DOTALL)
SVG_MANIFEST_NAMESPACE = b' xmlns:c2pa="http://c2pa.org/manifest"'
SVG_ROOT = re.compile(rb"<svg\b[^>]*>")  # the root element's start tag


class RecipeError(ValueError):
    """A file without a recipe, or one that cannot be read."""


def make_recipe(
    generator: str,
    checkpoint: dict[str, str],
    params: dict[str, Any],
    seed: int | None,
    latent: Latent | None = None,
    origin: str = "generate",
    parents: list[str] | None = None,
) -> dict[str, Any]:
    """The recipe of one item. `latent` is kept unless the item was generated from `seed`."""
    recipe: dict[str, Any] = {
        "ganbridge": RECIPE_VERSION,
        "generator": generator,
        "checkpoint": dict(checkpoint),
        "params": {k: v for k, v in params.items() if k != "seed"},
        "seed": seed,
        "origin": origin,
    }
    if origin == "generate" and seed is not None:
        recipe["latent_draw"] = LATENT_DRAW
    else:
        if latent is None:
            raise ValueError("an item not drawn from a seed needs its latent in the recipe")
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sorted(latent.items())}
        recipe["latent"] = base64.b64encode(save_arrays(arrays)).decode("ascii")
        recipe["parents"] = list(parents or [])
    return recipe


def recipe_draw(recipe: dict[str, Any]) -> int:
    """How a seeded recipe's latent was drawn (see generators.base.LATENT_DRAW): 1 when it does
    not say, as recipes written before draws were numbered."""
    draw = recipe.get("latent_draw", 1)
    if isinstance(draw, bool) or not isinstance(draw, int) or not 1 <= draw <= LATENT_DRAW:
        raise RecipeError(f"the recipe's latent_draw {draw!r} is not one this version knows (1-{LATENT_DRAW})")
    return draw


def recipe_latent(recipe: dict[str, Any]) -> Latent | None:
    """The latent a recipe carries (None for a seeded one)."""
    text = recipe.get("latent")
    if text is None:
        return None
    try:
        return dict(sorted(load_arrays(base64.b64decode(text, validate=True)).items()))
    except Exception as e:
        raise RecipeError(f"the recipe's latent cannot be read: {e}") from None


def encode_recipe(recipe: dict[str, Any]) -> str:
    return json.dumps(recipe, sort_keys=True, separators=(",", ":"))


def embed(data: bytes, fmt: str, recipe: dict[str, Any]) -> bytes:
    """`data` (a file of format `fmt`: png, svg, mid or wav) with `recipe` inside."""
    text = encode_recipe(recipe)
    if fmt == "png":
        return _png_with(data, text, _parameters(recipe))
    if fmt == "svg":
        return _svg_with(data, text)
    if fmt == "mid":
        return _midi_with(data, text)
    if fmt == "wav":
        return _wav_with(data, text)
    raise ValueError(f"no recipe can be embedded in a {fmt!r} file")


def read_recipe(data: bytes) -> dict[str, Any]:
    """The recipe in a PNG, SVG, MIDI or WAV file; RecipeError if it has none or it is broken."""
    if data.startswith(PNG_SIGNATURE):
        text = _png_recipe(data)
    elif _is_svg(data):
        text = _svg_recipe(data)
    elif data.startswith(b"MThd"):
        text = _midi_recipe(data)
    elif data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        text = _wav_recipe(data)
    else:
        raise RecipeError("not a PNG, SVG, MIDI or WAV file")
    if text is None:
        raise RecipeError("the file carries no ganbridge recipe")
    try:
        recipe = json.loads(text)
    except ValueError as e:
        raise RecipeError(f"the recipe is not valid JSON: {e}") from None
    if not isinstance(recipe, dict) or recipe.get("ganbridge") != RECIPE_VERSION:
        raise RecipeError(f"not a ganbridge recipe of format {RECIPE_VERSION}")
    for key, kind in (("generator", str), ("checkpoint", dict), ("params", dict)):
        if not isinstance(recipe.get(key), kind):
            raise RecipeError(f"the recipe's {key!r} is missing or not a {kind.__name__}")
    return recipe


def chunk_names(data: bytes) -> list[bytes]:
    """The chunk types of a PNG file, or of a WAV file's RIFF chunks; [] for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return [kind for kind, _, _ in _png_chunks(data)]
    if data.startswith(b"RIFF"):
        return [kind for kind, _, _ in _riff_chunks(data)]
    return []


def damaged_chunks(data: bytes) -> list[bytes]:
    """The types of a PNG's chunks whose CRC does not match them: a byte changed anywhere, even in
    the padding a C2PA manifest reserves (which its signature does not cover). [] otherwise."""
    if not data.startswith(PNG_SIGNATURE):
        return []
    return [
        kind
        for kind, body, at in _png_chunks(data)
        if data[at + 8 + len(body) : at + 12 + len(body)] != struct.pack(">I", zlib.crc32(kind + body))
    ]


def without_credentials(data: bytes) -> bytes:
    """The file as it was before it was signed: its C2PA manifest (a PNG's caBX chunk, a WAV's
    C2PA chunk, an SVG's c2pa:manifest element and namespace) taken out. A signature differs each
    time it is made; the rest does not."""
    if data.startswith(PNG_SIGNATURE):
        kept = [data[at : at + 12 + len(body)] for kind, body, at in _png_chunks(data) if kind != b"caBX"]
        return PNG_SIGNATURE + b"".join(kept)
    if data.startswith(b"RIFF"):
        kept = [
            data[at : at + 8 + len(body) + len(body) % 2] for kind, body, at in _riff_chunks(data) if kind != b"C2PA"
        ]
        body = data[8:12] + b"".join(kept)
        return b"RIFF" + struct.pack("<I", len(body)) + body
    if _is_svg(data):
        return SVG_MANIFEST.sub(b"", data).replace(SVG_MANIFEST_NAMESPACE, b"", 1)
    return data


# --- PNG -----------------------------------------------------------------------------------------


def _parameters(recipe: dict[str, Any]) -> str:
    """The web-UI style summary: a first line saying what made it, then `Key: value, ...`."""
    params = recipe["params"]
    fields = [f"Seed: {recipe['seed']}"] if "latent" not in recipe else [f"Origin: {recipe['origin']}"]
    if "width" in params and "height" in params:
        fields.append(f"Size: {params['width']}x{params['height']}")
    fields += [f"Model hash: {recipe['checkpoint']['sha256'][:10]}", f"Model: {recipe['checkpoint']['name']}"]
    fields += [
        f"{k}: {','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in sorted(params.items())
        if k not in ("width", "height", "model")
    ]
    return f"ganbridge {recipe['generator']}\n" + ", ".join(fields)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, body, offset) of each chunk."""
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if at + 12 + length > len(data):
            raise RecipeError("the PNG file is cut short")
        chunks.append((kind, data[at + 8 : at + 8 + length], at))
        at += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _png_with(data: bytes, text: str, parameters: str) -> bytes:
    """The PNG with this recipe, before IEND, in place of any it carried (a file read back in
    and written again gets one recipe, not two)."""
    chunks = _png_chunks(data)
    if not chunks or chunks[-1][0] != b"IEND":
        raise ValueError("not a complete PNG file")
    kept = [data[at : at + 12 + len(body)] for kind, body, at in chunks[:-1] if not _is_recipe_chunk(kind, body)]
    itxt = b"ganbridge\x00\x00\x00\x00\x00" + text.encode("utf-8")  # uncompressed, no language
    extra = _png_chunk(b"iTXt", itxt) + _png_chunk(b"tEXt", b"parameters\x00" + parameters.encode("latin-1", "replace"))
    return PNG_SIGNATURE + b"".join(kept) + extra + data[chunks[-1][2] :]


def _is_recipe_chunk(kind: bytes, body: bytes) -> bool:
    return (kind == b"iTXt" and body.startswith(b"ganbridge\x00")) or (
        kind == b"tEXt" and body.startswith(b"parameters\x00")
    )


def _png_recipe(data: bytes) -> str | None:
    """The recipe of a PNG's `ganbridge` iTXt chunk; RecipeError when two chunks disagree."""
    texts = {
        _itxt_text(body) for kind, body, _ in _png_chunks(data) if kind == b"iTXt" and body.startswith(b"ganbridge\x00")
    }
    return _one(texts)


def _itxt_text(body: bytes) -> str:
    rest = body[len(b"ganbridge\x00") :]
    compressed = rest[:1] == b"\x01"
    rest = rest[2:]  # compression flag and method
    _, _, rest = rest.partition(b"\x00")  # language tag
    _, _, rest = rest.partition(b"\x00")  # translated keyword
    try:
        return (zlib.decompress(rest) if compressed else rest).decode("utf-8", "replace")
    except zlib.error as e:
        raise RecipeError(f"the recipe chunk cannot be decompressed: {e}") from None


# --- MIDI ----------------------------------------------------------------------------------------


def _midi_with(data: bytes, text: str) -> bytes:
    import io

    mid = mido.MidiFile(file=io.BytesIO(data))
    for track in mid.tracks:  # a recipe already there goes: one file, one recipe
        for i in reversed(range(len(track))):
            msg = track[i]
            if msg.is_meta and msg.type == "text" and msg.text.startswith(MIDI_PREFIX):
                if i + 1 < len(track):
                    track[i + 1].time += msg.time
                del track[i]
    mid.tracks[0].insert(0, mido.MetaMessage("text", text=MIDI_PREFIX + text, time=0))
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def _midi_recipe(data: bytes) -> str | None:
    import io

    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:
        raise RecipeError(f"the MIDI file cannot be read: {e}") from None
    texts = {
        msg.text[len(MIDI_PREFIX) :]
        for track in mid.tracks
        for msg in track
        if msg.is_meta and msg.type == "text" and msg.text.startswith(MIDI_PREFIX)
    }
    return _one(texts)


def _one(texts: set[str]) -> str | None:
    """The one recipe a file carries; RecipeError when it carries different ones."""
    if len(texts) > 1:
        raise RecipeError(f"the file carries {len(texts)} different ganbridge recipes: it was edited after it was made")
    return texts.pop() if texts else None


# --- SVG -----------------------------------------------------------------------------------------


def _is_svg(data: bytes) -> bool:
    """An SVG document: its root element near the start, after any XML declaration, comments or
    byte-order mark an editor may have written before it."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith((b"<svg", b"<?xml", b"<!--")) and SVG_ROOT.search(head) is not None


def _svg_with(data: bytes, text: str) -> bytes:
    """The SVG with this recipe's metadata element first in its root, in place of any it carried."""
    plain = SVG_RECIPE.sub(b"", data)
    root = SVG_ROOT.search(plain)
    if root is None:
        raise ValueError("not an SVG document: no <svg> element")
    root_end = root.end()
    element = b'<metadata id="ganbridge-recipe">' + html.escape(text, quote=False).encode("utf-8") + b"</metadata>"
    return plain[:root_end] + element + plain[root_end:]


def _svg_recipe(data: bytes) -> str | None:
    texts = {SVG_MANIFEST.sub(b"", found).decode("utf-8", "replace") for found in SVG_RECIPE.findall(data)}
    return _one({html.unescape(text) for text in texts})


# --- WAV -----------------------------------------------------------------------------------------


def _wav_with(data: bytes, text: str) -> bytes:
    """The WAV with this recipe's chunk last, in place of any it carried."""
    kept = [data[at : at + 8 + len(b) + len(b) % 2] for kind, b, at in _riff_chunks(data) if kind != WAV_CHUNK]
    body = text.encode("utf-8")
    chunk = WAV_CHUNK + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")
    riff = data[8:12] + b"".join(kept) + chunk
    return b"RIFF" + struct.pack("<I", len(riff)) + riff


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, body, offset) of each chunk after a RIFF file's header."""
    chunks, at = [], 12
    while at + 8 <= len(data):
        kind, (length,) = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])
        chunks.append((kind, data[at + 8 : at + 8 + length], at))
        at += 8 + length + (length % 2)
    return chunks


def _wav_recipe(data: bytes) -> str | None:
    return _one({body.decode("utf-8", "replace") for kind, body, _ in _riff_chunks(data) if kind == WAV_CHUNK})
