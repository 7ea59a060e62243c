"""Notes: piano rolls to notes and back, keys, transposition and Standard MIDI Files."""

from __future__ import annotations

import io
from collections.abc import Sequence

import mido
import numpy as np

from ganbridge.generators.music.model import (
    CHORALE_MEAN_PITCH,
    MODES,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TICKS_PER_BEAT,
    TONICS,
    MusicConfig,
)

Note = tuple[int, int, int, int]  # (track, pitch, start_step, length_steps)

# Krumhansl-Kessler key profiles (probe-tone ratings), C major / C minor.
KEY_PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


def allowed_rows(config: MusicConfig, shift: int = 0) -> np.ndarray:
    """(tracks, pitches) booleans: the rows each voice may sound, by the config's voice ranges
    moved down by `shift` (the transposition the notes will get)."""
    pitches = config.low + np.arange(config.pitches)
    allowed = np.ones((config.n_tracks, config.pitches), bool)
    for track, (low, high) in enumerate(config.voice_ranges or []):
        allowed[track] = (pitches + shift >= low) & (pitches + shift <= high)
    return allowed


def decode_piece(
    probs: np.ndarray, config: MusicConfig, threshold: float, mode: str, key: str | None
) -> tuple[list[Note], str]:
    """A roll's notes in `key` ('D minor'; None: as generated, in `mode`), and the key they are in:
    `key`, or for None the one the 24-key detector hears. With the config's voice ranges, each
    voice stays inside its range after transposing: the roll is read a second time, with the
    ranges moved by the transposition the first reading needs."""
    notes = decode_roll(probs, config, threshold, allowed_rows(config))
    shift = 0 if key is None else transposition(notes, key, detect_key(notes, mode)[0])
    if config.voice_ranges and shift:
        notes = decode_roll(probs, config, threshold, allowed_rows(config, shift))
    notes = [(t, p + shift, s, n) for t, p, s, n in notes]
    return notes, key or key_name(*detect_key(notes))


