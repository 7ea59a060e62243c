"""Training data for the music GAN: four-part pieces as notes on a 16th-note grid.

Two sources: the Bach chorales inside music21's corpus (`--corpus bach`; parsed once, then cached
as JSON), and a folder of the user's own MIDI files (`--midi-folder`). Pieces are split into
training and held-out sets by piece, so no phrase of a held-out chorale is ever trained on.
Training windows are 4-bar phrases starting on a bar line, transposed at random.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganbridge.generators.dataset import file_manifest, refuse_forbidden
from ganbridge.generators.music.harmony import SEVENTHS, TRIADS, beats
from ganbridge.generators.music.model import MODES, STEPS_PER_BAR, STEPS_PER_BEAT, MusicConfig
from ganbridge.generators.music.notes import Note, detect_key, midi_voices

CACHE_VERSION = 2  # 2: the report has the kept files' manifest
BACH_SOURCE = (
    "J. S. Bach, four-part chorales (compositions in the public domain), as encoded in the music21 corpus "
    "(music21 {version}, corpus.chorales.Iterator())"
)
BACH_LICENSE = (
    "Compositions: public domain. Encodings: distributed in music21's corpus with the encoders' permission "
    "(music21/corpus/license.txt: 'Some encodings included in the corpus may not be used for commercial uses or "
    "have other restrictions: please see the licenses embedded in individual compositions or directories'; the "
    "bach/ files carry no such restriction). music21 itself is BSD-3-Clause."
)
BACH_FILE_SOURCE = "music21 corpus"
BACH_FILE_LICENSE = "public domain composition; encoding distributed in the music21 corpus"
FOLDER_LICENSE = "unknown (user-supplied MIDI files)"


@dataclass
class MusicPiece:
    name: str
    mode: int  # index into MODES
    steps: int
    notes: np.ndarray  # (N, 4) int32: track, pitch, start step, length in steps

    def as_json(self) -> dict:
        return {"name": self.name, "mode": self.mode, "steps": self.steps, "notes": self.notes.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> MusicPiece:
        return cls(d["name"], d["mode"], d["steps"], np.asarray(d["notes"], np.int32).reshape(-1, 4))


@dataclass
class MusicData:
    train: list[MusicPiece]
    held_out: list[MusicPiece]
    source: str
    license: str
    report: dict = field(default_factory=dict)


# --- the Bach chorales ------------------------------------------------------------------------


def _chorale(score, tracks: int) -> tuple[MusicPiece | None, str]:
    """One music21 score -> a piece, or None and why it was left out."""
    parts = list(score.parts)
    if len(parts) != tracks:
        return None, f"{len(parts)} parts"
    sigs = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if sigs != {"4/4"}:
        return None, f"time signature {'/'.join(sorted(sigs)) or 'none'}"
    first = parts[0].getElementsByClass("Measure")
    shift = float(first[0].paddingLeft) if len(first) else 0.0  # a pickup bar: align bar lines to 16 steps
    rows = []
    for t, part in enumerate(parts):
        for n in part.flatten().stripTies().notes:
            start, length = (float(n.offset) + shift) * STEPS_PER_BEAT, float(n.quarterLength) * STEPS_PER_BEAT
            if length == 0:
                continue  # grace note
            if abs(start - round(start)) > 1e-6 or abs(length - round(length)) > 1e-6:
                return None, "notes off the 16th-note grid (tuplets)"
            rows.append((t, max(p.midi for p in n.pitches), round(start), round(length)))
    if not rows:
        return None, "no notes"
    notes = np.asarray(rows, np.int32)
    steps = int((notes[:, 2] + notes[:, 3]).max())
    steps = -(-steps // STEPS_PER_BAR) * STEPS_PER_BAR
    mode = score.analyze("key").mode
    name = (score.metadata.title if score.metadata else "") or "untitled"
    return MusicPiece(name, MODES.index(mode) if mode in MODES else 0, steps, notes), ""


def corpus_root() -> Path:
    """The installed music21's corpus folder."""
    import music21.corpus

    return Path(music21.corpus.__file__).parent


def _corpus_file(score: Any) -> Path:
    """Where music21 read a corpus score from (an Iterator's score is typed as a string, too)."""
    return corpus_root() / score.metadata.corpusFilePath


def chorale_manifest(files: Sequence[Path]) -> dict:
    """The manifest of the chorale files kept, named as the music21 corpus names them; each file
    once (the corpus's chorale numbering reads a few files twice, and both readings are kept)."""
    return file_manifest(sorted(set(files)), corpus_root(), BACH_FILE_SOURCE, BACH_FILE_LICENSE)


