"""A small-data image GAN for sprites, icons and glyphs: 64x64 RGBA, optionally class-conditional.

The generator network is DCGAN-shaped: a linear layer to 4x4, then four upsample + conv stages.
Its critic (spectrally normalised, with a projection head for the class) and training (hinge loss,
DiffAugment, EMA generator) are in train.py, the bridge adapter in adapter.py. Images are
premultiplied RGBA in [-1, 1]: transparent pixels are all -1, so the generator never has to invent
colours nobody sees.
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

NATIVE = 64
MAX_SIZE = 1024
ANY = "any"
MINIBATCH_GROUP = 4  # images per group of the critic's minibatch spread (train.py)


@dataclass
class ImageConfig:
    z_dim: int = 128
    width: int = 32  # channels of the last stage; earlier stages have 2x, 4x, 8x
    classes: list[str] = field(default_factory=list)  # empty: unconditional
    size: int = NATIVE
    grayscale: bool = False  # grey training data (R = G = B wherever there is ink): colour channels tied

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ImageConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def stage_widths(config: ImageConfig) -> list[int]:
    w = config.width
    return [8 * w, 4 * w, 2 * w, w]


class ImageNetwork(nn.Module):
    def __init__(self, config: ImageConfig):
        super().__init__()
        self.config = config
        chans = stage_widths(config)
        n_cls = len(config.classes)
        self.embed = nn.Embedding(n_cls, config.z_dim) if n_cls else None
        in_dim = config.z_dim * (2 if n_cls else 1)
        self.fc = nn.Linear(in_dim, chans[0] * 4 * 4)
        self.fc_norm = nn.BatchNorm2d(chans[0])
        blocks = []
        for cin, cout in zip(chans, chans[1:] + [chans[-1]]):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.blocks = nn.Sequential(*blocks)  # 4 -> 64
        self.to_rgba = nn.Conv2d(chans[-1], 4, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        x = self.fc(z).view(z.shape[0], -1, 4, 4)
        x = F.relu(self.fc_norm(x))
        x = torch.tanh(self.to_rgba(self.blocks(x)))
        if self.config.grayscale:
            # Tied in the network, not fixed up afterwards: a model of black glyphs had learned a
            # green or purple tint the critic let pass, and a grey model cannot draw one at all.
            x = torch.cat([x[:, :3].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1), x[:, 3:]], dim=1)
        return premultiply(x)

    @torch.no_grad()
    def sample(self, latents: Sequence[Latent], labels: Sequence[int], truncation: Sequence[float]) -> np.ndarray:
        """Latents -> straight-alpha RGBA uint8 images (N, 64, 64, 4)."""
        device = next(self.parameters()).device
        z = torch.from_numpy(np.stack([lat["z"] for lat in latents])).to(device)
        z = z * torch.tensor(list(truncation), dtype=z.dtype, device=device)[:, None]
        y = torch.tensor(list(labels), dtype=torch.long, device=device) if self.embed is not None else None
        return to_uint8_rgba(self.forward(z, y))


def premultiply(x: torch.Tensor) -> torch.Tensor:
    """RGBA in [-1, 1] -> premultiplied RGBA in [-1, 1] (colour scaled by alpha in [0, 1] space)."""
    alpha = (x[:, 3:4] + 1) / 2
    rgb = (x[:, :3] + 1) / 2 * alpha
    return torch.cat([rgb * 2 - 1, x[:, 3:4]], dim=1)


def to_uint8_rgba(x: torch.Tensor) -> np.ndarray:
    """Premultiplied [-1, 1] tensors -> straight-alpha uint8 (N, H, W, 4)."""
    x = ((x.float().cpu() + 1) / 2).clamp(0, 1)
    alpha = x[:, 3:4]
    rgb = torch.where(alpha > 1e-3, x[:, :3] / alpha.clamp_min(1e-3), torch.zeros_like(x[:, :3])).clamp(0, 1)
    out = torch.cat([rgb, alpha], dim=1).permute(0, 2, 3, 1).numpy()
    return np.round(out * 255).astype(np.uint8)


def from_uint8_rgba(images: np.ndarray) -> torch.Tensor:
    """Straight-alpha uint8 (N, H, W, 4) -> premultiplied [-1, 1] tensors (N, 4, H, W)."""
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255.0
    rgb = x[:, :3] * x[:, 3:4]
    return torch.cat([rgb, x[:, 3:4]], dim=1) * 2 - 1


LoadedImageNetwork = LoadedNetwork[ImageNetwork]


def load_image_network(path: Path, device: str = "cpu") -> LoadedImageNetwork:
    return load_model(path, "image", lambda c: ImageNetwork(ImageConfig.from_dict(c)), device)
