"""A small-data image GAN for sprites, icons and glyphs: 64x64 RGBA, optionally class-conditional.

DCGAN-shaped generator (a linear layer to 4x4, then four upsample + conv stages) and a spectrally
normalised discriminator with a projection head for the class. Training (hinge loss, DiffAugment,
EMA generator) is in image_train.py. Images are premultiplied RGBA in [-1, 1]: transparent pixels
are all -1, so the generator never has to invent colours nobody sees.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, create_model
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from generators.base import Cost, Latent, ModelSetGenerator, Output, each_alone
from generators.checkpoint import CheckpointRef, load_model

NATIVE = 64
MAX_SIZE = 1024
ANY = "any"
MINIBATCH_GROUP = 4


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


def _stages(config: ImageConfig) -> list[int]:
    w = config.width
    return [8 * w, 4 * w, 2 * w, w]


class ImageGenerator(nn.Module):
    def __init__(self, config: ImageConfig):
        super().__init__()
        self.config = config
        chans = _stages(config)
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


def minibatch_std(x: torch.Tensor, group: int = MINIBATCH_GROUP) -> torch.Tensor:
    """Append the spread of features across a small group of images (Karras et al., ProGAN) as one
    more channel, so the critic can see a generator that makes the same image for every z.
    Image i is in group i % (n / group size); a conditional batch lays out its labels so that each
    group shares one class (see `grouped_labels`), else a generator making one image per class
    would still look varied."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    std = x.view(g, -1, c, h, w).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))  # (n/g,)
    return torch.cat([x, std.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class ImageDiscriminator(nn.Module):
    def __init__(self, config: ImageConfig):
        super().__init__()
        chans = list(reversed(_stages(config)))  # w, 2w, 4w, 8w
        layers, cin = [], 4
        for cout in chans:  # 64 -> 4
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(cin + 1, 1))
        n_cls = len(config.classes)
        self.project = spectral_norm(nn.Embedding(n_cls, cin + 1)) if n_cls else None
        # An auxiliary classifier (AC-GAN): the projection alone let a glyph model with 62
        # categories ignore them (samples matched their category no better than chance).
        self.classify = nn.Linear(cin + 1, n_cls) if n_cls else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(x, labels)[0]

    def judge(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The critic's score and, for a model with categories, its logits for each image's category."""
        h = minibatch_std(self.features(x)).sum(dim=(2, 3))
        out = self.head(h).squeeze(1)
        if self.project is None:
            return out, None
        return out + (self.project(labels) * h).sum(dim=1), self.classify(h)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, the space the precision/recall metric works in."""
        return self.features(x).mean(dim=(2, 3))


# --- the bridge generator ---------------------------------------------------------------------


def image_params_model(models: list[str], classes: list[str]) -> type[BaseModel]:
    fields = {
        "model": (Literal[tuple(models)], Field(models[0], title="Model", description="Which trained image model")),
        "seed": (int | None, Field(None, ge=0, le=2**31 - 1, title="Seed", description="Empty: random")),
        "truncation": (
            float,
            Field(1.0, ge=0.1, le=1.0, title="Truncation", description="Lower: more typical, less varied"),
        ),
        "size": (int, Field(256, ge=NATIVE, le=MAX_SIZE, title="Size", description="Output pixels (upscaled from 64)")),
        "upscale": (
            Literal["nearest", "lanczos"],
            Field("nearest", title="Upscale", description="Nearest keeps hard pixels (pixel art); Lanczos smooths"),
        ),
        "background": (
            str,
            Field(
                "transparent",
                pattern=r"^(transparent|#[0-9a-fA-F]{6})$",
                title="Background",
                description="transparent, or a colour like #ffffff",
            ),
        ),
    }
    if classes:
        fields["category"] = (
            Literal[tuple([ANY, *classes])],
            Field(ANY, title="Category", description="What kind of image (any: the model picks)"),
        )
    return create_model("ImageParams", __config__=ConfigDict(extra="forbid", title="Image parameters"), **fields)


@dataclass
class LoadedImageModel:
    ref: CheckpointRef
    card: dict
    net: ImageGenerator


def load_image_model(path: Path, device: str = "cpu") -> LoadedImageModel:
    net, card, ref = load_model(path, "image", lambda c: ImageGenerator(ImageConfig.from_dict(c)), device)
    return LoadedImageModel(ref=ref, card=card, net=net)


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def finish(pixels: np.ndarray, size: int, upscale: str, background: str) -> np.ndarray:
    """Upscale a native RGBA image and put it on its background."""
    img = Image.fromarray(pixels, "RGBA")
    if size != img.width:
        img = img.resize((size, size), Image.Resampling.NEAREST if upscale == "nearest" else Image.Resampling.LANCZOS)
    if background != "transparent":
        colour = tuple(int(background[i : i + 2], 16) for i in (1, 3, 5)) + (255,)
        base = Image.new("RGBA", img.size, colour)
        img = Image.alpha_composite(base, img)
    return np.asarray(img)


class SpriteGenerator(ModelSetGenerator):
    """Sprites, icons and glyphs from small-data GANs; one or more trained models."""

    name = "image"
    kind = "image"
    description = "Sprites, icons and emoji-like images (64x64 RGBA GAN), upscaled to any size"
    outputs = ["png"]

    def __init__(self, models: Sequence[LoadedImageModel], device: str = "cpu"):
        self._set_models(models, device)
        classes = sorted({c for m in self.models.values() for c in m.net.config.classes})
        self.params_model = image_params_model(list(self.models), classes)
        self.z_dim = {m.net.config.z_dim for m in self.models.values()}

    def latent_shapes(self, params: BaseModel) -> dict[str, tuple[int, ...]]:
        return {"z": (self.models[params.model].net.config.z_dim,), "class": (1,)}

    def batch_key(self, params: BaseModel) -> Hashable:
        return params.model

    def max_batch(self, params: BaseModel) -> int:
        return 32

    def cost(self, params: BaseModel) -> Cost:
        return Cost("pixels", params.size * params.size, f"{params.size}x{params.size}")

    def _label(self, params: BaseModel, latent: Latent) -> int:
        """The class index: the requested category, or (for "any") one drawn from the latent, so
        that "any" stays reproducible from the recipe."""
        classes = self.models[params.model].net.config.classes
        if not classes:
            return 0
        wanted = getattr(params, "category", ANY)
        if wanted != ANY:
            if wanted not in classes:
                raise ValueError(f"model {params.model!r} has no category {wanted!r}; it has {', '.join(classes)}")
            return classes.index(wanted)
        u = 0.5 * (1 + float(np.tanh(latent["class"][0] * 0.8)))  # a standard normal -> (0, 1), smooth
        return min(len(classes) - 1, int(u * len(classes)))

    def render(self, params: Sequence[BaseModel], latents: Sequence[Latent]) -> list[Output]:
        model = self.models[params[0].model]
        labels = [self._label(p, z) for p, z in zip(params, latents)]
        # One item at a time: a batched pass can move a pixel by one level (see each_alone).
        images = each_alone(model.net.sample, latents, labels, [p.truncation for p in params])
        outputs = []
        for p, img, label in zip(params, images, labels):
            pixels = finish(img, p.size, p.upscale, p.background)
            extra = {"width": p.size, "height": p.size}
            if model.net.config.classes:
                extra["category"] = model.net.config.classes[label]
            outputs.append(Output(data=encode_png(pixels), format="png", mime="image/png", extra=extra))
        return outputs