def bach_chorales(cache: Path, tracks: int = 4, limit: int | None = None) -> tuple[list[MusicPiece], dict]:
    """All usable chorales (four parts, 4/4, on the grid), parsed once and cached at `cache`."""
    import music21
    from music21 import corpus

    if cache.is_file() and limit is None:
        saved = json.loads(cache.read_text())
        if saved.get("version") == CACHE_VERSION and saved.get("music21") == music21.__version__:
            return [MusicPiece.from_json(p) for p in saved["pieces"]], saved["report"]
    pieces, skipped, files = [], {}, []
    total = 0
    for score in corpus.chorales.Iterator(returnType="stream"):
        total += 1
        piece, why = _chorale(score, tracks)
        if piece is None:
            skipped[why] = skipped.get(why, 0) + 1
        else:
            pieces.append(piece)
            files.append(_corpus_file(score))
        if total % 25 == 0:
            print(f"parsed {total} chorales, kept {len(pieces)}", file=sys.stderr)
        if limit is not None and len(pieces) >= limit:
            break
    report = {
        "chorales_in_corpus_read": total,
        "kept": len(pieces),
        "skipped": skipped,
        "manifest": chorale_manifest(files),
    }
    if limit is None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": CACHE_VERSION, "music21": music21.__version__, "report": report,
                "pieces": [p.as_json() for p in pieces]}  # fmt: skip
        cache.write_text(json.dumps(body))
    return pieces, report


# --- a folder of MIDI files -------------------------------------------------------------------


def midi_piece(path: Path, tracks: int) -> tuple[MusicPiece | None, str]:
    """A MIDI file with exactly `tracks` note tracks (or channels, for type 0), in 4/4."""
    try:
        voices = midi_voices(path.read_bytes())
    except ValueError as e:
        return None, str(e)
    if len(voices) != tracks:
        return None, f"{len(voices)} note tracks (need {tracks})"
    rows = [(t, pitch, start, length) for t, notes in enumerate(voices) for pitch, start, length in notes]
    arr = np.asarray(rows, np.int32)
    steps = -(-int((arr[:, 2] + arr[:, 3]).max()) // STEPS_PER_BAR) * STEPS_PER_BAR
    _, mode = detect_key([tuple(r) for r in arr.tolist()])
    return MusicPiece(path.stem, MODES.index(mode), steps, arr), ""


def midi_folder(folder: Path, tracks: int) -> tuple[list[MusicPiece], dict]:
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not files:
        raise ValueError(f"{folder} has no .mid or .midi files")
    refuse_forbidden(files, folder)
    pieces, skipped = [], {}
    for path in files:
        piece, why = midi_piece(path, tracks)
        if piece is None:
            skipped[str(path.relative_to(folder))] = why
        else:
            pieces.append(piece)
    if not pieces:
        first = next(iter(skipped.items()))
        raise ValueError(f"none of the {len(files)} MIDI files in {folder} can be used (e.g. {first[0]}: {first[1]})")
    return pieces, {
        "files": len(files),
        "kept": len(pieces),
        "skipped": skipped,
        "manifest": file_manifest(files, folder, f"MIDI files in {folder}", FOLDER_LICENSE),
    }


def split(pieces: list[MusicPiece], held_out: float = 0.1, seed: int = 0) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(pieces))
    n_held = max(1, round(held_out * len(pieces))) if len(pieces) > 1 else 0
    held = [pieces[i] for i in sorted(order[:n_held])]
    train = [pieces[i] for i in sorted(order[n_held:])]
    return train, held


def voice_ranges(pieces: Sequence[MusicPiece], tracks: int, share: float = 0.005) -> list[list[int]]:
    """Each voice's [lowest, highest] pitch with `share` of its notes left out at either end: the
    range decoding keeps it in (MusicConfig.voice_ranges). The extremes are a handful of notes
    (the chorales' soprano reaches 57 and 81 in training, 60 and 79 in the held-out pieces)."""
    notes = np.concatenate([p.notes for p in pieces]) if pieces else np.zeros((0, 4), np.int32)
    out = []
    for track in range(tracks):
        pitches = notes[notes[:, 0] == track, 1]
        if len(pitches) == 0:
            out.append([0, 127])
            continue
        low, high = np.quantile(pitches, [share, 1 - share], method="nearest")
        out.append([int(low), int(high)])
    return out


def phrases(pieces: Sequence[MusicPiece], bars: int = 4) -> list[list[Note]]:
    """Non-overlapping `bars`-bar phrases of the pieces, starting on bar lines, notes re-timed to
    the phrase and cut at its end."""
    out = []
    span = bars * STEPS_PER_BAR
    for piece in pieces:
        for start in range(0, piece.steps - span + 1, span):
            notes = []
            for t, p, s, n in piece.notes.tolist():
                if s < start + span and s + n > start:
                    s0 = max(s, start)
                    notes.append((t, p, s0 - start, min(s + n, start + span) - s0))
            out.append(notes)
    return out


