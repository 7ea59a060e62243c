"""The bridge adapter for music: params, keys, MIDI and WAV outputs."""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, create_model, field_validator, model_validator

from ganbridge.generators.base import (
    Control,
    Cost,
    DiscretePart,
    Latent,
    ModelParams,
    ModelSetGenerator,
    Output,
    Unavailable,
    each_alone,
    one_of,
)
from ganbridge.generators.checkpoint import CheckpointError
from ganbridge.generators.music.model import (
    AUTO,
    CHOICE_PARTS,
    CHORALE_MEAN_PITCH,
    KEYS,
    MAX_BARS,
    MODES,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    TONICS,
    LoadedMusicNetwork,
    MusicNetwork,
    latent_shapes,
)
from ganbridge.generators.music.mood import MOODS, MoodEffect, mood_effect
from ganbridge.generators.music.notes import Note, detect_key, key_name, note_list, notes_to_midi
from ganbridge.generators.music.voicing import Voicer, decode_piece

# The key names are built from the tonics and modes, which a static Literal cannot spell; pydantic
# reads the annotation at run time (so the schema has the enum), a type checker sees a str.
if TYPE_CHECKING:
    KeyName = MoodName = str
else:
    KeyName = Literal[(AUTO, *KEYS)]
    MoodName = Literal[tuple(MOODS)]


