"""Weights on disk: `.safetensors` files with a JSON model card beside them.

A checkpoint is never unpickled. Before handing a file to safetensors we check that it
starts like a safetensors file (an 8-byte header length followed by a JSON header), so a
pickle renamed to `.safetensors` is refused with a clear message instead of a parser error.

The bridge's core imports this module (through generators/base.py) without loading a model, so
torch and safetensors.torch are imported only inside the functions that read or write tensors:
the core, the CLI's help and the clients' protocol stay torch-free.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

Network = TypeVar("Network", bound="torch.nn.Module")


class CheckpointError(ValueError):
    """A weights file that cannot be used: missing, not safetensors, or inconsistent."""


@dataclass(frozen=True)
class CheckpointRef:
    """An installed checkpoint: its name, file and hash, and what its model card says it was
    trained on (`data_source`, `data_license`, and `data_sha256`, the hash of the card's list of
    training files, when the card has one)."""

    name: str
    path: Path
    sha256: str
    data_source: str = ""
    data_license: str = ""
    data_sha256: str | None = None

    def as_dict(self) -> dict[str, str]:
        """What a recipe names: the checkpoint and, through its card's manifest, its training data."""
        ref = {"name": self.name, "sha256": self.sha256}
        if self.data_sha256:
            ref["data_sha256"] = self.data_sha256
        return ref

    def describe(self) -> dict:
        """What clients show: as_dict, plus the training data's source and licence."""
        return {**self.as_dict(), "data": {"source": self.data_source, "license": self.data_license}}

    @classmethod
    def of(cls, path: Path, card: dict) -> CheckpointRef:
        data = card.get("data")
        data = data if isinstance(data, dict) else {}
        manifest = data.get("manifest")
        manifest = manifest if isinstance(manifest, dict) else {}
        return cls(
            name=path.stem,
            path=path,
            sha256=file_sha256(path),
            data_source=str(data.get("source", "")),
            data_license=str(data.get("license", "")),
            data_sha256=manifest.get("sha256"),
        )


@dataclass
class LoadedNetwork(Generic[Network]):
    """A network loaded for serving, with its model card and where it came from."""

    ref: CheckpointRef
    card: dict
    net: Network


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_safetensors(path: Path) -> None:
    """Raise CheckpointError unless `path` is structurally a safetensors file."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path.name}: only .safetensors weights are loaded (never pickles)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        raise CheckpointError(f"{path.name}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", head[:8])
    if head[8:9] != b"{" or header_len > path.stat().st_size:
        hint = " (it looks like a pickle)" if head[:1] in (b"\x80", b"P") else ""
        raise CheckpointError(f"{path.name}: not a safetensors file{hint}; pickled checkpoints are refused")


def read_numpy_file(path: Path, what: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(header metadata, arrays) of a safetensors file beside a checkpoint (`what`: "directions",
    "gallery", for the error). Raises CheckpointError, naming the file, if it cannot be read."""
    from safetensors import SafetensorError, safe_open

    check_safetensors(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {}), {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name}: unreadable {what} file: {e}") from None


def write_numpy_file(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a safetensors file through a temporary one, so a reader never sees half a file."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata)
    tmp.replace(path)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    check_safetensors(path)
    return load_file(str(path), device="cpu")


def save_weights(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata)
    tmp.replace(path)


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def read_card(weights: Path) -> dict:
    path = card_path(weights)
    if not path.is_file():
        raise CheckpointError(f"{weights.name}: model card {path.name} is missing")
    return json.loads(path.read_text())


def write_card(weights: Path, card: dict) -> None:
    card_path(weights).write_text(json.dumps(card, indent=2) + "\n")


def load_model(path: Path, kind: str, build: Callable[[dict], Network], device: str = "cpu") -> LoadedNetwork[Network]:
    """A model card of `kind` and its weights -> the network in eval mode on `device`, with its
    card and ref. `build` makes the untrained network from the card's config."""
    card = read_card(path)
    if card.get("kind") != kind:
        raise CheckpointError(f"{path.name}: model card kind is {card.get('kind')!r}, not {kind!r}")
    net = build(card["config"])
    try:
        net.load_state_dict(load_weights(path))
    except RuntimeError as e:
        raise CheckpointError(f"{path.name}: weights do not match the model card config: {e}") from e
    net.eval().to(device)
    return LoadedNetwork(ref=CheckpointRef.of(path, card), card=card, net=net)
