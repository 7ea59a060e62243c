"""A multi-track piano-roll GAN in the line of MuseGAN: four voices (SATB) generated together.

A piece is a roll of (channels, steps, pitches) with 16 steps per 4/4 bar and two channels per
track: "frame" (the pitch sounds at this step) and "onset" (a note starts here), so that a
repeated note is not merged into one long one. The latent has MuseGAN's four parts: one shared by
all tracks and bars, one per track, one per bar shared by the tracks, and one per bar and track.
The per-bar codes are mixed by 1-D convolutions over bars, then upsampled in time and pitch by
2-D convolutions with the tracks as channels, so voices see each other at the note level. The
generator is convolutional over bars: trained on 4-bar phrases, it makes 1-16 bars. It is
conditioned on mode (major/minor); the critic is a spectrally normalised projection critic
with a second, pitch-class (chroma) stream. Training is in music_train.py.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import mido
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from generators.base import Cost, Latent, ModelSetGenerator, Output, each_alone
from generators.checkpoint import CheckpointError, CheckpointRef, load_model

STEPS_PER_BAR = 16  # 16th notes in 4/4
STEPS_PER_BEAT = 4
MAX_BARS = 16
TRACK_NAMES = ("soprano", "alto", "tenor", "bass")
MODES = ("major", "minor")
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KEYS = tuple(f"{t} {m}" for m in MODES for t in TONICS)
AUTO = "auto"
TICKS_PER_BEAT = 480
CHORALE_MEAN_PITCH = 61.0  # mean MIDI pitch of all notes of the four-part chorales

# Krumhansl-Kessler key profiles (probe-tone ratings), C major / C minor.
_PROFILES = {
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}


@dataclass
class MusicConfig:
    low: int = 33  # MIDI pitch of roll row 0 (A1)
    pitches: int = 56  # rows of the roll
    tracks: list[str] = field(default_factory=lambda: list(TRACK_NAMES))
    z_shared: int = 32
    z_track: int = 16
    z_bar: int = 32
    z_bar_track: int = 8
    width: int = 64  # channels of the last generator stage; earlier stages have 1.5x, 2x
    phrase_bars: int = 4  # the window the critic sees in training
    critic_bar_stats: bool = True  # the critic also sees pitches and onsets per bar and voice

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MusicConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)


def latent_shapes(config: MusicConfig, bars: int) -> dict[str, tuple[int, ...]]:
    t = config.n_tracks
    return {
        "shared": (config.z_shared,),
        "track": (t, config.z_track),
        "bar": (bars, config.z_bar),
        "bar_track": (bars, t, config.z_bar_track),
        "mode": (1,),
    }


class MusicGenerator(nn.Module):
    def __init__(self, config: MusicConfig):
        super().__init__()
        self.config = config
        c, t, w = config, config.n_tracks, config.width
        self.mode_embed = nn.Embedding(len(MODES), 16)
        per_bar = c.z_shared + t * c.z_track + c.z_bar + t * c.z_bar_track + 16
        self.temporal = nn.Sequential(  # mixes neighbouring bars (phrase structure)
            nn.Conv1d(per_bar, 4 * w, 3, padding=1, padding_mode="replicate", bias=False),
            nn.BatchNorm1d(4 * w),
            nn.ReLU(inplace=True),
            nn.Conv1d(4 * w, 4 * w, 3, padding=1, padding_mode="replicate", bias=False),
            nn.BatchNorm1d(4 * w),
            nn.ReLU(inplace=True),
        )
        self.to_half_bars = nn.Conv1d(4 * w, 2 * 4 * w, 1)  # each bar -> two half-bar codes
        self.half_norm = nn.BatchNorm1d(4 * w)
        chans = [4 * w, 4 * w, 3 * w, 2 * w]  # half bars -> quarter notes -> eighths -> 16ths
        blocks = []
        for cin, cout in zip(chans, chans[1:]):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm1d(cout),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)
        # Time is 1-D with pitch as channels: every step sees the whole chord across all voices.
        self.to_roll = nn.Conv1d(2 * w, 2 * t * c.pitches, 3, padding=1)

    def forward(self, z: dict[str, torch.Tensor], mode: torch.Tensor) -> torch.Tensor:
        """Latent parts + mode (N,) -> roll logits (N, 2*tracks, 16*bars, pitches)."""
        n, bars = z["bar"].shape[:2]
        per_bar = torch.cat(
            [
                z["shared"][:, None].expand(n, bars, -1),
                z["track"].flatten(1)[:, None].expand(n, bars, -1),
                z["bar"],
                z["bar_track"].flatten(2),
                self.mode_embed(mode)[:, None].expand(n, bars, -1),
            ],
            dim=2,
        )
        h = self.to_half_bars(self.temporal(per_bar.transpose(1, 2)))  # (N, 2*4w, bars)
        h = h.view(n, 2, -1, bars).permute(0, 2, 3, 1).reshape(n, -1, bars * 2)
        h = self.to_roll(self.blocks(F.relu(self.half_norm(h))))  # (N, 2T*P, 16*bars)
        steps = h.shape[-1]
        return h.view(n, 2 * self.config.n_tracks, self.config.pitches, steps).transpose(2, 3)

    @torch.no_grad()
    def sample(self, latents: Sequence[Latent], modes: Sequence[int], temperature: Sequence[float]) -> np.ndarray:
        """Latents -> frame/onset probabilities (N, 2*tracks, steps, pitches), float32."""
        device = next(self.parameters()).device
        scale = torch.tensor(list(temperature), dtype=torch.float32, device=device)
        z = {}
        for key in ("shared", "track", "bar", "bar_track"):
            part = torch.from_numpy(np.stack([lat[key] for lat in latents])).to(device)
            z[key] = part * scale.view(-1, *([1] * (part.dim() - 1)))
        mode = torch.tensor(list(modes), dtype=torch.long, device=device)
        return torch.sigmoid(self.forward(z, mode)).float().cpu().numpy()


def minibatch_spread(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """(N, F) -> (N, 1): how much features vary within small groups of the batch (ProGAN's
    minibatch stddev), so the critic can see a generator that plays the same phrase for every z."""
    n = h.shape[0]
    g = min(group, n)
    while n % g:
        g -= 1
    std = h.view(g, -1, h.shape[1]).std(dim=0, unbiased=False).mean(dim=1)  # (n/g,)
    return std.repeat(g)[:, None]


def binarize(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The roll `decode_roll` reads from these probabilities, with the sigmoid's gradient (a
    straight-through estimator). The critic must judge what the musician hears: a critic shown
    each step's most likely pitch instead trained a model whose voices, read by the decoder's hold
    rule, droned on one pitch for bars (UPC 1.1 against Bach's 2.8) while its own view changed
    pitch nearly every step (QN 0.3-0.5). Without binarising, the critic tells soft fake rolls from
    binary real ones by their values alone."""
    steps = probs.shape[2]
    frames, onsets = probs[:, 0::2].detach(), probs[:, 1::2].detach()
    hard_frames = torch.zeros_like(frames)
    hard_onsets = torch.zeros_like(onsets)
    current = torch.full(frames.shape[:2] + (1,), -1, dtype=torch.long, device=probs.device)
    for step in range(steps):
        f, o = frames[:, :, step], onsets[:, :, step]
        at_current = current.clamp(min=0)
        holds = (current >= 0) & (f.gather(2, at_current) > threshold) & (o.gather(2, at_current) <= 0.5)
        best_p, best = f.max(dim=2, keepdim=True)
        pitch = torch.where(holds, current, torch.where(best_p > threshold, best, -1))
        sounding = (pitch >= 0).float()
        hard_frames[:, :, step].scatter_(2, pitch.clamp(min=0), sounding)
        hard_onsets[:, :, step].scatter_(2, pitch.clamp(min=0), sounding * (~holds).float())
        current = pitch
    hard = torch.stack([hard_frames, hard_onsets], dim=2).flatten(1, 2)
    return hard + probs - probs.detach()


