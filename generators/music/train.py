"""Training loop for the music GAN: four-part pieces -> a MuseGAN-style piano-roll model.

WGAN-GP with five critic steps per generator step, as MuseGAN trained. The critic sees the fake
rolls binarised exactly as the decoder reads them into notes (a straight-through estimator passes
the sigmoid's gradient), so it judges what the musician hears and cannot tell real from fake by
soft values alone. Measured here on the chorales
over the first few hundred steps: hinge loss with one critic step collapsed (all samples alike
by step 400); WGAN-GP on soft probabilities made near-silent rolls; WGAN-GP with binarised fakes
kept samples diverse with realistic note counts. The generator is conditioned on mode; the critic
projects it. State is saved as safetensors to `OUT/state/`, so a killed run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganbridge.generators.checkpoint import write_card
from ganbridge.generators.gan.critic import minibatch_spread
from ganbridge.generators.gan.losses import mode_seeking_penalty
from ganbridge.generators.gan.plots import piano_roll, roll_sheet
from ganbridge.generators.gan.trainer import GanTrainer, GanTrainSettings
from ganbridge.generators.music.data import MusicData, PhraseSampler, progressions, voice_ranges
from ganbridge.generators.music.model import (
    CHOICE_PARTS,
    MODES,
    STEPS_PER_BAR,
    MusicConfig,
    MusicNetwork,
    binarize,
    latent_shapes,
)
from ganbridge.generators.music.notes import Note, notes_to_midi
from ganbridge.generators.music.voicing import Voicer, decode_piece

SPREAD_GROUP = 4  # phrases per group of the critic's minibatch spread


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
        return torch.cat([h, minibatch_spread(h, SPREAD_GROUP)[:, None]], dim=1)

    def forward(self, roll: torch.Tensor, mode: torch.Tensor) -> torch.Tensor:
        h = self.features(roll)
        return self.head(h).squeeze(1) + (self.project(mode) * h).sum(dim=1)


@dataclass(kw_only=True)
class MusicTrainSettings(GanTrainSettings):
    steps: int = 6000
    batch: int = 32
    lr_g: float = 3e-4
    lr_d: float = 3e-4
    loss: str = "wgan-gp"  # wgan-gp | hinge
    n_critic: int = 5  # critic steps per generator step
    straight_through: bool = True  # the critic sees the fake rolls as the decoder reads them
    gp_weight: float = 10.0
    mode_seeking: float = 0.1  # weight of MSGAN's mode-seeking term (0: off)
    config: MusicConfig = field(default_factory=MusicConfig)


def random_latents(config: MusicConfig, n: int, bars: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        k: torch.randn(n, *s, generator=gen) for k, s in latent_shapes(config, bars).items() if k not in CHOICE_PARTS
    }


class MusicTrainer(GanTrainer[MusicTrainSettings, MusicNetwork, MusicCritic]):
    kind = "music"

    def __init__(self, settings: MusicTrainSettings, command: str, data: MusicData):
        super().__init__(settings, command)
        self.data = data
        if settings.config.voice_ranges is None:  # kept by decoding, recorded in the model card
            settings.config.voice_ranges = voice_ranges(data.train, settings.config.n_tracks)
        if settings.config.progressions is None:  # scored by four-part decoding, recorded in the model card
            settings.config.progressions = progressions(data.train, settings.config.n_tracks)
        self.sampler = PhraseSampler(data.train, settings.config, seed=settings.seed)
        self.set_networks(MusicNetwork(settings.config).to(self.device), MusicCritic(settings.config).to(self.device))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=settings.lr_g, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=settings.lr_d, betas=(0.5, 0.9))
        mode_share = np.mean([p.mode for p in data.train]) if data.train else 0.5
        self.p_minor = float(mode_share)

    def _noise(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        c = self.s.config
        z = {k: v.to(self.device) for k, v in random_latents(c, self.s.batch, c.phrase_bars, self.gen).items()}
        modes = (torch.rand(self.s.batch, generator=self.gen) < self.p_minor).long().to(self.device)
        return z, modes

    def _fake(self, z: dict[str, torch.Tensor], modes: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(self.G(z, modes))
        return binarize(probs) if self.s.straight_through else probs

    def _critic_loss(
        self, real: torch.Tensor, real_modes: torch.Tensor, fake: torch.Tensor, modes: torch.Tensor
    ) -> torch.Tensor:
        if self.s.loss == "hinge":
            return F.relu(1 - self.D(real, real_modes)).mean() + F.relu(1 + self.D(fake, modes)).mean()
        loss = self.D(fake, modes).mean() - self.D(real, real_modes).mean()
        # Gradient penalty on mixes of real and fake (the mode of each mix is its real one's).
        t = torch.rand(real.shape[0], 1, 1, 1, generator=self.gen).to(self.device)
        mix = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(mix, real_modes).sum(), mix, create_graph=True)
        return loss + self.s.gp_weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def _critic_step(self) -> torch.Tensor:
        rolls, roll_modes = self.sampler.batch(self.s.batch)
        real = torch.from_numpy(rolls).to(self.device)
        real_modes = torch.from_numpy(roll_modes).to(self.device)
        z, modes = self._noise()
        with torch.no_grad():
            fake = self._fake(z, modes)
        loss_d = self._critic_loss(real, real_modes, fake, modes)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return loss_d

    def train_step(self) -> dict:
        loss_d = [self._critic_step() for _ in range(self.s.n_critic)][-1]  # the last is logged
        z, modes = self._noise()
        half = self.s.batch // 2
        modes[half : 2 * half] = modes[:half]  # pairs with the same mode and different z
        probs = torch.sigmoid(self.G(z, modes))
        fake = binarize(probs) if self.s.straight_through else probs
        loss_g = -self.D(fake, modes).mean()
        if self.s.mode_seeking > 0:
            # Phrase i is paired with i + half (an odd batch's last phrase has no pair).
            pairs = {k: v[: 2 * half] for k, v in z.items()}
            loss_g = loss_g + self.s.mode_seeking * mode_seeking_penalty(probs[: 2 * half], pairs, half, pooled=True)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.update_ema()
        return {"step": self.step, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4)}

    def sample_notes(self, n: int = 8, bars: int | None = None, seed: int = 1234) -> list[list[Note]]:
        """Notes of n phrases from the EMA generator (fixed seeds, half major, half minor)."""
        c = self.s.config
        g = torch.Generator().manual_seed(seed)
        z = {k: v.to(self.device) for k, v in random_latents(c, n, bars or c.phrase_bars, g).items()}
        modes = (torch.arange(n) % 2).to(self.device)
        with torch.no_grad():
            probs = torch.sigmoid(self.G_ema(z, modes)).cpu().numpy()
        voicer = Voicer(c) if c.progressions else None
        return [decode_piece(p, c, voicer, 0.5, MODES[int(m)], None)[0] for p, m in zip(probs, modes.tolist())]

    def save_samples(self, stem: Path) -> None:
        """A sheet of piano rolls, and the first two phrases as MIDI files."""
        c = self.s.config
        phrases = self.sample_notes()
        steps = c.phrase_bars * STEPS_PER_BAR
        rolls = [piano_roll(notes, steps, c.low, c.pitches) for notes in phrases]
        label = f"step {self.step}: generated phrases (alternately {MODES[0]} and {MODES[1]})"
        roll_sheet([(label, rolls)]).save(stem.with_suffix(".png"))
        tracks = list(range(c.n_tracks))
        for i, notes in enumerate(phrases[:2]):
            midi = notes_to_midi(notes, c.phrase_bars, 90.0, tracks, [0] * c.n_tracks, c.tracks)
            stem.with_name(f"{stem.name}_{i}.mid").write_bytes(midi)

    def loss_description(self) -> str:
        s = self.s
        seeking = f"; mode-seeking term (MSGAN) weight {s.mode_seeking}" if s.mode_seeking else ""
        loss = f"WGAN-GP (penalty weight {s.gp_weight})" if s.loss == "wgan-gp" else "hinge"
        seen = (
            "fake rolls binarised as the decoder reads them into notes (straight-through)"
            if s.straight_through
            else "sigmoid probabilities"
        )
        return (
            f"{loss}, {s.n_critic} critic step(s) per generator step, Adam betas (0.5, 0.9); spectral norm and "
            f"minibatch spread in the critic, which sees {seen}; random transposition -6..+5{seeking}"
        )

    def export(self, metrics: dict | None = None, folder: Path | None = None) -> Path:
        weights = self.save_generator(folder)
        card = {
            "kind": "music",
            "name": self.s.name,
            "architecture": "MuseGAN-style hybrid generator (shared, per-track, per-bar and per-bar-per-track "
            "latents; 1-D convolutions over bars, then 2-D upsampling convolutions over time x pitch with the "
            "tracks as channels; frame + onset roll per track; conditioned on mode), spectral-norm projection "
            "critic with a roll stream and a chroma stream; 16 steps per 4/4 bar",
            "config": self.s.config.to_dict(),
            "data": {
                "source": self.data.source,
                "license": self.data.license,
                **self.data.report,
                "train_pieces": len(self.data.train),
                "held_out_pieces": len(self.data.held_out),
                "held_out": [p.name for p in self.data.held_out],
                "phrases": len(self.sampler),
            },  # fmt: skip
            "training": self.training_record(self.loss_description(), lr_g=self.s.lr_g, lr_d=self.s.lr_d),
            "metrics": {**self.loss_means(), **(metrics or {})},
        }
        write_card(weights, card)
        return weights
