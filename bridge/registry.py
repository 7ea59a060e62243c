"""Finding installed generators: shipped weights plus the user's models folder."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from generators.base import Generator

log = logging.getLogger("ganbridge.registry")

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "generators" / "weights"


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def weight_files(kind: str, models_dir: Path | None) -> list[Path]:
    """Shipped weights first (so the default is stable), then the user's; user files win on name clash."""
    shipped = sorted((SHIPPED_WEIGHTS / kind).glob("*.safetensors"))
    user = sorted((models_dir / kind).glob("*.safetensors")) if models_dir else []
    by_name = {p.stem: p for p in shipped}
    by_name.update({p.stem: p for p in user})
    return list(by_name.values())


def _load_all(kind: str, loader, models_dir: Path | None, device: str) -> list:
    loaded = []
    for path in weight_files(kind, models_dir):
        try:
            loaded.append(loader(path, device))
        except Exception as e:  # one bad file (corrupt, wrong card) must not stop the bridge
            log.warning("skipping %s model %s: %s", kind, path, e)
    return loaded


def load_generators(models_dir: Path | None, device: str = "cpu") -> dict[str, Generator]:
    from generators.image import SpriteGenerator, load_image_model
    from generators.music import ChoraleGenerator, load_music_model
    from generators.texture import TextureGenerator, load_texture

    generators: dict[str, Generator] = {}
    if textures := _load_all("texture", load_texture, models_dir, device):
        generators["texture"] = TextureGenerator(textures, device)
    if images := _load_all("image", load_image_model, models_dir, device):
        generators["image"] = SpriteGenerator(images, device)
    if music := _load_all("music", load_music_model, models_dir, device):
        generators["music"] = ChoraleGenerator(music, device)
    return generators