def chroma(roll: torch.Tensor, config: MusicConfig) -> torch.Tensor:
    """Frame channels folded to 12 pitch classes: (N, 2T, S, P) -> (N, T, S, 12)."""
    frames = roll[:, 0::2]
    pad = (config.low % 12, (-(config.low + config.pitches)) % 12)  # align row 0 to its pitch class
    x = F.pad(frames, pad)
    n, t, s, p = x.shape
    return x.view(n, t, s, p // 12, 12).sum(dim=3)


def bar_stats(roll: torch.Tensor) -> torch.Tensor:
    """Per voice and bar: how many pitches sound and how many notes start, (N, 2T, bars).
    A droning voice (one held pitch a bar) and a busy one differ plainly here, where a critic
    pooling convolution features over time could miss it (MuseGAN's UPC, QN read the same)."""
    n, ch, steps, p = roll.shape
    bars = roll.view(n, ch // 2, 2, steps // STEPS_PER_BAR, STEPS_PER_BAR, p)
    pitches = bars[:, :, 0].amax(dim=3).sum(dim=3) / 4.0
    onsets = bars[:, :, 1].sum(dim=(3, 4)) / 4.0
    return torch.cat([pitches, onsets], dim=1)


class MusicCritic(nn.Module):
    def __init__(self, config: MusicConfig):
        super().__init__()
        self.config = config
        t, w = config.n_tracks, config.width

        def conv(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
            return [spectral_norm(nn.Conv1d(cin, cout, k, stride=s, padding=p)), nn.LeakyReLU(0.2, inplace=True)]

        self.roll = nn.Sequential(  # 64 16ths -> 32 -> 16 -> 8 -> 4 (bars), pitch as channels
            *conv(2 * t * config.pitches, 2 * w, 3, 1, 1), *conv(2 * w, 4 * w, 4, 2, 1),
            *conv(4 * w, 4 * w, 4, 2, 1), *conv(4 * w, 4 * w, 4, 2, 1), *conv(4 * w, 4 * w, 4, 2, 1),
        )  # fmt: skip
        self.chroma = nn.Sequential(  # pitch classes per voice: harmony per beat, then per bar
            *conv(12 * t, 2 * w, 4, 4, 0), *conv(2 * w, 2 * w, 4, 4, 0),
        )  # fmt: skip
        stats = w if config.critic_bar_stats else 0
        if stats:
            self.stats = nn.Sequential(*conv(2 * t, w, 1, 1, 0), *conv(w, w, 1, 1, 0))
        feats = 4 * w + 2 * w + stats + 1  # + the minibatch spread
        self.head = spectral_norm(nn.Linear(feats, 1))
        self.project = spectral_norm(nn.Embedding(len(MODES), feats))

    def features(self, roll: torch.Tensor) -> torch.Tensor:
        n, ch, steps, p = roll.shape
        a = self.roll(roll.transpose(2, 3).reshape(n, ch * p, steps)).mean(dim=2)
        cr = chroma(roll, self.config)  # (N, T, S, 12)
        b = self.chroma(cr.permute(0, 1, 3, 2).reshape(n, -1, steps)).mean(dim=2)
        parts = [a, b]
        if self.config.critic_bar_stats:
            parts.append(self.stats(bar_stats(roll)).mean(dim=2))
        h = torch.cat(parts, dim=1)
        return torch.cat([h, minibatch_spread(h)], dim=1)

    def forward(self, roll: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        h = self.features(roll)
        return self.head(h).squeeze(1) + (self.project(mode) * h).sum(dim=1)


# --- rolls, notes and MIDI --------------------------------------------------------------------

Note = tuple[int, int, int, int]  # (track, pitch, start_step, length_steps)


def decode_roll(probs: np.ndarray, config: MusicConfig, threshold: float) -> list[Note]:
    """Frame/onset probabilities -> notes, one voice per track (chorale voices are monophonic).

    As in onsets-and-frames transcription, a sounding note goes on while its frame stays above
    `threshold` and no onset is predicted for it; only then does the voice move to its most likely
    pitch. A pitch that is merely a little more likely for one step does not cut a note short."""
    notes: list[Note] = []
    for track in range(probs.shape[0] // 2):
        frames, onsets = probs[2 * track], probs[2 * track + 1]
        start, current = 0, -1
        for step in range(len(frames) + 1):
            if step < len(frames):
                holds = current >= 0 and frames[step, current] > threshold and onsets[step, current] <= 0.5
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
            r = float(np.corrcoef(hist, np.roll(_PROFILES[m], tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, m)
    return best[1], best[2]


def key_name(tonic: int, mode: str) -> str:
    return f"{TONICS[tonic]} {mode}"


def transpose_to(notes: list[Note], key: str) -> tuple[list[Note], int]:
    """Transpose to the tonic of `key` ('D minor'): of the shifts that reach it, the one that puts
    the piece's mean pitch nearest the chorales' (so each voice stays in its range)."""
    name, mode = key.split()
    tonic, _ = detect_key(notes, mode)
    shift = (TONICS.index(name) - tonic + 6) % 12 - 6
    if notes:
        mean = float(np.mean([p for _, p, _, _ in notes]))
        shift = min((shift - 12, shift, shift + 12), key=lambda s: abs(mean + s - CHORALE_MEAN_PITCH))
    return [(t, p + shift, s, n) for t, p, s, n in notes], shift


def notes_to_midi(
    notes: Sequence[Note], bars: int, tempo: float, tracks: Sequence[int], programs: Sequence[int], names: Sequence[str]
) -> bytes:
    """A type-1 standard MIDI file: a conductor track (tempo, 4/4) and one track per voice."""
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
                events += [(start * tick, 1, pitch, velocity), ((start + length) * tick, 0, pitch, 0)]
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


def velocity_at(step: int) -> int:
    """A light metric accent: downbeats loudest, then beats, then off-beats."""
    if step % STEPS_PER_BAR == 0:
        return 96
    return 84 if step % STEPS_PER_BEAT == 0 else 72


def note_list(notes: Sequence[Note], tracks: Sequence[int]) -> list[list]:
    """DESIGN.md §2 notes: [track, pitch, velocity, start_beat, length_beats], tracks renumbered
    in output order (the MIDI channel order)."""
    index = {t: i for i, t in enumerate(tracks)}
    return [[index[t], p, velocity_at(s), s / STEPS_PER_BEAT, n / STEPS_PER_BEAT] for t, p, s, n in notes if t in index]


# --- the bridge generator ---------------------------------------------------------------------


def music_params_model(models: list[str], track_names: Sequence[str]) -> type[BaseModel]:
    tracks = Literal[tuple(track_names)]
    n = len(track_names)

    def unique_tracks(value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each track may be named once")
        return value

    fields = {
        "model": (Literal[tuple(models)], Field(models[0], title="Model", description="Which trained music model")),
        "bars": (int, Field(4, ge=1, le=MAX_BARS, title="Bars", description="Length in 4/4 bars")),
        "tempo": (float, Field(90.0, ge=30, le=240, title="Tempo", description="Beats (quarter notes) per minute")),
        "key": (
            Literal[(AUTO, *KEYS)],
            Field(AUTO, title="Key", description="Transpose to this tonic and mode; auto: as generated"),
        ),
        "seed": (int | None, Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")),
        "temperature": (
            float,
            Field(1.0, ge=0.0, le=1.5, title="Temperature", description="Latent scale: lower is more typical"),
        ),
        "density": (
            float,
            Field(0.5, ge=0.0, le=1.0, title="Density", description="Higher keeps less certain notes (more notes)"),
        ),
        "tracks": (
            list[tracks],
            Field(list(track_names), min_length=1, max_length=n, title="Tracks", description="Voices to output"),
        ),
        "program": (
            list[int],
            Field(
                [0] * n,
                min_length=n,
                max_length=n,
                title="Programs",
                description=f"General MIDI program (0-127) for each of {', '.join(track_names)}",
            ),
        ),
        "format": (
            Literal["mid", "wav"],
            Field("mid", title="Format", description="mid: a MIDI file; wav: audio rendered by FluidSynth"),
        ),
    }
    validators = {
        "check_tracks": field_validator("tracks")(unique_tracks),
        "check_program": field_validator("program")(_check_programs),
    }
    return create_model(
        "MusicParams",
        __config__=ConfigDict(extra="forbid", title="Music parameters"),
        __validators__=validators,
        **fields,
    )


def _check_programs(value: list[int]) -> list[int]:
    bad = [p for p in value if not 0 <= p <= 127]
    if bad:
        raise ValueError(f"General MIDI programs are 0-127, not {bad}")
    return value


@dataclass
class LoadedMusicModel:
    ref: CheckpointRef
    card: dict
    net: MusicGenerator


def load_music_model(path: Path, device: str = "cpu") -> LoadedMusicModel:
    net, card, ref = load_model(path, "music", lambda c: MusicGenerator(MusicConfig.from_dict(c)), device)
    return LoadedMusicModel(ref=ref, card=card, net=net)


@dataclass
class Piece:
    """One decoded result before encoding: notes in 16th steps and the key they are in."""

    notes: list[Note]
    key: str


class ChoraleGenerator(ModelSetGenerator):
    """Four-part harmony (soprano, alto, tenor, bass) as MIDI files, note lists or audio."""

    name = "music"
    kind = "music"
    description = "Four-part chorale-style harmony (MuseGAN-style piano-roll GAN); MIDI, note list or WAV"
    outputs = ["mid", "wav"]

    def __init__(self, models: Sequence[LoadedMusicModel], device: str = "cpu"):
        self._set_models(models, device)
        first = next(iter(self.models.values())).net.config
        if any(m.net.config.tracks != first.tracks for m in self.models.values()):
            raise CheckpointError("all music models must have the same tracks")
        self.track_names = first.tracks
        self.soundfont: Path | None = None  # the bridge's soundfont setting, for WAV output
        self.params_model = music_params_model(list(self.models), first.tracks)

    def latent_shapes(self, params: BaseModel) -> dict[str, tuple[int, ...]]:
        return latent_shapes(self.models[params.model].net.config, params.bars)

    def batch_key(self, params: BaseModel) -> Hashable:
        return (params.model, params.bars)

    def max_batch(self, params: BaseModel) -> int:
        return 32

    def cost(self, params: BaseModel) -> Cost:
        return Cost("bars", params.bars, f"{params.bars} bar{'s' * (params.bars > 1)}")

    @staticmethod
    def mode_of(params: BaseModel, latent: Latent) -> int:
        """The requested mode, or for key=auto one drawn from the latent (reproducible)."""
        if params.key != AUTO:
            return MODES.index(params.key.split()[1])
        return int(latent["mode"][0] > 0)

    def pieces(self, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Piece]:
        model = self.models[params[0].model]
        modes = [self.mode_of(p, z) for p, z in zip(params, latents)]
        # One item at a time: a batched pass can flip a note near the threshold (see each_alone).
        probs = each_alone(model.net.sample, latents, modes, [p.temperature for p in params])
        out = []
        for p, roll, mode in zip(params, probs, modes):
            notes = decode_roll(roll, model.net.config, 1.0 - p.density)
            if p.key == AUTO:
                tonic, found = detect_key(notes, MODES[mode])
                out.append(Piece(notes, key_name(tonic, found)))
            else:
                out.append(Piece(transpose_to(notes, p.key)[0], p.key))
        return out

    def preflight(self, params: BaseModel) -> None:
        if params.format == "wav":
            from generators.music_audio import find_fluidsynth, find_soundfont

            find_fluidsynth()
            find_soundfont(self.soundfont)

    def render(self, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        from generators.music_audio import render_wav

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