def progressions(pieces: Sequence[MusicPiece], tracks: int, min_count: int = 3) -> dict[str, dict]:
    """Per mode, the chords the pieces sound on beats and how often each follows each: what
    four-part decoding (voicing.py) scores a chord change by. A chord is a beat's pitch classes
    above the tonic of its 4-bar phrase's key (as the 24-key detector hears it), if they form a
    triad or seventh (harmony.py); chords heard fewer than `min_count` times are left out. JSON:
    {"major": {"chords": [[0, 4, 7], ...], "starts": [count per chord], "counts": [[from, to,
    count], ...], "after_other": [count per chord after a beat that is none]}, "minor": ...}."""
    labelled: dict[str, list[list[frozenset[int] | None]]] = {mode: [] for mode in MODES}
    for notes in phrases(pieces):
        if not notes:
            continue
        tonic, mode = detect_key(notes)
        row = []
        for pitches in beats(notes, tracks, 4 * STEPS_PER_BAR):
            sounding = pitches[pitches >= 0]
            classes = frozenset(int(p - tonic) % 12 for p in sounding)
            row.append(classes if len(sounding) >= 3 and (classes in TRIADS or classes in SEVENTHS) else None)
        labelled[mode].append(row)
    out = {}
    for mode, rows in labelled.items():
        seen: dict[frozenset[int], int] = {}
        for row in rows:
            for chord in row:
                if chord is not None:
                    seen[chord] = seen.get(chord, 0) + 1
        chords = sorted((c for c, n in seen.items() if n >= min_count), key=lambda c: (-seen[c], sorted(c)))
        index = {c: i for i, c in enumerate(chords)}
        starts, after_other = [0] * len(chords), [0] * len(chords)
        pairs: dict[tuple[int, int], int] = {}
        for row in rows:
            if row and row[0] in index:
                starts[index[row[0]]] += 1
            for a, b in zip(row, row[1:]):
                if b not in index:
                    continue
                if a in index:
                    pairs[index[a], index[b]] = pairs.get((index[a], index[b]), 0) + 1
                else:
                    after_other[index[b]] += 1
        out[mode] = {
            "chords": [sorted(c) for c in chords],
            "starts": starts,
            "counts": [[a, b, n] for (a, b), n in sorted(pairs.items())],
            "after_other": after_other,
        }
    return out


# --- training windows -------------------------------------------------------------------------


class PhraseSampler:
    """Random 4-bar phrases (frame/onset rolls), each transposed by a random shift that keeps it
    inside the model's pitch range. The shift range is -6..+5, so every key is seen."""

    def __init__(self, pieces: list[MusicPiece], config: MusicConfig, seed: int = 0):
        self.config = config
        self.window = config.phrase_bars * STEPS_PER_BAR
        self.rolls, self.windows = [], []  # full-range rolls (2T, steps, 128) and (piece, start, lo, hi)
        for i, piece in enumerate(pieces):
            roll = np.zeros((2 * config.n_tracks, max(piece.steps, self.window), 128), np.uint8)
            for t, p, s, n in piece.notes.tolist():
                roll[2 * t, s : s + n, p] = 1
                roll[2 * t + 1, s, p] = 1
            self.rolls.append(roll)
            for start in range(0, max(1, piece.steps - self.window + 1), STEPS_PER_BAR):
                rows = np.nonzero(roll[:, start : start + self.window].any(axis=(0, 1)))[0]
                if len(rows):
                    self.windows.append((i, start, int(rows.min()), int(rows.max()), piece.mode))
        if not self.windows:
            raise ValueError("no usable phrases in the training pieces")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.windows)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        out = np.zeros((n, 2 * c.n_tracks, self.window, c.pitches), np.float32)
        modes = np.zeros(n, np.int64)
        for k, w in enumerate(self.rng.integers(len(self.windows), size=n)):
            piece, start, lo, hi, mode = self.windows[w]
            shifts = [s for s in range(-6, 6) if lo + s >= c.low and hi + s < c.low + c.pitches]
            shift = int(self.rng.choice(shifts)) if shifts else 0
            base = c.low - shift
            rows = self.rolls[piece][:, start : start + self.window, max(0, base) : base + c.pitches]
            out[k, :, : rows.shape[1], : rows.shape[2]] = rows
            modes[k] = mode
        return out, modes


def default_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ganbridge")) / "bach_chorales.json"


def load_music_data(
    corpus: str | None, folder: Path | None, tracks: int = 4, limit: int | None = None, seed: int = 0
) -> MusicData:
    """The training data of `ganbridge train music`: --corpus bach or --midi-folder DIR."""
    if (corpus is None) == (folder is None):
        raise ValueError("give one of --corpus bach or --midi-folder DIR")
    if folder is None:
        if corpus != "bach":
            raise ValueError(f"unknown corpus {corpus!r}; the corpus that ships with music21 here is 'bach'")
        import music21

        pieces, report = bach_chorales(default_cache(), tracks, limit)
        source, license = BACH_SOURCE.format(version=music21.__version__), BACH_LICENSE
    else:
        pieces, report = midi_folder(folder, tracks)
        if limit is not None:
            pieces = pieces[:limit]
        source, license = f"MIDI files in {folder}", FOLDER_LICENSE
    if len(pieces) < 2:
        raise ValueError(f"need at least 2 usable pieces (one is held out), found {len(pieces)}")
    train, held = split(pieces, seed=seed)
    return MusicData(train, held, source, license, report)
