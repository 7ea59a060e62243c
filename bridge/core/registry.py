"""Finding installed generators: shipped weights plus the user's models folder."""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ganbridge.generators.base import Generator
from ganbridge.generators.directions import is_directions_file
from ganbridge.generators.gallery import is_gallery_file

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


@dataclass(frozen=True)
class ModelFile:
    """One weights file: shipped with ganbridge, or in the user's models folder."""

    kind: str
    path: Path
    user: bool

    @property
    def name(self) -> str:
        return self.path.stem


# The default model of a kind with several shipped ones: kept when more are shipped (sorted by
# name alone, `bark` would have become the default texture when the colour materials came).
SHIPPED_DEFAULTS = {"texture": "brick"}


def model_files(kind: str, models_dir: Path | None) -> list[ModelFile]:
    """Every weights file of `kind`: the shipped ones, then the user's, each sorted by name (the
    shipped default first)."""
    default = SHIPPED_DEFAULTS.get(kind)
    shipped_paths = sorted(checkpoint_files(SHIPPED_WEIGHTS / kind), key=lambda p: (p.stem != default, p.name))
    shipped = [ModelFile(kind, p, False) for p in shipped_paths]
    user = [ModelFile(kind, p, True) for p in checkpoint_files(models_dir / kind)] if models_dir else []
    return shipped + user


def checkpoint_files(folder: Path) -> list[Path]:
    """The checkpoints in `folder`, sorted: its .safetensors files but the directions beside them."""
    return sorted(p for p in folder.glob("*.safetensors") if not (is_directions_file(p) or is_gallery_file(p)))


def candidates(kind: str, models_dir: Path | None) -> dict[str, list[ModelFile]]:
    """Model name -> its files, the one that serves first: a user file serves in place of a shipped
    one of the same name. Names keep the shipped order first, so the default model is stable."""
    by_name: dict[str, list[ModelFile]] = {}
    for f in model_files(kind, models_dir):
        by_name.setdefault(f.name, []).insert(0, f)  # the user's come later, and go in front
    return by_name


def weight_files(kind: str, models_dir: Path | None) -> list[Path]:
    """The file that serves each model name of `kind`."""
    return [files[0].path for files in candidates(kind, models_dir).values()]


def hidden_shipped(models_dir: Path | None) -> list[tuple[ModelFile, ModelFile]]:
    """(user file, the shipped file it hides) for every name both have. A name has at most one file
    of each source, so two files are those two."""
    named = [files for kind in KINDS for files in candidates(kind, models_dir).values()]
    return [(files[0], files[1]) for files in named if len(files) == 2]


def _load_all(kind: str, models_dir: Path | None, device: str) -> list:
    loaded = []
    for files in candidates(kind, models_dir).values():
        for f in files:  # a user file that does not load leaves the shipped one of its name serving
            try:
                loaded.append(load_model_file(kind, f.path, device))
                break
            except Exception as e:  # one bad file (corrupt, wrong card) must not stop the bridge
                log.warning("skipping %s model %s: %s", kind, f.path, e)
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
        if models := _load_all(kind, models_dir, device):
            generators[kind] = build_generator(kind, models, device)
    return generators
