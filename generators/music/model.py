"""A multi-track piano-roll GAN in the line of MuseGAN: four voices (SATB) generated together.

A piece is a roll of (channels, steps, pitches) with 16 steps per 4/4 bar and two channels per
track: "frame" (the pitch sounds at this step) and "onset" (a note starts here), so that a
repeated note is not merged into one long one. The latent has MuseGAN's four parts: one shared by
all tracks and bars, one per track, one per bar shared by the tracks, and one per bar and track.
The per-bar codes are mixed by 1-D convolutions over bars, then upsampled in time and pitch by
2-D convolutions with the tracks as channels, so voices see each other at the note level. The
generator is convolutional over bars: trained on 4-bar phrases, it makes 1-16 bars. It is
conditioned on mode (major/minor). The critic (a spectrally normalised projection critic with a
second, pitch-class (chroma) stream) and training are in train.py, the bridge adapter in adapter.py;
`binarize` is here beside the network as the differentiable twin of notes.py's `decode_roll`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbridge.generators.base import Latent
from ganbridge.generators.checkpoint import LoadedNetwork, load_model

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
    # Each voice's [lowest, highest] MIDI pitch, kept in decoding (notes.decode_piece) and in the
    # critic's reading (binarize); None: any row of the roll, as in models made before them.
    voice_ranges: list[list[int]] | None = None
    # Per mode, the training chorales' chords and chord changes (data.progressions), which
    # four-part decoding (voicing.py) scores by; None: each voice decoded on its own.
    progressions: dict[str, dict] | None = None

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
        "mode": (1,),  # for key=auto: major or minor, a choice (base.DiscretePart), not read by the network
        "tonic": (1,),  # for key=auto: the tonic, a choice of 12 as the mode is
    }


CHOICE_PARTS = ("mode", "tonic")  # the latent parts the network does not read


class MusicNetwork(nn.Module):
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
        holds = (current >= 0) & (f.gather(2, at_current) > threshold) & (o.gather(2, at_current) <= threshold)
        best_p, best = f.max(dim=2, keepdim=True)
        pitch = torch.where(holds, current, torch.where(best_p > threshold, best, -1))
        sounding = (pitch >= 0).float()
        hard_frames[:, :, step].scatter_(2, pitch.clamp(min=0), sounding)
        hard_onsets[:, :, step].scatter_(2, pitch.clamp(min=0), sounding * (~holds).float())
        current = pitch
    hard = torch.stack([hard_frames, hard_onsets], dim=2).flatten(1, 2)
    return hard + probs - probs.detach()


LoadedMusicNetwork = LoadedNetwork[MusicNetwork]


def load_music_network(path: Path, device: str = "cpu") -> LoadedMusicNetwork:
    return load_model(path, "music", lambda c: MusicNetwork(MusicConfig.from_dict(c)), device)
