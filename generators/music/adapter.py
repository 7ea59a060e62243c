"""The bridge adapter for music: params, keys, MIDI and WAV outputs."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, create_model, field_validator

from ganbridge.generators.base import (
    Cost,
    DiscretePart,
    Latent,
    ModelParams,
    ModelSetGenerator,
    Output,
    each_alone,
    one_of,
)
from ganbridge.generators.checkpoint import CheckpointError
from ganbridge.generators.music.model import (
    AUTO,
    KEYS,
    MAX_BARS,
    MODES,
    LoadedMusicNetwork,
    MusicNetwork,
    latent_shapes,
)
from ganbridge.generators.music.notes import Note, note_list, notes_to_midi
from ganbridge.generators.music.voicing import Voicer, decode_piece

# The key names are built from the tonics and modes, which a static Literal cannot spell; pydantic
# reads the annotation at run time (so the schema has the enum), a type checker sees a str.
if TYPE_CHECKING:
    KeyName = str
else:
    KeyName = Literal[(AUTO, *KEYS)]


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

    def __init__(self, models: Sequence[LoadedMusicNetwork], device: str = "cpu"):
        self._set_models(models, device)
        first = next(iter(self.models.values())).net.config
        if any(m.net.config.tracks != first.tracks for m in self.models.values()):
            raise CheckpointError("all music models must have the same tracks")
        self.track_names = first.tracks
        # Four-part decoding for the models that recorded their training chorales' chords.
        self.voicers = {
            name: Voicer(m.net.config) if m.net.config.progressions else None for name, m in self.models.items()
        }
        self.soundfont: Path | None = None  # the bridge's soundfont setting, for WAV output
        self.params_model = music_params_model(list(self.models), first.tracks)

    def configure(self, *, soundfont: Path | None = None) -> None:
        self.soundfont = soundfont

    def latent_shapes(self, params: MusicParams) -> dict[str, tuple[int, ...]]:
        return latent_shapes(self.models[params.model].net.config, params.bars)

    def discrete_parts(self, params: MusicParams) -> dict[str, DiscretePart]:
        return {"mode": DiscretePart(len(MODES))} if params.key == AUTO else {}

    def batch_key(self, params: MusicParams) -> Hashable:
        return (params.model, params.bars)

    def max_batch(self, params: MusicParams) -> int:
        return 32

    def cost(self, params: MusicParams) -> Cost:
        return Cost("bars", params.bars, f"{params.bars} bar{'s' * (params.bars > 1)}")

    @staticmethod
    def mode_of(params: MusicParams, latent: Latent) -> int:
        """The requested mode, or for key=auto one drawn from the latent (reproducible)."""
        if params.key != AUTO:
            return MODES.index(params.key.split()[1])
        return int(latent["mode"][0] > 0)  # DiscretePart(2).index, exactly as recipes were made

    def pieces(self, params: Sequence[MusicParams], latents: Sequence[Latent]) -> list[Piece]:
        model = self.models[params[0].model]
        modes = [self.mode_of(p, z) for p, z in zip(params, latents)]
        # One item at a time: a batched pass can flip a note near the threshold (see each_alone).
        probs = each_alone(model.net.sample, latents, modes, [p.temperature for p in params])
        out = []
        for p, roll, mode in zip(params, probs, modes):
            asked = None if p.key == AUTO else p.key
            voicer = self.voicers[p.model]
            out.append(Piece(*decode_piece(roll, model.net.config, voicer, 1.0 - p.density, MODES[mode], asked)))
        return out

    def preflight(self, params: MusicParams) -> None:
        if params.format == "wav":
            from ganbridge.generators.music.audio import find_fluidsynth, find_soundfont

            find_fluidsynth()
            find_soundfont(self.soundfont)

    def render(self, params: Sequence[MusicParams], latents: Sequence[Latent]) -> list[Output]:
        from ganbridge.generators.music.audio import render_wav

        outputs = []
        for p, piece in zip(params, self.pieces(params, latents)):
            tracks = [self.track_names.index(t) for t in p.tracks]
            midi = notes_to_midi(piece.notes, p.bars, p.tempo, tracks, p.program, self.track_names)
            extra = {
                "bars": p.bars,
                "tempo": p.tempo,
                "key": piece.key,
                "tracks": list(p.tracks),
                "notes": note_list(piece.notes, tracks),
            }
            if p.format == "wav":
                outputs.append(
                    Output(data=render_wav(midi, self.soundfont), format="wav", mime="audio/wav", extra=extra)
                )
            else:
                outputs.append(Output(data=midi, format="mid", mime="audio/midi", extra=extra))
        return outputs
