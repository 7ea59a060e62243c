"""The harmony statistics of `ganbridge eval music` on phrases whose answers are known by hand."""

from __future__ import annotations

from ganbridge.generators.music.harmony import (
    beats,
    chord_fractions,
    crossed_fraction,
    harmony_statistics,
    in_scale_fraction,
    melodic_fractions,
    parallels_per_100,
    random_pitches,
    voice_ranges,
)

Q = 4  # steps per beat


def chorale(*columns: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    """One beat-long note per voice per column: (soprano, alto, tenor, bass) pitches, -1 a rest."""
    return [(t, p, Q * b, Q) for b, col in enumerate(columns) for t, p in enumerate(col) if p >= 0]


def test_chords_count_triads_and_sevenths_and_need_three_voices():
    # C major; G7 (F D B G); a cluster (F E D C); two voices only
    notes = chorale((67, 64, 60, 48), (65, 62, 59, 55), (65, 64, 62, 60), (64, -1, -1, 48))
    grid = beats(notes, 4, 16)
    assert grid.shape == (4, 4) and grid[3].tolist() == [64, -1, -1, 48]
    triad, chord = chord_fractions([grid])
    assert triad == 1 / 4  # only the C major triad: a cluster is no chord, two voices are neither
    assert chord == 2 / 4  # ... and G7


def test_parallel_fifths_and_octaves_need_both_voices_moving_the_same_way():
    fifths = chorale((67, -1, -1, 60), (69, -1, -1, 62))  # a fifth apart, both up a step
    contrary = chorale((67, -1, -1, 60), (74, -1, -1, 55))  # fifth to fifth in contrary motion: an octave apart
    octaves = chorale((72, -1, -1, 60), (74, -1, -1, 62))
    assert parallels_per_100([beats(fifths, 4, 8)]) == (100.0, 0.0)
    assert parallels_per_100([beats(contrary, 4, 8)]) == (0.0, 0.0)
    assert parallels_per_100([beats(octaves, 4, 8)]) == (0.0, 100.0)


def test_crossed_voices_melodic_motion_and_scale():
    crossed = chorale((60, 64, 55, 48), (60, 57, 55, 48))  # alto above soprano on the first beat
    assert crossed_fraction([beats(crossed, 4, 8)]) == 1 / 6
    soprano = [(0, 60, 0, 4), (0, 62, 4, 4), (0, 62, 8, 4), (0, 75, 12, 4)]
    assert melodic_fractions([soprano], 4) == (1 / 3, 1 / 3, 1 / 3)  # a step, a repeat, a leap of 13
    c_major = [(0, p, 4 * i, 4) for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 61))]
    assert in_scale_fraction([c_major]) == 11 / 12  # C# is the one note outside C major


def test_the_statistics_of_a_phrase_and_its_random_pitch_floor():
    bar = [(0, 72, 0, 8), (0, 71, 8, 8), (3, 48, 0, 16)]
    phrase = bar + [(t, p, s + 16, n) for t, p, s, n in bar]  # the second bar repeats the first
    ranges = voice_ranges([phrase], 4)
    assert ranges[0] == (71, 72) and ranges[3] == (48, 48)
    stats = harmony_statistics([phrase], 4, 2, ranges)
    assert stats["bar_repeats"] == 1.0 and stats["outside_range/0"] == 0.0
    floor = random_pitches([phrase], [(60, 80), (0, 127), (0, 127), (40, 50)], seed=3)[0]
    assert [(t, s, n) for t, _, s, n in floor] == [(t, s, n) for t, _, s, n in phrase]  # the same rhythm
    assert all(60 <= p <= 80 for t, p, _, _ in floor if t == 0) and all(40 <= p <= 50 for t, p, _, _ in floor if t == 3)
    assert harmony_statistics([floor], 4, 2, [(0, 10)] * 4)["outside_range/0"] == 1.0
