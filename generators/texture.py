"""Tileable texture GAN in the SGAN/PSGAN line, and its bridge generator.

The generator is fully convolutional: a spatial latent grid (one cell per `STRIDE` output
pixels) is upsampled to an image of any multiple-of-stride size. The grid holds three parts,
as in PSGAN: local noise (per cell), a global code (the same in every cell) and periodic
channels (sines whose wave vectors come from the global code). Seamless tiling at the
requested size comes from three choices that together make the whole network a function on
a torus: every convolution pads circularly, upsampling is nearest-neighbour, and the periodic
wave vectors are rounded to whole cycles across the grid (straight-through in training).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, create_model
from torch import nn

from generators.base import Cost, Latent, ModelSetGenerator, Output, each_alone
from generators.checkpoint import CheckpointError, CheckpointRef, load_model
from generators.maps import height_map, height_to_uint8, normal_map


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


class TextureGAN(nn.Module):
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
        img = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return img.permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------------------------------------
# The bridge generator: params, checkpoints, batching and encoding around TextureGAN.

MAX_SIDE = 2048
MIN_SIDE = 32
CPU_LANES = max(1, min(4, os.cpu_count() or 1))
_LANES = ThreadPoolExecutor(max_workers=CPU_LANES, thread_name_prefix="texture-lane")


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def texture_params_model(models: list[str], stride: int) -> type[BaseModel]:
    """The params schema plugins draw; `model` is an enum of the installed textures."""
    side = dict(ge=MIN_SIDE, le=MAX_SIDE, multiple_of=stride)
    return create_model(
        "TextureParams",
        __config__=ConfigDict(extra="forbid", title="Texture parameters"),
        model=(Literal[tuple(models)], Field(models[0], title="Texture", description="Which trained texture")),
        width=(int, Field(512, title="Width", description=f"Pixels, a multiple of {stride}", **side)),
        height=(int, Field(512, title="Height", description=f"Pixels, a multiple of {stride}", **side)),
        seed=(int | None, Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")),
        tileable=(bool, Field(True, title="Seamless", description="Wraps at its edges")),
        temperature=(float, Field(1.0, ge=0.0, le=2.0, title="Temperature", description="Local variety")),
        maps=(
            list[Literal["height", "normal"]],
            Field([], max_length=2, title="Extra maps", description="Derived height / normal maps"),
        ),
    )


@dataclass
class LoadedTexture:
    ref: CheckpointRef
    card: dict
    net: TextureGAN


def load_texture(path: Path, device: str = "cpu") -> LoadedTexture:
    net, card, ref = load_model(path, "texture", lambda c: TextureGAN(TextureConfig.from_dict(c)), device)
    return LoadedTexture(ref=ref, card=card, net=net)


class TextureGenerator(ModelSetGenerator):
    name = "texture"
    kind = "texture"
    description = "Seamless tileable textures (spatial GAN), any size; optional height and normal maps"
    outputs = ["png"]

    def __init__(self, models: Sequence[LoadedTexture], device: str = "cpu"):
        self._set_models(models, device)
        strides = {m.net.config.stride for m in self.models.values()}
        if len(strides) != 1:
            raise CheckpointError(f"texture models disagree on stride: {sorted(strides)}")
        self.stride = strides.pop()
        self.params_model = texture_params_model(list(self.models), self.stride)

    def _render_size(self, params: BaseModel) -> tuple[int, int]:
        # A non-tileable texture is cut from a larger tileable one, so its edges do not wrap.
        margin = 0 if params.tileable else 4 * self.stride
        return params.height + margin, params.width + margin

    def latent_shapes(self, params: BaseModel) -> dict[str, tuple[int, ...]]:
        return self.models[params.model].net.latent_shapes(*self._render_size(params))

    def batch_key(self, params: BaseModel) -> Hashable:
        return (params.model, *self._render_size(params))

    def cost(self, params: BaseModel) -> Cost:
        h, w = self._render_size(params)
        maps = f" with {len(params.maps)} map{'s' * (len(params.maps) > 1)}" if params.maps else ""
        return Cost("pixels", h * w * (1 + len(params.maps)), f"{params.width}x{params.height}{maps}")

    def max_batch(self, params: BaseModel) -> int:
        # On a CPU a batch runs as lanes, so it needs no more items than cores; on a GPU its items
        # run one after another (see render), a batch bounded by a pixel budget.
        if self._device == "cpu":
            return CPU_LANES
        h, w = self._render_size(params)
        return max(1, min(16, (4096 * 4096) // (h * w)))

    def render(self, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        # On a GPU too each image is its own forward pass (see each_alone): batched in one pass,
        # its pixels moved by a level with the batch's size, and a recipe must regenerate exactly.
        if self._device != "cpu" or len(params) == 1:
            return self._render_each(list(params), list(latents))
        # On a CPU a batch runs as one single-threaded lane per core, each image its own forward
        # pass. Measured on 2 cores at 512x512, two lanes give ~1.5x the items/s of one
        # two-threaded forward (these layers are memory-bound; batching within one forward made
        # each image slower here). One image per forward also keeps every pixel independent of
        # how requests happened to be batched, so a recipe always regenerates the same bytes.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return list(_LANES.map(lambda p, z: self._render_each([p], [z])[0], params, latents))
        finally:
            torch.set_num_threads(threads)

    def _render_each(self, params: list[BaseModel], latents: list[Latent]) -> list[Output]:
        model = self.models[params[0].model]
        grey = bool(model.card["data"].get("grayscale", False))
        images = each_alone(model.net.sample, latents, [p.temperature for p in params], grayscale=grey)
        return [self._encode(p, img) for p, img in zip(params, images)]

    def _encode(self, params: BaseModel, pixels: np.ndarray) -> Output:
        if not params.tileable:
            top = (pixels.shape[0] - params.height) // 2
            left = (pixels.shape[1] - params.width) // 2
            pixels = pixels[top : top + params.height, left : left + params.width]
        attachments = {}
        if params.maps:
            height = height_map(pixels)
            if "height" in params.maps:
                attachments["height"] = encode_png(height_to_uint8(height))
            if "normal" in params.maps:
                attachments["normal"] = encode_png(normal_map(height))
        return Output(
            data=encode_png(np.ascontiguousarray(pixels)),
            format="png",
            mime="image/png",
            extra={"width": params.width, "height": params.height},
            attachments=attachments,
        )
