"""Texture training: hinge loss, a spectrally normalised patch critic, an EMA generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbridge.generators.checkpoint import write_card
from ganbridge.generators.dataset import file_manifest, refuse_forbidden
from ganbridge.generators.gan.losses import patch_distribution_loss
from ganbridge.generators.gan.plots import sample_sheet
from ganbridge.generators.gan.trainer import GanTrainer, GanTrainSettings
from ganbridge.generators.texture.data import load_exemplars, random_crops, resolve_exemplar
from ganbridge.generators.texture.evaluate import evaluate
from ganbridge.generators.texture.model import TextureConfig, TextureNetwork, to_pixels


@dataclass(kw_only=True)
class TextureTrainSettings(GanTrainSettings):
    image: str
    steps: int = 3000
    batch: int = 16
    crop: int = 128
    lr: float = 2e-4
    sample_every: int = 250
    license: str = "unknown (user-supplied exemplar)"
    patch_loss: float = 0.0  # weight of the patch-distribution loss beside the critic's (0: adversarial only)
    config: TextureConfig = field(default_factory=TextureConfig)


class TextureCritic(nn.Module):
    """Fully convolutional: one real/fake logit per receptive-field patch."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        cin = 3
        for c in channels:
            layers += [sn(nn.Conv2d(cin, c, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = c
        layers.append(sn(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sample_latent(config: TextureConfig, n: int, grid: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    return (
        torch.randn(n, config.local_dim, grid, grid, generator=gen),
        torch.randn(n, config.global_dim, generator=gen),
        torch.randn(n, 2 * config.periodic_dim, generator=gen),
    )


class TextureTrainer(GanTrainer[TextureTrainSettings, TextureNetwork, TextureCritic]):
    kind = "texture"

    def __init__(self, settings: TextureTrainSettings, command: str):
        super().__init__(settings, command)
        paths, known_licence = resolve_exemplar(settings.image)
        refuse_forbidden(paths)
        self.sources = [str(p) for p in paths]
        self.licence = known_licence or settings.license
        self.manifest = file_manifest(paths, source=settings.image, license=self.licence)
        self.images = load_exemplars(paths, settings.crop)
        # A grey exemplar makes a grey model: the generator averages its channels when sampling.
        self.grayscale = all(bool((img[0] == img[1]).all() and (img[1] == img[2]).all()) for img in self.images)
        self.set_networks(TextureNetwork(settings.config).to(self.device), TextureCritic().to(self.device))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=(0.5, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=settings.lr, betas=(0.5, 0.99))
        self.grid = settings.crop // settings.config.stride
        self.fixed = sample_latent(settings.config, 8, 2 * self.grid, torch.Generator().manual_seed(1234))

    # -- training ----------------------------------------------------------------------------
    def latent_batch(self) -> list[torch.Tensor]:
        # Drawn on the CPU from the saved generator, so a resumed run continues the same stream.
        return [t.to(self.device) for t in sample_latent(self.s.config, self.s.batch, self.grid, self.gen)]

    def train_step(self) -> dict:
        s = self.s
        real = random_crops(self.images, s.batch, s.crop, self.gen).to(self.device)
        with torch.no_grad():
            fake = self.G(*self.latent_batch())
        loss_d = F.relu(1 - self.D(real)).mean() + F.relu(1 + self.D(fake)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        fake = self.G(*self.latent_batch())
        loss_g = -self.D(fake).mean()
        record = {}
        if s.patch_loss:
            loss_patch = patch_distribution_loss(fake, real, self.gen)
            loss_g = loss_g + s.patch_loss * loss_patch
            record["loss_patch"] = round(loss_patch.item(), 4)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.update_ema()
        return {"step": self.step, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4), **record}

    def save_samples(self, stem: Path) -> None:
        with torch.no_grad():
            fake = self.G_ema(*[t.to(self.device) for t in self.fixed])
        sample_sheet(self.exemplar_pixels()[0], list(to_pixels(fake))).save(stem.with_suffix(".png"))

    def exemplar_pixels(self) -> list[np.ndarray]:
        """The exemplars as uint8 (H, W, 3) pixels."""
        return [to_pixels(img[None])[0] for img in self.images]

    def export(self, metrics: dict | None = None, folder: Path | None = None) -> Path:
        weights = self.save_generator(folder)
        card = {
            "kind": "texture",
            "name": self.s.name,
            "architecture": "TextureNetwork (SGAN/PSGAN-style spatial GAN; circular padding, integer-cycle periodic channels)",
            "config": self.s.config.to_dict(),
            "data": {
                "source": self.s.image,
                "files": [Path(p).name for p in self.sources],
                "manifest": self.manifest,
                "license": self.licence,
                "grayscale": self.grayscale,
            },
            "training": self.training_record(
                "hinge; spectral-norm patch discriminator"
                + (f"; patch-distribution loss x{self.s.patch_loss:g}" if self.s.patch_loss else ""),
                crop=self.s.crop,
                lr=self.s.lr,
                patch_loss=self.s.patch_loss,
            ),
            "metrics": {
                **self.loss_means(),
                **evaluate(self.G_ema, self.exemplar_pixels(), 2 * self.s.crop, self.grayscale),
                **(metrics or {}),
            },
        }
        write_card(weights, card)
        return weights
