"""Finding installed generators: shipped weights plus the user's models folder."""

from __future__ import annotations

import logging
from pathlib import Path

from generators.base import Generator
from generators.checkpoint import CheckpointError

log = logging.getLogger("ganbridge.registry")

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "generators" / "weights"


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def weight_files(kind: str, models_dir: Path | None) -> list[Path]:
    """Shipped weights first (so the default is stable), then the user's; user files win on name clash."""
    shipped = sorted((SHIPPED_WEIGHTS / kind).glob("*.safetensors"))
    user = sorted((models_dir / kind).glob("*.safetensors")) if models_dir else []
    by_name = {p.stem: p for p in shipped}
    by_name.update({p.stem: p for p in user})
    return list(by_name.values())


def load_generators(models_dir: Path | None, device: str = "cpu") -> dict[str, Generator]:
    from generators.texture import TextureGenerator, load_texture

    generators: dict[str, Generator] = {}
    textures = []
    for path in weight_files("texture", models_dir):
        try:
            textures.append(load_texture(path, device))
        except (CheckpointError, ValueError, KeyError) as e:
            log.warning("skipping texture model %s: %s", path, e)
    if textures:
        generators["texture"] = TextureGenerator(textures, device)
    return generators
