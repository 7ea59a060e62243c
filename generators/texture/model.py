"""Tileable texture GAN in the SGAN/PSGAN line: the generator network and its loader.

The generator is fully convolutional: a spatial latent grid (one cell per `STRIDE` output
pixels) is upsampled to an image of any multiple-of-stride size. The grid holds three parts,
as in PSGAN: local noise (per cell), a global code (the same in every cell) and periodic
channels (sines whose wave vectors come from the global code). Seamless tiling at the
requested size comes from three choices that together make the whole network a function on
a torus: every convolution pads circularly, upsampling is nearest-neighbour, and the periodic
wave vectors are rounded to whole cycles across the grid (straight-through in training).
The bridge adapter is in adapter.py, training and its critic in train.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganbridge.generators.base import Latent
from ganbridge.generators.checkpoint import LoadedNetwork, load_model


@dataclass
class TextureConfig:
    local_dim: int = 16
    global_dim: int = 16
    periodic_dim: int = 4
    channels: tuple[int, ...] = (96, 64, 32, 16, 8)  # at 1/16, 1/8, 1/4, 1/2, 1 of the output
    out_channels: int = 3
    norm: str = "batch"  # "batch" (SGAN/PSGAN) or "pixel"

    @property
    def stride(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of_width(cls, width: int) -> TextureConfig:
        """The network whose full-size stage has `width` channels and each coarser stage more (2x,
        4x, 8x, 12x at 1/2 ... 1/16): the default 8 is the shipped models' (96, 64, 32, 16, 8)."""
        return cls(channels=tuple(m * width for m in (12, 8, 4, 2, 1)))

    @classmethod
    def from_dict(cls, d: dict) -> TextureConfig:
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


class PixelNorm(nn.Module):
    """Normalise each position's feature vector: batch- and size-independent, unlike BatchNorm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "pixel":
        return PixelNorm()
    raise ValueError(f"unknown norm {kind!r}")


def circular_conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="circular")


class TextureNetwork(nn.Module):
    """The generator network: latent grid parts -> image in [-1, 1]."""

    def __init__(self, config: TextureConfig):
        super().__init__()
        self.config = config
        c = config
        # Wave vectors (2 numbers per periodic channel) from the global code, as in PSGAN.
        self.wave = nn.Sequential(nn.Linear(c.global_dim, 64), nn.ReLU(), nn.Linear(64, 2 * c.periodic_dim))
        cin = c.local_dim + c.global_dim + c.periodic_dim
        self.conv_in = circular_conv(cin, c.channels[0])
        self.blocks = nn.ModuleList(circular_conv(a, b) for a, b in zip(c.channels, c.channels[1:]))
        self.conv_out = circular_conv(c.channels[-1], c.out_channels)
        self.norms = nn.ModuleList(make_norm(c.norm, ch) for ch in c.channels)

    def periodic(self, global_code: torch.Tensor, phase: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Sine channels (B, P, h, w) with a whole number of cycles across the h x w grid."""
        p = self.config.periodic_dim
        k = self.wave(global_code).view(-1, p, 2)  # radians per cell, (ky, kx)
        cycles = k * torch.tensor([h, w], dtype=k.dtype, device=k.device) / (2 * math.pi)
        cycles = cycles + (torch.round(cycles) - cycles).detach()  # straight-through rounding
        ky, kx = (2 * math.pi * cycles / torch.tensor([h, w], dtype=k.dtype, device=k.device)).unbind(-1)
        angle = torch.atan2(phase[:, :p], phase[:, p:])  # two normals -> a uniform phase
        ys = torch.arange(h, dtype=k.dtype, device=k.device).view(1, 1, h, 1)
        xs = torch.arange(w, dtype=k.dtype, device=k.device).view(1, 1, 1, w)
        arg = ky[..., None, None] * ys + kx[..., None, None] * xs + angle[..., None, None]
        return torch.sin(arg)

    def forward(self, local: torch.Tensor, global_code: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        b, _, h, w = local.shape
        grid = torch.cat(
            [
                local,
                global_code[:, :, None, None].expand(b, -1, h, w),
                self.periodic(global_code, phase, h, w),
            ],
            dim=1,
        )
        x = F.relu(self.norms[0](self.conv_in(grid)))
        for conv, norm in zip(self.blocks, self.norms[1:]):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.relu(norm(conv(x)))
        return torch.tanh(self.conv_out(x))

    def latent_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...]]:
        c, s = self.config, self.config.stride
        return {
            "local": (c.local_dim, height // s, width // s),
            "global": (c.global_dim,),
            "phase": (2 * c.periodic_dim,),
        }

    @torch.inference_mode()
    def sample(self, latents: Sequence[Latent], temperature: Sequence[float], grayscale: bool = False) -> np.ndarray:
        """Latents (same shapes) -> uint8 images (B, H, W, C). Temperature scales the local noise."""
        device = next(self.parameters()).device
        t = torch.tensor(temperature, dtype=torch.float32).view(-1, 1, 1, 1)
        local = torch.from_numpy(np.stack([z["local"] for z in latents])) * t
        global_code = torch.from_numpy(np.stack([z["global"] for z in latents]))
        phase = torch.from_numpy(np.stack([z["phase"] for z in latents]))
        img = self(local.to(device), global_code.to(device), phase.to(device))
        if grayscale:
            img = img.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        return to_pixels(img)


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """Images (B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C)."""
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


LoadedTextureNetwork = LoadedNetwork[TextureNetwork]


def load_texture_network(path: Path, device: str = "cpu") -> LoadedTextureNetwork:
    return load_model(path, "texture", lambda c: TextureNetwork(TextureConfig.from_dict(c)), device)
