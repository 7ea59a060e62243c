"""Harmony and voice leading of four-part phrases: the statistics a listener hears as "Bach" or as
"random notes in a chorale's rhythm", which MuseGAN's metrics (`evaluate.py`) do not measure.

Every statistic takes phrases of notes, (track, pitch, start_step, length_steps), with track 0 the
highest voice (soprano, alto, tenor, bass), on a grid of 16 steps per 4/4 bar. Definitions:

- **Beats**: the pitches sounding at each quarter-note beat's first step, one per voice at most.
- **triad**: a beat's pitch classes are exactly a major, minor, diminished or augmented triad
  (a doubled note allowed, nothing else); **triad or seventh** also takes the four seventh chords
  of the major and minor keys (dominant, major, minor, half-diminished) and the diminished seventh,
  complete or without their fifth. Beats where fewer than three voices sound count as neither.
- **crossed**: of beats where two adjacent voices both sound, the fraction where the lower voice
  is above the upper one.
- **parallel fifths / octaves**: two voices a perfect fifth (an octave or unison) apart, modulo
  the octave, on two consecutive beats, both moving in the same direction; per 100 chord changes
  (consecutive beats whose sounding pitches differ).
- **steps, leaps, repeats**: over each voice's consecutive notes, the fraction of intervals of 1-2
  semitones, of more than 12, and of 0.
- **in scale**: the fraction of notes in the scale of the phrase's key as the 24-key detector
  finds it (minor: the natural minor with its raised sixth and seventh).
- **bar repeats**: of voice-bars with notes after the first bar, the fraction whose notes (pitch,
  start in the bar, length) are exactly the previous bar's.
- **outside range**: the fraction of each voice's notes outside a pitch range (the chorales').
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ganbridge.generators.music.model import STEPS_PER_BAR
from ganbridge.generators.music.notes import Note, detect_key

STEPS_PER_BEAT = STEPS_PER_BAR // 4
_TRIADS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8))
_SEVENTHS = ((0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9))
_MAJOR_SCALE = frozenset((0, 2, 4, 5, 7, 9, 11))
_MINOR_SCALE = frozenset((0, 2, 3, 5, 7, 8, 9, 10, 11))  # natural, with its raised sixth and seventh


def _chord_sets(shapes: Sequence[Sequence[int]]) -> frozenset[frozenset[int]]:
    return frozenset(frozenset((root + i) % 12 for i in shape) for shape in shapes for root in range(12))


CHORD_SHAPES = _TRIADS + _SEVENTHS + tuple((s[0], s[1], s[3]) for s in _SEVENTHS[:4])  # the last: no fifth
TRIADS = _chord_sets(_TRIADS)
SEVENTHS = _chord_sets(_SEVENTHS) | _chord_sets([(s[0], s[1], s[3]) for s in _SEVENTHS[:4]])


def beats(notes: Sequence[Note], tracks: int, steps: int) -> np.ndarray:
    """(beats, tracks) pitch sounding at each beat's first step, -1 where the voice is silent."""
    grid = np.full((steps // STEPS_PER_BEAT, tracks), -1)
    for track, pitch, start, length in notes:
        for beat in range(-(-start // STEPS_PER_BEAT), (start + length - 1) // STEPS_PER_BEAT + 1):
            if beat < len(grid) and track < tracks:
                grid[beat, track] = pitch
    return grid


def chord_fractions(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(triad, triad or seventh): fractions of all beats."""
    total = triads = chords = 0
    for grid in grids:
        for row in grid:
            total += 1
            sounding = row[row >= 0]
            if len(sounding) < 3:
                continue
            classes = frozenset(int(p) % 12 for p in sounding)
            triads += classes in TRIADS
            chords += classes in TRIADS or classes in SEVENTHS
    return triads / max(total, 1), chords / max(total, 1)


def crossed_fraction(grids: Sequence[np.ndarray]) -> float:
    both = crossed = 0
    for grid in grids:
        upper, lower = grid[:, :-1], grid[:, 1:]
        sounding = (upper >= 0) & (lower >= 0)
        both += int(sounding.sum())
        crossed += int((sounding & (lower > upper)).sum())
    return crossed / max(both, 1)


def parallels_per_100(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(fifths, octaves) per 100 chord changes."""
    changes = fifths = octaves = 0
    for grid in grids:
        for a, b in zip(grid[:-1], grid[1:]):
            if np.array_equal(a, b):
                continue
            changes += 1
            for i in range(len(a)):
                for j in range(i + 1, len(a)):
                    if min(a[i], a[j], b[i], b[j]) < 0:
                        continue
                    move_i, move_j = b[i] - a[i], b[j] - a[j]
                    if move_i == 0 or np.sign(move_i) != np.sign(move_j):
                        continue
                    before, after = (a[i] - a[j]) % 12, (b[i] - b[j]) % 12
                    fifths += before == after == 7
                    octaves += before == after == 0
    return 100 * fifths / max(changes, 1), 100 * octaves / max(changes, 1)


def melodic_fractions(phrases: Sequence[Sequence[Note]], tracks: int) -> tuple[float, float, float]:
    """(steps of 1-2 semitones, leaps over an octave, repeated notes) of every voice's intervals."""
    intervals: list[int] = []
    for notes in phrases:
        for track in range(tracks):
            pitches = [p for t, p, _, _ in sorted(notes, key=lambda n: n[2]) if t == track]
            intervals += [abs(b - a) for a, b in zip(pitches[:-1], pitches[1:])]
    moves = np.array(intervals)
    if not len(moves):
        return 0.0, 0.0, 0.0
    return float(((moves >= 1) & (moves <= 2)).mean()), float((moves > 12).mean()), float((moves == 0).mean())


def in_scale_fraction(phrases: Sequence[Sequence[Note]]) -> float:
    inside = total = 0
    for notes in phrases:
        if not notes:
            continue
        tonic, mode = detect_key(notes)
        scale = _MAJOR_SCALE if mode == "major" else _MINOR_SCALE
        inside += sum((p - tonic) % 12 in scale for _, p, _, _ in notes)
        total += len(notes)
    return inside / max(total, 1)


def bar_repeat_fraction(phrases: Sequence[Sequence[Note]], tracks: int, bars: int) -> float:
    repeats = counted = 0
    for notes in phrases:
        per_bar: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for track, pitch, start, length in notes:
            per_bar.setdefault((track, start // STEPS_PER_BAR), []).append((pitch, start % STEPS_PER_BAR, length))
        for track in range(tracks):
            for bar in range(1, bars):
                here = sorted(per_bar.get((track, bar), []))
                if here:
                    counted += 1
                    repeats += here == sorted(per_bar.get((track, bar - 1), []))
    return repeats / max(counted, 1)


def voice_ranges(phrases: Sequence[Sequence[Note]], tracks: int) -> list[tuple[int, int]]:
    """Each voice's lowest and highest pitch in these phrases."""
    ranges = []
    for track in range(tracks):
        pitches = [p for notes in phrases for t, p, _, _ in notes if t == track]
        ranges.append((min(pitches), max(pitches)) if pitches else (0, 127))
    return ranges


def outside_range_fractions(phrases: Sequence[Sequence[Note]], ranges: Sequence[tuple[int, int]]) -> list[float]:
    out = []
    for track, (low, high) in enumerate(ranges):
        pitches = np.array([p for notes in phrases for t, p, _, _ in notes if t == track])
        out.append(float(((pitches < low) | (pitches > high)).mean()) if len(pitches) else 0.0)
    return out


def random_pitches(
    phrases: Sequence[Sequence[Note]], ranges: Sequence[tuple[int, int]], seed: int = 0
) -> list[list[Note]]:
    """The floor: the same rhythm with each note's pitch drawn uniformly from its voice's range."""
    rng = np.random.default_rng(seed)
    return [[(t, int(rng.integers(ranges[t][0], ranges[t][1] + 1)), s, n) for t, _, s, n in notes] for notes in phrases]


def harmony_statistics(
    phrases: Sequence[Sequence[Note]], tracks: int, bars: int, ranges: Sequence[tuple[int, int]]
) -> dict[str, float]:
    """Every statistic above, for these phrases (see the module docstring)."""
    grids = [beats(notes, tracks, bars * STEPS_PER_BAR) for notes in phrases]
    triad, chord = chord_fractions(grids)
    fifths, octaves = parallels_per_100(grids)
    steps, leaps, repeats = melodic_fractions(phrases, tracks)
    stats = {
        "triad": triad,
        "triad_or_seventh": chord,
        "crossed": crossed_fraction(grids),
        "parallel_fifths": fifths,
        "parallel_octaves": octaves,
        "steps": steps,
        "in_scale": in_scale_fraction(phrases),
        "leaps_over_octave": leaps,
        "repeated_notes": repeats,
        "bar_repeats": bar_repeat_fraction(phrases, tracks, bars),
    }
    for track, fraction in enumerate(outside_range_fractions(phrases, ranges)):
        stats[f"outside_range/{track}"] = fraction
    return stats