def decode_roll(
    probs: np.ndarray, config: MusicConfig, threshold: float, allowed: np.ndarray | None = None
) -> list[Note]:
    """Frame/onset probabilities -> notes, one voice per track (chorale voices are monophonic),
    each on the rows `allowed` for it (tracks x pitches; default all).

    As in onsets-and-frames transcription, a sounding note goes on while its frame stays above
    `threshold` and its onset does not rise above it; only then does the voice move to its most
    likely pitch. A pitch that is merely a little more likely for one step does not cut a note
    short. One threshold for both (1 - density) makes more density more notes: a lower one keeps
    fainter pitches and also restarts a note where the model is less sure of an onset."""
    notes: list[Note] = []
    for track in range(probs.shape[0] // 2):
        frames, onsets = probs[2 * track], probs[2 * track + 1]
        if allowed is not None:
            frames = frames * allowed[track]
        start, current = 0, -1
        for step in range(len(frames) + 1):
            if step < len(frames):
                holds = current >= 0 and frames[step, current] > threshold and onsets[step, current] <= threshold
                best = int(frames[step].argmax())
                pitch = current if holds else (best if frames[step, best] > threshold else -1)
                new_note = not holds
            else:
                pitch, new_note = -1, True
            if new_note and (current >= 0 or pitch >= 0):
                if current >= 0:
                    notes.append((track, config.low + current, start, step - start))
                start, current = step, pitch
    return sorted(notes, key=lambda n: (n[2], n[0]))


def notes_to_roll(notes: Sequence[Note], config: MusicConfig, steps: int) -> np.ndarray:
    """Notes -> binary frame/onset roll (2*tracks, steps, pitches); notes out of range are dropped."""
    roll = np.zeros((2 * config.n_tracks, steps, config.pitches), np.float32)
    for track, pitch, start, length in notes:
        row = pitch - config.low
        if 0 <= row < config.pitches and 0 <= start < steps:
            roll[2 * track, start : start + length, row] = 1
            roll[2 * track + 1, start, row] = 1
    return roll


def detect_key(notes: Sequence[Note], mode: str | None = None) -> tuple[int, str]:
    """(tonic pitch class, mode) by Krumhansl-Schmuckler: duration-weighted pitch classes
    correlated with the 24 key profiles (or the 12 of one mode)."""
    hist = np.zeros(12)
    for _, pitch, _, length in notes:
        hist[pitch % 12] += length
    if not hist.any():
        return 0, mode or "major"
    best = (-2.0, 0, "major")
    for m in [mode] if mode else MODES:
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(KEY_PROFILES[m], tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, m)
    return best[1], best[2]


def key_name(tonic: int, mode: str) -> str:
    return f"{TONICS[tonic]} {mode}"


def transposition(notes: Sequence[Note], key: str, tonic: int) -> int:
    """The semitones that take notes with this tonic to the tonic of `key` ('D minor'): of the
    shifts that reach it, the one that puts the piece's mean pitch nearest the chorales' (so each
    voice stays near its range)."""
    shift = (TONICS.index(key.split()[0]) - tonic + 6) % 12 - 6
    if notes:
        mean = float(np.mean([p for _, p, _, _ in notes]))
        shift = min((shift - 12, shift, shift + 12), key=lambda s: abs(mean + s - CHORALE_MEAN_PITCH))
    return shift


def notes_to_midi(
    notes: Sequence[Note],
    bars: int,
    tempo: float,
    tracks: Sequence[int],
    programs: Sequence[int],
    names: Sequence[str],
    gate: float = 1.0,
) -> bytes:
    """A type-1 standard MIDI file: a conductor track (tempo, 4/4) and one track per voice; each
    note sounds for `gate` of its length (1: legato)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    tick = TICKS_PER_BEAT // STEPS_PER_BEAT
    conductor = mido.MidiTrack()
    conductor += [
        mido.MetaMessage("track_name", name="ganbridge", time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        mido.MetaMessage("end_of_track", time=bars * STEPS_PER_BAR * tick),
    ]
    mid.tracks.append(conductor)
    for channel, track in enumerate(tracks):
        events = []
        for t, pitch, start, length in notes:
            if t == track:
                velocity = velocity_at(start)
                end = start * tick + max(1, round(length * tick * gate))
                events += [(start * tick, 1, pitch, velocity), (end, 0, pitch, 0)]
        events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at the same tick
        mt = mido.MidiTrack()
        mt.append(mido.MetaMessage("track_name", name=names[track], time=0))
        mt.append(mido.Message("program_change", channel=channel, program=programs[track], time=0))
        now = 0
        for at, is_on, pitch, velocity in events:
            kind = "note_on" if is_on else "note_off"
            mt.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=at - now))
            now = at
        mt.append(mido.MetaMessage("end_of_track", time=max(0, bars * STEPS_PER_BAR * tick - now)))
        mid.tracks.append(mt)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def midi_voices(data: bytes) -> list[list[tuple[int, int, int]]]:
    """A standard MIDI file's voices, highest first, each as (pitch, start_step, length_steps) on
    the 16th-note grid: one per note track (type 1) or channel (type 0). ValueError, saying why,
    for a file that is not MIDI or not in 4/4."""
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # mido raises several kinds for broken files
        raise ValueError(f"unreadable MIDI ({type(e).__name__}: {e})") from None
    per_beat = mid.ticks_per_beat
    voices: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for ti, track in enumerate(mid.tracks):
        now, sounding = 0, {}
        for msg in track:
            now += msg.time
            if msg.type == "time_signature" and (msg.numerator, msg.denominator) != (4, 4):
                raise ValueError(f"time signature {msg.numerator}/{msg.denominator} (only 4/4)")
            if msg.type not in ("note_on", "note_off"):
                continue
            key = (ti if mid.type == 1 else 0, msg.channel if mid.type == 0 else 0)
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[(key, msg.note)] = now
            elif (key, msg.note) in sounding:
                start = sounding.pop((key, msg.note))
                s = round(start * STEPS_PER_BEAT / per_beat)
                e = max(s + 1, round(now * STEPS_PER_BEAT / per_beat))
                voices.setdefault(key, []).append((msg.note, s, e - s))
    return sorted((sorted(v, key=lambda n: n[1]) for v in voices.values()), key=lambda v: -np.mean([n[0] for n in v]))


def velocity_at(step: int) -> int:
    """A light metric accent: downbeats loudest, then beats, then off-beats."""
    if step % STEPS_PER_BAR == 0:
        return 96
    return 84 if step % STEPS_PER_BEAT == 0 else 72


def note_list(notes: Sequence[Note], tracks: Sequence[int], gate: float = 1.0) -> list[list]:
    """The protocol's notes (docs/reference/protocol.md): [track, pitch, velocity, start_beat, length_beats], tracks renumbered
    in output order (the MIDI channel order); each length is the sounding `gate` of the note's, as in the MIDI file."""
    index = {t: i for i, t in enumerate(tracks)}
    per_beat = TICKS_PER_BEAT // STEPS_PER_BEAT
    return [
        [index[t], p, velocity_at(s), s / STEPS_PER_BEAT, max(1, round(n * per_beat * gate)) / TICKS_PER_BEAT]
        for t, p, s, n in notes
        if t in index
    ]
