"""Four-part decoding: the roll's rhythm, with each beat's pitches chosen together as a chord of
the key voiced for soprano, alto, tenor and bass.

Reading each voice's most likely pitch on its own (`notes.decode_roll`) keeps the generator's
rhythm and hears its harmony as random notes: its voices do not agree on a chord (triad or seventh
on 29% of beats against Bach's 84%). Here the rhythm is still `decode_roll`'s; the pitches sounding
at each beat are chosen jointly, by a beam search over every voicing of every chord the training
chorales use in this mode (`MusicConfig.progressions`), scored by

- the generator's frame probabilities for those pitches: the latent's say in what is sung;
- how often the training chorales move from the previous chord to this one;
- voice leading: steps over leaps, few repeated notes, no parallel fifths or octaves, no crossed
  voices, at most an octave between neighbouring upper voices, each voice inside its range.

A note that starts between beats is then a passing or neighbour tone from the key's scale, near
the notes on either side. Given notes (a melody to harmonize, the bars of a phrase to continue)
are kept exactly and the other voices are chosen around them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganbridge.generators.music.harmony import CHORD_SHAPES
from ganbridge.generators.music.model import MODES, STEPS_PER_BEAT, TONICS, MusicConfig
from ganbridge.generators.music.notes import (
    KEY_PROFILES,
    Note,
    allowed_rows,
    decode_roll,
    detect_key,
    key_name,
    transposition,
)
from ganbridge.generators.music.notes import decode_piece as decode_each_voice

# Weights chosen on 200 phrases of the shipped model against the held-out chorales (the figures
# are in docs/generators/music.md): the generator's log probabilities count twice the chord change's,
# so the latent keeps its say (the MuseGAN targets stay met); the key's profile a quarter of them.
BEAM = 16
PRUNE = 96  # candidates each beam scores in full, of some 2,000-3,000 voicings of a key
GENERATOR_WEIGHT = 2.0
KEY_WEIGHT = 0.5
REPEAT_COST = 0.9  # a repeated note: Bach's voices repeat 14% of their notes
FRAME_BONUS = 2.0  # the tonic chord on a piece's first and last beat
TONIC_TRIADS = {"major": frozenset((0, 4, 7)), "minor": frozenset((0, 3, 7))}
BAR_ECHO_COST = 0.5  # a voice singing what it sang a bar ago (Bach: no bar repeats its predecessor)
EMISSION_FLOOR = 1e-4  # a pitch the generator gives no chance still costs a finite log(1e-4)
PARALLEL_COST = 4.0  # parallel fifths and octaves: rare in Bach (0.3 and 0.06 per 100 changes)
NONCHORD_MELODY_COST = 2.5  # a given melody note that belongs to no chord of its beat
# Cost of a voice's move by 0, 1, 2, ... semitones (beyond the table: the last entry). Bach's
# upper voices move by step about two times in three; the bass leaps by fourths, fifths, octaves.
UPPER_MOTION = np.array([REPEAT_COST, 0.0, 0.0, 0.8, 0.9, 1.4, 3.0, 1.8, 2.6, 2.8, 3.5, 3.5, 3.0] + [8.0] * 12)
BASS_MOTION = np.array([REPEAT_COST + 0.1, 0.2, 0.1, 0.6, 0.6, 0.5, 2.5, 0.5, 1.6, 1.8, 3.0, 3.0, 1.0] + [8.0] * 12)
MOTION = np.stack([UPPER_MOTION, BASS_MOTION])  # by [voice is the bass]
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 9, 10, 11)}

FREE, HELD, FIXED, SILENT = 0, 1, 2, 3  # a voice at a beat: a new note to choose, a note going on, a given note, none


@dataclass(frozen=True)
class Progressions:
    """One mode's chords (pitch classes above the tonic) and their log probabilities: to start a
    phrase, and after each chord (one more row: after a beat that is no chord)."""

    chords: tuple[frozenset[int], ...]
    start: np.ndarray  # (n,)
    after: np.ndarray  # (n + 1, n)
    masks: np.ndarray  # (n,) each chord's pitch classes, one bit each

    @classmethod
    def from_counts(cls, counts: dict) -> Progressions:
        chords = tuple(frozenset(c) for c in counts["chords"])
        n = len(chords)
        pairs = np.zeros((n + 1, n))
        for i, j, c in counts["counts"]:
            pairs[i, j] += c
        pairs[n] = np.asarray(counts["after_other"], float)
        unigram = (pairs.sum(axis=0) + 1) / (pairs.sum() + n)
        after = np.log((pairs + unigram) / (pairs.sum(axis=1, keepdims=True) + 1))  # add-one, spread as the unigram
        start = np.asarray(counts["starts"], float) + unigram
        masks = np.array([_classes_mask(c) for c in chords], int)
        return cls(chords, np.log(start / start.sum()), after, masks)

    def index(self, classes: frozenset[int]) -> int:
        """The chord with these pitch classes above the tonic, or n: no chord of this mode."""
        return self.chords.index(classes) if classes in self.chords else len(self.chords)


@dataclass(frozen=True)
class Voicings:
    """Every voicing of a key's chords inside the voice ranges: (rows, 4) pitches, the chord of
    each row, what its doubling costs, and the pitch classes (above the tonic, one bit each) its
    lower three voices sound."""

    pitches: np.ndarray
    chord: np.ndarray
    cost: np.ndarray
    lower_classes: np.ndarray

    def __getitem__(self, keep: np.ndarray) -> Voicings:
        return Voicings(self.pitches[keep], self.chord[keep], self.cost[keep], self.lower_classes[keep])


def decode_piece(
    probs: np.ndarray,
    config: MusicConfig,
    voicer: Voicer | None,
    threshold: float,
    mode: str,
    key: str | None,
    melody: Sequence[Note] = (),
    opening: Sequence[Note] = (),
    opening_steps: int = 0,
) -> tuple[list[Note], str]:
    """A roll's notes and key (`Voicer.piece`); for a model made before chord progressions were
    recorded (no voicer), each voice read on its own (`notes.decode_piece`), in its own register."""
    if voicer is not None:
        return voicer.piece(probs, threshold, mode, key, melody, opening, opening_steps)
    if melody or opening:
        raise ValueError("this music model has no chord progressions, so it cannot harmonize or continue")
    return decode_each_voice(probs, config, threshold, mode, key)


class Voicer:
    """Decodes rolls of one model (its voice ranges and chord progressions) into four-part notes,
    every voice's range moved by `lift` semitones (a mood's register) and the roll's pitches with it."""

    def __init__(self, config: MusicConfig, lift: int = 0):
        if not config.progressions or not config.voice_ranges:
            raise ValueError("this model has no chord progressions or voice ranges to decode with")
        self.config = config
        self.lift = lift
        self.ranges = [(low + lift, high + lift) for low, high in config.voice_ranges]
        self.progressions = {mode: Progressions.from_counts(config.progressions[mode]) for mode in MODES}
        self._voicings: dict[tuple[str, int, bool], Voicings] = {}

    def piece(
        self,
        probs: np.ndarray,
        threshold: float,
        mode: str,
        key: str | None,
        melody: Sequence[Note] = (),
        opening: Sequence[Note] = (),
        opening_steps: int = 0,
    ) -> tuple[list[Note], str]:
        """A roll's notes and their key. In `key` ('D minor'), the roll's own pitches moved to it
        as `notes.transposition` moves them; for None, in the key its own notes are nearest in
        `mode` (or, given a melody or an opening, the key the detector hears in them). A melody
        (soprano notes) is harmonized: kept, the other voices chosen under it; an opening (every
        voice's notes before `opening_steps`) is continued. The key returned is `key`, the given
        notes' key, or for the roll alone the one the 24-key detector hears in the result."""
        raw = decode_roll(probs, self.config, threshold, allowed_rows(self.config))
        given = [*melody, *opening]
        tonic = -1  # the roll's own, below, unless asked or given
        if key is not None:
            tonic, mode = TONICS.index(key.split()[0]), key.split()[1]
        elif given:
            tonic, mode = detect_key(given)
        own = detect_key(raw, mode)[0]  # the roll's own tonic, in the mode it is decoded in
        if tonic < 0:
            tonic = own
        shift = transposition(raw, key_name(tonic, mode), own) if (key or given) else 0
        voices = [n[0] for n in melody]
        notes = self.decode(probs, threshold, tonic, mode, shift, given, sorted(set(voices)), opening_steps)
        return notes, key or (key_name(tonic, mode) if given else key_name(*detect_key(notes)))

    def decode(
        self,
        probs: np.ndarray,
        threshold: float,
        tonic: int,
        mode: str,
        shift: int,
        given: Sequence[Note] = (),
        given_voices: Sequence[int] = (),
        given_steps: int = 0,
    ) -> list[Note]:
        """The notes of a roll (2*tracks, steps, pitches), in the key of `tonic` and `mode`; the
        roll's pitches sound `shift` semitones higher. `given` notes are kept: those of
        `given_voices` everywhere, and every voice's before step `given_steps`."""
        steps = probs.shape[1]
        beats = steps // STEPS_PER_BEAT
        emission = self._emission(probs, shift + self.lift)  # (tracks, steps, 128)
        skeleton = _skeleton(
            decode_roll(probs, self.config, threshold, allowed_rows(self.config, shift)),
            given,
            given_voices,
            given_steps,
            steps,
        )
        kinds, fixed = _beat_kinds(skeleton, beats, self.config.n_tracks)
        beat_emission = emission[:, : beats * STEPS_PER_BEAT].reshape(len(emission), beats, STEPS_PER_BEAT, 128)
        profile = np.log(np.roll(KEY_PROFILES[mode] / KEY_PROFILES[mode].sum(), tonic))
        key_gain = KEY_WEIGHT * np.resize(profile, 128)  # pitch p: its pitch class's weight in the key
        path = self._search(GENERATOR_WEIGHT * np.log(beat_emission.mean(axis=2)) + key_gain, kinds, fixed, tonic, mode)
        return self._notes(skeleton, path, np.log(emission), tonic, mode)

    # --- scores ---------------------------------------------------------------------------------

    def _emission(self, probs: np.ndarray, shift: int) -> np.ndarray:
        """(tracks, steps, 128) frame probabilities by sounding MIDI pitch, floored."""
        c = self.config
        out = np.full((c.n_tracks, probs.shape[1], 128), EMISSION_FLOOR, np.float32)
        low = c.low + shift
        rows = slice(max(0, -low), min(c.pitches, 128 - low))
        out[:, :, low + rows.start : low + rows.stop] = np.maximum(probs[0::2, :, rows], EMISSION_FLOOR)
        return out

    def voicings(self, mode: str, tonic: int, free_melody: bool = False) -> Voicings:
        """The key's voicings; with `free_melody`, those whose lower three voices sound a whole
        chord by themselves or with one pitch class missing, the melody's place left at -1."""
        key = (mode, tonic, free_melody)
        if key not in self._voicings:
            self._voicings[key] = _voicings(self.progressions[mode].chords, tonic, self.ranges, free_melody)
        return self._voicings[key]

    def _candidates(self, mode: str, tonic: int, fixed_row: np.ndarray) -> Voicings:
        """The voicings a beat may take, its given pitches in place (-1: free)."""
        if fixed_row[0] >= 0:
            return _with_melody(self.voicings(mode, tonic, True), int(fixed_row[0]), tonic, self.progressions[mode])
        table = self.voicings(mode, tonic)
        return table[np.all((fixed_row < 0) | (table.pitches == fixed_row), axis=1)]

    def _search(self, beat_gain: np.ndarray, kinds: np.ndarray, fixed: np.ndarray, tonic: int, mode: str) -> np.ndarray:
        """(beats, tracks) pitches: the best-scoring path of voicings, by beam search. Each beam
        first keeps its PRUNE best candidates by what is cheap to score (the generator, the key,
        doubling, the chord change, notes held on); only those get voice leading scored."""
        progressions = self.progressions[mode]
        beats, tracks = kinds.shape
        score = np.zeros(1)
        pitches = np.full((1, tracks), -1)
        chord = np.full(1, -1)
        bar_ago = np.full((1, 4, tracks), -1)  # each beam's last four beats: a bar echoed costs
        history: list[tuple[np.ndarray, np.ndarray]] = []  # per beat: (each beam's parent, its pitches)
        for b in range(beats):
            kind = kinds[b]
            fixed_row = np.where(kind == FIXED, fixed[b], -1)
            cand = self._candidates(mode, tonic, fixed_row)
            scored = self._scores(cand, score, pitches, chord, bar_ago, beat_gain[:, b], kind, progressions)
            if b in (0, beats - 1):  # a piece starts and ends on its key's tonic chord, if it can
                idx, total = scored
                scored = idx, total + FRAME_BONUS * (cand.chord[idx] == progressions.index(TONIC_TRIADS[mode]))
            parent, pick, total = _best(scored)
            if not len(pick):  # nothing fits what is given: keep it
                cand = self._forced(beat_gain[:, b], kind, fixed_row, pitches[0], tonic, progressions)
                parent, pick, total = np.zeros(1, int), np.zeros(1, int), score[:1] - 5.0
            score, pitches, chord = total, cand.pitches[pick], cand.chord[pick]
            bar_ago = np.concatenate([bar_ago[parent, 1:], pitches[:, None]], axis=1)
            history.append((parent, pitches))
        path = np.zeros((beats, tracks), int)
        k = 0
        for b in range(beats - 1, -1, -1):
            parent, chosen = history[b]
            path[b] = chosen[k]
            k = parent[k]
        return path

    def _scores(
        self,
        cand: Voicings,
        score: np.ndarray,
        prev: np.ndarray,
        prev_chord: np.ndarray,
        bar_ago: np.ndarray,
        gain_by_pitch: np.ndarray,
        kind: np.ndarray,
        progressions: Progressions,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(beams, PRUNE) candidates each beam keeps and (beams, PRUNE) its score after each."""
        rows = cand.pitches
        free = kind == FREE
        gain = -cand.cost
        for t in np.nonzero(free)[0]:
            gain = gain + gain_by_pitch[t, rows[:, t]]
        if prev_chord[0] < 0:  # the first beat
            total = score[:, None] + gain[None] + progressions.start[cand.chord][None]
        else:
            total = score[:, None] + gain[None] + progressions.after[prev_chord][:, cand.chord]
        for t in np.nonzero(kind == HELD)[0]:
            total[rows[None, :, t] != prev[:, None, t]] = -np.inf
        keep = min(PRUNE, total.shape[1])
        idx = (
            np.argpartition(-total, keep - 1, axis=1)[:, :keep]
            if keep < total.shape[1]
            else np.broadcast_to(np.arange(keep), total.shape).copy()
        )
        total = np.take_along_axis(total, idx, axis=1)
        if prev_chord[0] < 0:
            return idx, total
        chosen = rows[idx]  # (beams, keep, tracks)
        moves = chosen - prev[:, None]
        sounding = kind != SILENT
        for t in np.nonzero(free | (kind == FIXED))[0]:
            total = total - MOTION[int(t == len(kind) - 1)][np.minimum(np.abs(moves[:, :, t]), MOTION.shape[1] - 1)]
        for t in np.nonzero(free)[0]:
            total = total - BAR_ECHO_COST * (chosen[:, :, t] == bar_ago[:, 0, None, t])
        for i, j in itertools.combinations(np.nonzero(sounding)[0], 2):
            before = ((prev[:, i] - prev[:, j]) % 12)[:, None]
            after = (chosen[:, :, i] - chosen[:, :, j]) % 12
            same_way = (moves[:, :, i] != 0) & (np.sign(moves[:, :, i]) == np.sign(moves[:, :, j]))
            total = total - PARALLEL_COST * (same_way & (before == after) & ((after == 0) | (after == 7)))
        return idx, total

    def _forced(
        self,
        emission: np.ndarray,
        kind: np.ndarray,
        fixed_row: np.ndarray,
        prev: np.ndarray,
        tonic: int,
        progressions: Progressions,
    ) -> Voicings:
        """The one voicing left when no chord fits the given notes: given pitches, held notes
        going on, and for the rest the generator's most likely pitch in the voice's range. Its
        chord is what it sounds (the next chord follows it), or none."""
        row = np.where(fixed_row >= 0, fixed_row, prev)
        for t, (low, high) in enumerate(self.ranges):
            if kind[t] in (FREE, SILENT) or row[t] < 0:
                row[t] = low + int(emission[t, low : high + 1].argmax())
        sounding = [p for p, k in zip(row, kind) if k != SILENT]
        chord = progressions.index(frozenset(int(p - tonic) % 12 for p in sounding))
        return Voicings(row[None], np.array([chord]), np.zeros(1), np.zeros(1, int))

    # --- notes ----------------------------------------------------------------------------------

    def _notes(
        self,
        skeleton: list[list[tuple[int, int, int]]],
        path: np.ndarray,
        log_emission: np.ndarray,
        tonic: int,
        mode: str,
    ) -> list[Note]:
        """Each skeleton note's pitch: given, its beat's voicing, or (between beats) a passing or
        neighbour tone of the scale near the notes on either side that the generator likes best."""
        scale = {(tonic + s) % 12 for s in SCALES[mode]}
        notes: list[Note] = []
        for track, voice in enumerate(skeleton):
            low, high = self.ranges[track]
            motion = BASS_MOTION if track == len(skeleton) - 1 else UPPER_MOTION
            before = -1
            for start, length, given in voice:
                if given >= 0:
                    pitch = given
                elif start % STEPS_PER_BEAT == 0:
                    pitch = int(path[start // STEPS_PER_BEAT, track])
                else:
                    nxt = start // STEPS_PER_BEAT + 1
                    after = int(path[nxt, track]) if nxt < len(path) else -1
                    pitch = _ornament(before, after, low, high, scale, log_emission[track, start], motion)
                notes.append((track, pitch, start, length))
                before = pitch
        return sorted(notes, key=lambda n: (n[2], n[0]))


def _best(scored: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BEAM best (beam, candidate) pairs: each one's parent beam, candidate and score."""
    idx, total = scored
    flat = np.argsort(-total, axis=None)[:BEAM]
    flat = flat[np.isfinite(total.flat[flat])]
    parent, column = np.unravel_index(flat, total.shape)
    return parent, idx[parent, column], total[parent, column]


def _ornament(
    before: int, after: int, low: int, high: int, scale: set[int], log_emission: np.ndarray, motion: np.ndarray
) -> int:
    options = np.array([p for p in range(low, high + 1) if p % 12 in scale])
    if before < 0 and after < 0:
        return int(options[log_emission[options].argmax()])
    cost = np.zeros(len(options))
    for anchor in (before, after):
        if anchor >= 0:
            cost += motion[np.minimum(np.abs(options - anchor), len(motion) - 1)]
    cost += 2.0 * (options == before)  # a note between beats that repeats the one before is no ornament
    return int(options[(log_emission[options] - cost).argmax()])


def _skeleton(
    decoded: list[Note], given: Sequence[Note], given_voices: Sequence[int], given_steps: int, steps: int
) -> list[list[tuple[int, int, int]]]:
    """Per voice, its notes as (start, length, given pitch or -1): the given ones, then the roll's
    where nothing is given. A roll's note that starts between beats and goes on over the next beat
    starts on that beat instead, the note before it held until then (a note tied over a beat from
    an off-beat start is rare in chorales, and each beat must get a chord tone)."""
    tracks = 1 + max([n[0] for n in decoded] + [n[0] for n in given] + [3])
    voices: list[list[tuple[int, int, int]]] = [[] for _ in range(tracks)]
    for track, pitch, start, length in given:
        if track in given_voices or start < given_steps:
            voices[track].append((start, length, pitch))
    for track, _, start, length in sorted(decoded, key=lambda n: (n[0], n[2])):
        if track in given_voices:
            continue
        end = start + length
        start = max(start, given_steps)
        beat_after = -(-start // STEPS_PER_BEAT) * STEPS_PER_BEAT
        if start < beat_after < end:
            voice = voices[track]
            if voice and voice[-1][2] < 0 and sum(voice[-1][:2]) == start:
                voice[-1] = (voice[-1][0], beat_after - voice[-1][0], -1)
            start = beat_after
        if start < min(end, steps):
            voices[track].append((start, min(end, steps) - start, -1))
    return [sorted(v) for v in voices]


def _beat_kinds(skeleton: list[list[tuple[int, int, int]]], beats: int, tracks: int) -> tuple[np.ndarray, np.ndarray]:
    """(beats, tracks) what each voice does at each beat (FREE, HELD, FIXED, SILENT) and the given
    pitch where FIXED."""
    kinds = np.full((beats, tracks), SILENT)
    fixed = np.full((beats, tracks), -1)
    for track, voice in enumerate(skeleton[:tracks]):
        for start, length, given in voice:
            first = -(-start // STEPS_PER_BEAT)
            for b in range(first, min(beats, (start + length - 1) // STEPS_PER_BEAT + 1)):
                if given >= 0:
                    kinds[b, track], fixed[b, track] = FIXED, given
                else:
                    kinds[b, track] = FREE if b * STEPS_PER_BEAT == start else HELD
    return kinds, fixed


def _voicings(
    chords: Sequence[frozenset[int]], tonic: int, ranges: Sequence[tuple[int, int]], free_melody: bool
) -> Voicings:
    """All voicings of the chords (see Voicer.voicings): voices in order (a lower voice never above
    a higher one), neighbouring upper voices at most an octave apart, tenor and bass at most a
    twelfth, each voice in its range, and the chord's pitch classes all sounding."""
    tables = []
    first = 1 if free_melody else 0
    for index, chord in enumerate(chords):
        absolute = {(tonic + c) % 12 for c in chord}
        options = [[p for p in range(low, high + 1) if p % 12 in absolute] for low, high in ranges[first:]]
        grid = np.array(list(itertools.product(*options)), int).reshape(-1, len(options))
        grid = np.concatenate([np.full((len(grid), first), -1), grid], axis=1)
        upper = range(first, len(ranges) - 2)  # soprano-alto (unless the melody is given), alto-tenor
        ok = np.all(grid[:, first:-1] >= grid[:, first + 1 :], axis=1)
        ok &= np.all([grid[:, t] - grid[:, t + 1] <= 12 for t in upper], axis=0)
        ok &= grid[:, -2] - grid[:, -1] <= 19
        grid = grid[ok]
        counts = np.zeros((len(grid), 12), int)
        for t in range(first, len(ranges)):
            np.add.at(counts, (np.arange(len(grid)), (grid[:, t] - tonic) % 12), 1)
        lower = counts.copy()
        if not free_melody:
            np.add.at(lower, (np.arange(len(grid)), (grid[:, 0] - tonic) % 12), -1)
        lower_classes = (lower > 0) @ (1 << np.arange(12))
        whole = (counts > 0).sum(axis=1) >= len(chord) - first
        cost = (counts > 1) @ _doubling_costs(chord)
        tables.append((grid[whole], np.full(int(whole.sum()), index), cost[whole], lower_classes[whole]))
    pitches, chord_of, cost, lower_classes = (np.concatenate(parts) for parts in zip(*tables))
    return Voicings(pitches, chord_of, cost.astype(float), lower_classes)


def _doubling_costs(chord: frozenset[int]) -> np.ndarray:
    """(12,) what doubling each pitch class (above the tonic) costs in this chord: Bach doubles a
    triad's root most, its fifth less, its third seldom, the leading tone never."""
    root = _root(chord)
    cost = np.zeros(12)
    for c in chord:
        cost[c] = 0.0 if c == root else 0.3 if (c - root) % 12 == 7 else 0.8
    cost[11] += 1.5
    return cost


def _root(chord: frozenset[int]) -> int:
    """The pitch class the chord's shape stacks on (harmony's triads and sevenths)."""
    for shape in CHORD_SHAPES:
        for root in range(12):
            if chord == frozenset((root + i) % 12 for i in shape):
                return root
    return min(chord)


def _with_melody(table: Voicings, melody: int, tonic: int, progressions: Progressions) -> Voicings:
    """The voicings under a given melody pitch: lower voices at or below it and within an octave
    of it; the chord whole with the melody, or whole without it (the melody then a non-chord tone,
    which costs)."""
    keep = (table.pitches[:, 1] <= melody) & (melody - table.pitches[:, 1] <= 12)
    under = table[keep]
    chords = progressions.masks[under.chord]
    bit = 1 << ((melody - tonic) % 12)
    in_chord = (chords & bit) != 0
    ok = (in_chord & ((under.lower_classes | bit) == chords)) | (~in_chord & (under.lower_classes == chords))
    pitches = under.pitches.copy()
    pitches[:, 0] = melody
    cost = under.cost + NONCHORD_MELODY_COST * ~in_chord
    return Voicings(pitches, under.chord, cost, under.lower_classes)[ok]


def _classes_mask(classes: frozenset[int] | Sequence[int]) -> int:
    return sum(1 << c for c in set(classes))