class MusicParams(ModelParams):
    """A music request. `music_params_model` gives `model`, `tracks` and `program` their schema,
    which depends on the installed models (their names and voices)."""

    model_config = ConfigDict(extra="forbid", title="Music parameters")

    bars: int = Field(4, ge=1, le=MAX_BARS, title="Bars", description="Length in 4/4 bars")
    tempo: float = Field(90.0, ge=30, le=240, title="Tempo", description="Beats (quarter notes) per minute")
    key: KeyName = Field(AUTO, title="Key", description="Transpose to this tonic and mode; auto: as generated")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")
    temperature: float = Field(
        1.0, ge=0.0, le=1.5, title="Temperature", description="Latent scale: lower is more typical"
    )
    density: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        title="Density",
        description="Higher keeps less certain notes (more notes); above 0, which would keep none",
    )
    tracks: list[str]
    program: list[int]
    format: Literal["mid", "wav"] = Field(
        "mid", title="Format", description="mid: a MIDI file; wav: audio rendered by FluidSynth"
    )
    mood: MoodName = Field(
        "none",
        title="Mood",
        description="A named mood: sets valence and arousal (below), which act on mode, tempo, density, "
        "register and articulation",
    )
    valence: float | None = Field(
        None, ge=-1.0, le=1.0, title="Valence", description="-1 sad to +1 happy; empty: the mood's"
    )
    arousal: float | None = Field(
        None, ge=-1.0, le=1.0, title="Arousal", description="-1 calm to +1 excited; empty: the mood's"
    )
    melody: list[tuple[int, float, float]] = Field(
        [],
        max_length=MAX_BARS * STEPS_PER_BAR,
        title="Melody",
        description="Harmonize this soprano line, kept exactly: notes [pitch, start beat, length in beats] "
        "(OSC, Pd and --param: pitch:start:length,... or separated by /); empty or none: no melody",
    )
    opening: list[tuple[int, int, float, float]] = Field(
        [],
        max_length=4 * 4 * STEPS_PER_BAR,
        title="Opening",
        description="Continue this phrase of 1-4 bars, kept exactly, by `bars` more bars in its key: notes "
        "[voice (0 soprano to 3 bass), pitch, start beat, length in beats] (OSC: voice:pitch:start:length,...); "
        "empty or none: start afresh",
    )

    @field_validator("melody", "opening", mode="before")
    @classmethod
    def read_note_text(cls, value: Any) -> Any:
        """OSC, Pd and --param give notes as text: "60:0:1,62:1:1" or "60:0:1/62:1:1" (a Pd
        symbol cannot hold a comma), or a list of such texts; "none" (or nothing) is no notes."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and any(isinstance(v, str) for v in value):
            texts = [t for v in value for t in (re.split(r"[,/\s]+", v) if isinstance(v, str) else [v])]
            return [t.split(":") if isinstance(t, str) else t for t in texts if t != "" and t != "none"]
        return value

    @model_validator(mode="after")
    def check_given_notes(self) -> MusicParams:
        if self.melody and self.opening:
            raise ValueError("give a melody to harmonize or an opening to continue, not both")
        given = [("melody", 0, *note) for note in self.melody] + [("opening", *note) for note in self.opening]
        for name, voice, pitch, start, length in given:
            where = f"{name} note {[voice, pitch, start, length][name == 'melody' :]}"
            if not 0 <= pitch <= 127:
                raise ValueError(f"{where}: pitch must be a MIDI note 0-127")
            if not 0 <= voice <= 3:
                raise ValueError(f"{where}: voice must be 0 (soprano) to 3 (bass)")
            if not (math.isfinite(start) and math.isfinite(length)):
                raise ValueError(f"{where}: start and length must be finite numbers of beats")
            if start < 0 or length <= 0:
                raise ValueError(f"{where}: start must be 0 or more and length more than 0 beats")
            if not _on_grid(start) or not _on_grid(length):
                raise ValueError(f"{where}: start and length must be whole 16th notes (multiples of 0.25 beats)")
        if self.melody:
            ends = sorted((start, start + length) for _, start, length in self.melody)
            if ends[-1][1] > 4 * self.bars:
                raise ValueError(
                    f"melody: its last note ends at beat {ends[-1][1]:g}, after the {self.bars} bars asked"
                )
            if any(b[0] < a[1] for a, b in zip(ends, ends[1:])):
                raise ValueError("melody: notes overlap; a melody is one voice, one note at a time")
        if self.opening:
            end = max(start + length for _, _, start, length in self.opening)
            if end > 16:
                raise ValueError(f"opening: it ends at beat {end:g}; an opening is 1-4 bars (16 beats at most)")
            if self.total_bars > MAX_BARS:
                raise ValueError(f"opening of {self.opening_bars} bars and {self.bars} more: at most {MAX_BARS} in all")
        return self

    @property
    def effect(self) -> MoodEffect:
        """What the mood does (mood.py): valence and arousal as given, else the named mood's."""
        valence, arousal = MOODS[self.mood]
        return mood_effect(
            valence if self.valence is None else self.valence, arousal if self.arousal is None else self.arousal
        )

    @property
    def opening_bars(self) -> int:
        end = max((start + length for _, _, start, length in self.opening), default=0)
        return -int(-end // 4)

    @property
    def total_bars(self) -> int:
        """The bars of the result: an opening's and `bars` more, or `bars`."""
        return self.opening_bars + self.bars

    def given_notes(self) -> tuple[list[Note], list[Note]]:
        """(melody, opening) as notes in 16th steps, the melody as the soprano's."""
        steps = STEPS_PER_BEAT
        melody = [(0, pitch, round(start * steps), round(length * steps)) for pitch, start, length in self.melody]
        opening = [(v, p, round(start * steps), round(length * steps)) for v, p, start, length in self.opening]
        return melody, opening

    @field_validator("tracks")
    @classmethod
    def check_tracks(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each track may be named once")
        return value

    @field_validator("program")
    @classmethod
    def check_program(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 0 <= p <= 127]
        if bad:
            raise ValueError(f"General MIDI programs are 0-127, not {bad}")
        return value


def _on_grid(beats: float) -> bool:
    return abs(beats * STEPS_PER_BEAT - round(beats * STEPS_PER_BEAT)) < 1e-9


def _list_of(item: Any) -> Any:
    """`list[item]` of a run-time item type (see `one_of`)."""
    return list[item]


def music_params_model(models: list[str], track_names: Sequence[str]) -> type[MusicParams]:
    n = len(track_names)
    return create_model(
        "MusicParams",
        __base__=MusicParams,
        model=(one_of(models), Field(models[0], title="Model", description="Which trained music model")),
        tracks=(
            _list_of(one_of(track_names)),
            Field(list(track_names), min_length=1, max_length=n, title="Tracks", description="Voices to output"),
        ),
        program=(
            list[int],
            Field(
                [0] * n,
                min_length=n,
                max_length=n,
                title="Programs",
                description=f"General MIDI program (0-127) for each of {', '.join(track_names)}",
            ),
        ),
    )


@dataclass
class Piece:
    """One decoded result before encoding: notes in 16th steps and the key they are in."""

    notes: list[Note]
    key: str


class MusicGenerator(ModelSetGenerator[MusicParams, MusicNetwork]):
    """Four-part harmony (soprano, alto, tenor, bass) as MIDI files, note lists or audio."""

    name = "music"
    kind = "music"
    description = "Four-part chorale-style harmony (MuseGAN-style piano-roll GAN); MIDI, note list or WAV"
    outputs = ["mid", "wav"]
    direction_settings = {"bars": 4}
    direction_features = (
        "34 figures of the decoded notes, independent of length and key: pitch classes from the tonic "
        "(duration-weighted), each voice's mean pitch, range, notes per bar and mean melodic step, onsets on "
        "the beat / off-eighth / sixteenth, mean and spread of log note length, voices sounding at once"
    )

    def __init__(self, models: Sequence[LoadedMusicNetwork], device: str = "cpu"):
        self._set_models(models, device)
        first = next(iter(self.models.values())).net.config
        if any(m.net.config.tracks != first.tracks for m in self.models.values()):
            raise CheckpointError("all music models must have the same tracks")
        self.track_names = first.tracks
        self._voicers: dict[tuple[str, int], Voicer] = {}
        self.soundfont: Path | None = None  # the bridge's soundfont setting, for WAV output
        self.params_model = music_params_model(list(self.models), first.tracks)
        self._load_directions()

    def configure(self, *, soundfont: Path | None = None) -> None:
        self.soundfont = soundfont

    def voicer(self, model: str, lift: int) -> Voicer | None:
        """Four-part decoding for a model that recorded its training chorales' chords (None for
        one made before), its voices' ranges moved by `lift`; made once, its chord tables kept."""
        config = self.models[model].net.config
        if not config.progressions:
            return None
        if (model, lift) not in self._voicers:
            self._voicers[model, lift] = Voicer(config, lift)
        return self._voicers[model, lift]

    def latent_shapes(self, params: MusicParams) -> dict[str, tuple[int, ...]]:
        return latent_shapes(self.models[params.model].net.config, params.total_bars)

    def discrete_parts(self, params: MusicParams) -> dict[str, DiscretePart]:
        if params.key != AUTO or params.melody or params.opening:  # the key is asked or heard
            return {}
        tonic = {"tonic": DiscretePart(len(TONICS))}
        return tonic if params.effect.mode else {"mode": DiscretePart(len(MODES)), **tonic}

    # What steering moves beside the latent (mode and tonic are the latent's choices): how typical
    # the notes are, how many, and the mood's arousal (register, tempo, articulation); a request
    # that gives one (or a mood, for arousal) keeps it fixed.
    STEERED_CONTROLS = {
        "temperature": Control(0.5, 1.5),
        "density": Control(0.2, 0.8),
        "arousal": Control(-1.0, 1.0, fixed_by=("mood",)),
    }

    def steered_controls(self, params: MusicParams) -> dict[str, Control]:
        return dict(self.STEERED_CONTROLS)

    def control_value(self, params: Mapping[str, Any], name: str) -> float:
        if name == "arousal" and params.get(name) is None:  # the mood's
            return MOODS[params.get("mood", "none")][1]
        return super().control_value(params, name)

    def with_overrides(self, stored: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        # A mood asked for is that mood: the item's own valence and arousal (which would override
        # it) go, unless the request gives them too.
        if "mood" in overrides:
            stored = {**stored, "valence": None, "arousal": None}
        return super().with_overrides(stored, overrides)

    def direction_shapes(self, params: MusicParams) -> dict[str, tuple[int, ...]]:
        # The same move in every bar, so that a direction works at any length; mode and tonic are
        # choices (or fixed by the params), never part of a direction.
        shapes = self.latent_shapes(params)
        moving = {k: s for k, s in shapes.items() if k not in CHOICE_PARTS}
        return {**moving, "bar": (1, *shapes["bar"][1:]), "bar_track": (1, *shapes["bar_track"][1:])}

    look_standardized = True  # a look of pitches, counts and fractions

    def output_features(self, params: MusicParams, latents: Sequence[Latent]) -> np.ndarray:
        """What a listener hears of each decoded piece, whatever its length (see `heard`)."""
        bars = params.total_bars
        tracks = len(self.track_names)
        return np.stack([heard(p.notes, p.key, bars, tracks) for p in self.pieces([params] * len(latents), latents)])

    def batch_key(self, params: MusicParams) -> Hashable:
        return (params.model, params.total_bars)

    def max_batch(self, params: MusicParams) -> int:
        return 32

    def cost(self, params: MusicParams) -> Cost:
        bars = params.total_bars
        return Cost("bars", bars, f"{bars} bar{'s' * (bars > 1)}")

    @staticmethod
    def mode_of(params: MusicParams, latent: Latent) -> int:
        """The requested mode; for key=auto the mode heard in a given melody or opening, else the
        mood's, or else one drawn from the latent (reproducible)."""
        if params.key != AUTO:
            return MODES.index(params.key.split()[1])
        melody, opening = params.given_notes()
        if melody or opening:
            return MODES.index(detect_key([*melody, *opening])[1])
        if params.effect.mode:
            return MODES.index(params.effect.mode)
        return int(latent["mode"][0] > 0)  # DiscretePart(2).index, exactly as recipes were made

    @classmethod
    def key_of(cls, params: MusicParams, latent: Latent) -> str | None:
        """The key to decode in: the requested one; for key=auto the latent's tonic in its mode
        (None for a latent made before it had a tonic, and with a melody or an opening: their key)."""
        if params.key != AUTO:
            return params.key
        if params.melody or params.opening or "tonic" not in latent:
            return None
        tonic = DiscretePart(len(TONICS)).index(latent["tonic"])
        return key_name(tonic, MODES[cls.mode_of(params, latent)])

    def pieces(self, params: Sequence[MusicParams], latents: Sequence[Latent]) -> list[Piece]:
        model = self.models[params[0].model]
        modes = [self.mode_of(p, z) for p, z in zip(params, latents)]
        # One item at a time: a batched pass can flip a note near the threshold (see each_alone).
        probs = each_alone(model.net.sample, latents, modes, [p.temperature for p in params])
        out = []
        for p, z, roll, mode in zip(params, latents, probs, modes):
            melody, opening = p.given_notes()
            decoded = decode_piece(
                roll,
                model.net.config,
                self.voicer(p.model, p.effect.lift),
                1.0 - p.effect.density(p.density),
                MODES[mode],
                self.key_of(p, z),
                melody,
                opening,
                p.opening_bars * STEPS_PER_BAR,
            )
            heard = p.key == AUTO and not (melody or opening)  # auto reports the key a listener hears
            out.append(Piece(decoded[0], key_name(*detect_key(decoded[0])) if heard else decoded[1]))
        return out

    def preflight(self, params: MusicParams) -> None:
        if (params.melody or params.opening) and self.voicer(params.model, 0) is None:
            raise Unavailable(
                f"music model {params.model!r} was made before chord progressions were recorded, so it cannot "
                "harmonize a melody or continue an opening; train it again (ganbridge train music)"
            )
        if params.format == "wav":
            from ganbridge.generators.music.audio import find_fluidsynth, find_soundfont

            find_fluidsynth()
            find_soundfont(self.soundfont)

    def render(self, params: Sequence[MusicParams], latents: Sequence[Latent]) -> list[Output]:
        from ganbridge.generators.music.audio import render_wav

        outputs = []
        for p, piece in zip(params, self.pieces(params, latents)):
            tracks = [self.track_names.index(t) for t in p.tracks]
            effect = p.effect
            tempo = effect.tempo(p.tempo)
            midi = notes_to_midi(piece.notes, p.total_bars, tempo, tracks, p.program, self.track_names, effect.gate)
            extra = {
                "bars": p.total_bars,
                "tempo": tempo,
                "key": piece.key,
                "tracks": list(p.tracks),
                "notes": note_list(piece.notes, tracks, effect.gate),
            }
            look = heard(piece.notes, piece.key, p.total_bars, len(self.track_names))
            if p.format == "wav":
                data, fmt, mime = render_wav(midi, self.soundfont), "wav", "audio/wav"
            else:
                data, fmt, mime = midi, "mid", "audio/midi"
            outputs.append(Output(data=data, format=fmt, mime=mime, extra=extra, look=look))
        return outputs


def heard(notes: Sequence[Note], key: str, bars: int, tracks: int) -> np.ndarray:
    """A piece as a listener hears it, independent of its length and key: the duration-weighted
    pitch classes counted from the tonic (12); per voice its mean pitch, range, notes per bar and
    mean melodic step (4 per voice); where notes start in the beat (on it, on the off-eighth, on a
    sixteenth), the mean and spread of log2 note lengths, and how many voices sound at once."""
    tonic = TONICS.index(key.split()[0])
    degrees = np.zeros(12)
    for _, pitch, _, length in notes:
        degrees[(pitch - tonic) % 12] += length
    degrees /= max(degrees.sum(), 1)
    voices = [voice_figures([n for n in notes if n[0] == t], bars) for t in range(tracks)]
    starts = np.array([n[2] % STEPS_PER_BEAT for n in notes]) if notes else np.zeros(1, int)
    lengths = np.log2([max(n[3], 1) for n in notes]) if notes else np.zeros(1)
    onsets = [np.mean(starts == 0), np.mean(starts == 2), np.mean(starts % 2 == 1)]
    sounding = sum(n[3] for n in notes) / (bars * STEPS_PER_BAR)
    rhythm = [*onsets, lengths.mean(), lengths.std(), sounding]
    return np.concatenate([degrees, *voices, rhythm]).astype(np.float32)


def voice_figures(notes: list[Note], bars: int) -> list[float]:
    """One voice's mean pitch, range, notes per bar and mean melodic step (a silent voice: the
    chorales' mean pitch and no range, notes or steps)."""
    if not notes:
        return [CHORALE_MEAN_PITCH, 0.0, 0.0, 0.0]
    pitches = np.array([n[1] for n in sorted(notes, key=lambda n: n[2])], float)
    steps = np.abs(np.diff(pitches)).mean() if len(pitches) > 1 else 0.0
    return [pitches.mean(), pitches.max() - pitches.min(), len(pitches) / bars, float(steps)]
