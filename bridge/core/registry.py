"""Finding installed generators: shipped weights plus the user's models folder."""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import re
from pathlib import Path

from ganbridge.generators.base import Generator

log = logging.getLogger("ganbridge.registry")

# generators/weights/<kind>/*.safetensors, in a checkout or installed as package data.
SHIPPED_WEIGHTS = Path(str(importlib.resources.files("ganbridge.generators"))) / "weights"


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


# kind -> (its package under ganbridge.generators, the bridge adapter, the network loader). The
# packages are imported only when a generator is loaded, so importing the core does not import torch.
KIND_PARTS = {
    "texture": ("texture", "TextureGenerator", "load_texture_network"),
    "image": ("image", "ImageGenerator", "load_image_network"),
    "music": ("music", "MusicGenerator", "load_music_network"),
}
KINDS = tuple(KIND_PARTS)


def _part(kind: str, module: str, name: str):
    if kind not in KIND_PARTS:
        raise ValueError(f"unknown generator kind {kind!r}; known: {', '.join(KINDS)}")
    package = KIND_PARTS[kind][0]
    return getattr(importlib.import_module(f"ganbridge.generators.{package}.{module}"), name)


def build_generator(kind: str, models: list, device: str) -> Generator:
    """The generator of `kind` over already loaded models."""
    return _part(kind, "adapter", KIND_PARTS[kind][1])(models, device)


def load_model_file(kind: str, path: Path, device: str):
    return _part(kind, "model", KIND_PARTS[kind][2])(path, device)


def load_generators(models_dir: Path | None, device: str = "cpu") -> dict[str, Generator]:
    generators: dict[str, Generator] = {}
    for kind in KINDS:
        if models := _load_all(kind, lambda path, dev, k=kind: load_model_file(k, path, dev), models_dir, device):
            generators[kind] = build_generator(kind, models, device)
    return generators
