"""Training loop for TextureGAN: one exemplar photo (or a folder of them) -> tileable texture model.

Hinge loss, a spectrally normalised patch discriminator that sees random crops of the exemplar,
and an EMA copy of the generator that is what gets shipped. State is saved to `OUT/state/`
every `save_every` steps as safetensors (never pickles), so `--resume` continues a killed run.
"""

from __future__ import annotations

import copy
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from generators.checkpoint import save_weights, write_card
from generators.gan_training import GanTrainer
from generators.metrics import patch_swd
from generators.plots import loss_plot, sample_sheet
from generators.texture import TextureConfig, TextureGAN

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

# Exemplars that ship inside scikit-image, with the licences its docs state.
SKIMAGE_EXEMPLARS = {
    "brick": ("brick.png", "CC0 1.0 (CC0Textures Bricks25, via scikit-image)"),
    "grass": ("grass.png", "CC0 1.0 (DeviantArt linolafett Grass-01, via scikit-image)"),
    "gravel": ("gravel.png", "CC0 1.0 (CC0Textures Gravel04, via scikit-image)"),
    "starfield": ("hubble_deep_field.jpg", "Public domain (NASA Hubble eXtreme Deep Field, via scikit-image)"),
    "tissue": ("ihc.png", "No known copyright restrictions (CMMI immunohistochemistry image, via scikit-image)"),
}


@dataclass
class TrainSettings:
    image: str
    out: Path
    name: str
    steps: int = 3000
    batch: int = 16
    crop: int = 128
    lr: float = 2e-4
    ema: float = 0.999
    sample_every: int = 250
    save_every: int = 250
    snapshots: bool = False  # also export the EMA generator at every sample step
    seed: int = 0
    license: str = "unknown (user-supplied exemplar)"
    device: str = "cpu"
    config: TextureConfig = field(default_factory=TextureConfig)


def resolve_exemplar(spec: str) -> tuple[list[Path], str | None]:
    """`skimage:brick` or a file or a folder -> image paths and the licence if we know it."""
    if spec.startswith("skimage:"):
        key = spec.split(":", 1)[1]
        if key not in SKIMAGE_EXEMPLARS:
            raise ValueError(f"unknown scikit-image exemplar {key!r}; known: {', '.join(SKIMAGE_EXEMPLARS)}")
        import skimage.data

        filename, licence = SKIMAGE_EXEMPLARS[key]
        return [Path(skimage.data.__file__).parent / filename], licence
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        return files, None
    if not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    return [path], None


def load_exemplars(paths: list[Path], crop: int) -> list[torch.Tensor]:
    """Images as float tensors (3, H, W) in [-1, 1]; each must be at least crop x crop."""
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
        except OSError as e:
            raise ValueError(f"{p}: cannot read this image ({e})") from e
        if min(rgb.shape[:2]) < crop:
            raise ValueError(f"{p}: {rgb.shape[1]}x{rgb.shape[0]} is smaller than the {crop}px training crop")
        images.append(torch.from_numpy(rgb / 127.5 - 1.0).permute(2, 0, 1).contiguous())
    return images


def random_crops(images: list[torch.Tensor], n: int, crop: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        y = int(torch.randint(img.shape[1] - crop + 1, (1,), generator=gen))
        x = int(torch.randint(img.shape[2] - crop + 1, (1,), generator=gen))
        patch = img[:, y : y + crop, x : x + crop]
        if torch.rand(1, generator=gen) < 0.5:
            patch = patch.flip(2)
        if torch.rand(1, generator=gen) < 0.5:
            patch = patch.flip(1)
        out.append(patch)
    return torch.stack(out)


class PatchDiscriminator(nn.Module):
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


class TextureTrainer(GanTrainer):
    label = "texture"

    def __init__(self, settings: TrainSettings, command: str):
        super().__init__(command)
        self.s = settings
        paths, known_licence = resolve_exemplar(settings.image)
        self.sources = [str(p) for p in paths]
        self.licence = known_licence or settings.license
        self.images = load_exemplars(paths, settings.crop)
        # A grey exemplar makes a grey model: the generator averages its channels when sampling.
        self.grayscale = all(bool((img[0] == img[1]).all() and (img[1] == img[2]).all()) for img in self.images)
        torch.manual_seed(settings.seed)
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.device = torch.device(settings.device)
        self.G = TextureGAN(settings.config).to(self.device)
        self.D = PatchDiscriminator().to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
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
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.update_ema()
        return {"step": self.step, "loss_d": round(loss_d.item(), 4), "loss_g": round(loss_g.item(), 4)}

    def write_samples(self) -> None:
        with torch.no_grad():
            fake = self.G_ema(*[t.to(self.device) for t in self.fixed])
        pixels = ((fake + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        exemplar = ((self.images[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        samples_dir = self.s.out / "samples"
        samples_dir.mkdir(parents=True, exist_ok=True)
        sample_sheet(exemplar, list(pixels)).save(samples_dir / f"step_{self.step:06d}.png")
        loss_plot(self.history).save(self.s.out / "loss.png")

    def quality(self) -> dict:
        """Patch SWD of the EMA generator vs the exemplar, with the real floor and untrained ceiling."""
        side = 2 * self.s.crop
        shapes = self.G_ema.latent_shapes(side, side)
        rng = np.random.default_rng(99)
        latents = [{k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()} for _ in range(16)]
        untrained = TextureGAN(self.s.config).eval().to(self.device)
        exemplar = [((img + 1) * 127.5).round().permute(1, 2, 0).numpy() for img in self.images]
        ones = [1.0] * len(latents)
        return {
            "patch_swd_generated": round(
                patch_swd(list(self.G_ema.sample(latents, ones, self.grayscale)), exemplar), 4
            ),
            "patch_swd_real_floor": round(patch_swd(exemplar, exemplar, seed=1), 4),
            "patch_swd_untrained": round(patch_swd(list(untrained.sample(latents, ones, self.grayscale)), exemplar), 4),
            "patch_swd_note": "sliced Wasserstein distance of 7x7 patches (4096 each, 128 directions) vs the "
            "exemplar, in exemplar std units; floor = exemplar vs itself, untrained = random weights",
        }

    def export(self, folder: Path | None = None) -> Path:
        weights = (folder or self.s.out) / f"{self.s.name}.safetensors"
        weights.parent.mkdir(parents=True, exist_ok=True)
        save_weights(weights, self.G_ema.state_dict(), {"kind": "texture"})
        tail = self.history[-100:] or [{"loss_d": math.nan, "loss_g": math.nan}]
        card = {
            "kind": "texture",
            "name": self.s.name,
            "architecture": "TextureGAN (SGAN/PSGAN-style spatial GAN; circular padding, integer-cycle periodic channels)",
            "config": self.s.config.to_dict(),
            "data": {
                "source": self.s.image,
                "files": [Path(p).name for p in self.sources],
                "license": self.licence,
                "grayscale": self.grayscale,
            },
            "training": {
                "command": self.command,
                "steps": self.step,
                "batch": self.s.batch,
                "crop": self.s.crop,
                "lr": self.s.lr,
                "ema": self.s.ema,
                "loss": "hinge; spectral-norm patch discriminator",
                "seed": self.s.seed,
                "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} "
                f"{torch.get_num_threads()} threads".strip(),
                "runs": self.all_runs(),
            },
            "metrics": {
                "final_loss_d_mean100": round(float(np.mean([h["loss_d"] for h in tail])), 4),
                "final_loss_g_mean100": round(float(np.mean([h["loss_g"] for h in tail])), 4),
                **self.quality(),
            },
        }
        write_card(weights, card)
        return weights
