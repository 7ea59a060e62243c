"""What every GAN training loop here shares: seeding, the EMA generator, resumable safetensors
state, the step loop with its progress bar, sample and loss pictures, and the log of runs and the
loss figures that go into the model card.

A trainer subclasses `GanTrainer[Settings, Network, Critic]`, calls `__init__` first (it seeds
everything, so the networks must be built after it), hands its networks to `set_networks`, builds
`opt_g` and `opt_d`, and writes `train_step`, `save_samples` and `export(metrics=None,
folder=None)`. With `snapshots` on, the EMA generator is also exported at every sample step to
`OUT/snapshots/step_N/`: GAN quality is not monotone in steps, so the best step is chosen by
evaluating the snapshots, not assumed to be the last.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import reprlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from ganbridge.generators.checkpoint import load_weights, save_weights
from ganbridge.generators.gan.plots import loss_plot

OPTIMIZERS = ("opt_g", "opt_d")


@dataclass(kw_only=True)
class GanTrainSettings:
    """What every kind's training takes. Each kind's settings subclass this, adding its own
    fields and its own defaults for steps and batch (keyword-only, so the order does not matter)."""

    out: Path
    name: str
    steps: int
    batch: int
    ema: float = 0.999
    sample_every: int = 500
    save_every: int = 250
    snapshots: bool = False  # also export the EMA generator at every sample step
    seed: int = 0
    device: str = "cpu"
    config: Any  # the network's config (to_dict() and from_dict()); each kind gives its default


Settings = TypeVar("Settings", bound=GanTrainSettings)
Network = TypeVar("Network", bound=torch.nn.Module)
Critic = TypeVar("Critic", bound=torch.nn.Module)


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                meta[f"{prefix}.{idx}.{key}"] = value
    return tensors, meta


def restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(meta.items()):
        if not name.startswith(prefix + "."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = torch.as_tensor(value) if key == "step" else value
    sd["state"] = state
    opt.load_state_dict(sd)


class GanTrainer(Generic[Settings, Network, Critic]):
    kind = "gan"  # the kind's name: on the progress bar and in the weights' metadata
    G: Network
    D: Critic
    G_ema: Network
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def __init__(self, settings: Settings, command: str):
        self.s = settings
        self.command = command
        # The global RNG initialises the networks' weights; `gen` draws all training randomness
        # and is saved with the state, so a resumed run continues the same stream.
        torch.manual_seed(settings.seed)
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.device = torch.device(settings.device)
        self.step = 0
        self.history: list[dict] = []
        self.runs: list[dict] = []  # earlier runs of this training (resumes), from the saved state
        self.run_started = time.perf_counter()
        self.run_from = 0

    def set_networks(self, generator: Network, critic: Critic) -> None:
        """The networks to train; the EMA generator starts as a copy of the generator."""
        self.G, self.D = generator, critic
        self.G_ema = copy.deepcopy(generator).eval().requires_grad_(False)

    def train_step(self) -> dict:
        raise NotImplementedError

    def save_samples(self, stem: Path) -> None:
        """Write samples of the EMA generator as STEM.png (and any other files as STEM_*)."""
        raise NotImplementedError

    def export(self, metrics: dict | None = None, folder: Path | None = None) -> Path:
        """Write the EMA generator and its model card (with `metrics` too) to FOLDER (default: out)."""
        raise NotImplementedError

    # --- state ---------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.s.out / "state" / "train_state.safetensors"

    def _modules(self) -> dict[str, torch.nn.Module]:
        """The networks by their prefix in the saved state (E: the EMA generator)."""
        return {"G": self.G, "D": self.D, "E": self.G_ema}

    def save_state(self) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self._modules().items():
            tensors |= {f"{prefix}.{k}": v for k, v in module.state_dict().items()}
        meta: dict = {}
        for prefix in OPTIMIZERS:
            t, m = flatten_optimizer(prefix, getattr(self, prefix))
            tensors |= t
            meta |= m
        tensors["rng"] = self.gen.get_state()
        info = {"step": self.step, "history": self.history, "runs": self.all_runs(), "optimizer": meta,
                "config": self.s.config.to_dict()}  # fmt: skip
        save_weights(self.state_path, tensors, {"trainer": json.dumps(info)})

    def load_state(self) -> None:
        from safetensors import safe_open

        tensors = load_weights(self.state_path)
        with safe_open(str(self.state_path), "pt") as f:
            info = json.loads(f.metadata()["trainer"])
        # Through from_dict: a state saved before a config field existed has that field's default.
        saved = json.loads(json.dumps(type(self.s.config).from_dict(info["config"]).to_dict()))
        wanted = json.loads(json.dumps(self.s.config.to_dict()))
        if saved != wanted:
            differ = ", ".join(
                f"{k}: saved {reprlib.repr(saved.get(k))}, now {reprlib.repr(wanted.get(k))}"
                for k in wanted
                if saved.get(k) != wanted.get(k)
            )
            raise ValueError(f"the saved training state has a different model config ({differ}); use a new --out")
        for prefix, module in self._modules().items():
            module.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
        for prefix in OPTIMIZERS:
            restore_optimizer(prefix, getattr(self, prefix), tensors, info["optimizer"])
        self.gen.set_state(tensors["rng"])
        self.step = info["step"]
        self.history = info["history"]
        self.runs = info.get("runs") or [
            {"command": "(not recorded: state saved before runs were logged)", "to_step": self.step}
        ]

    # --- the loop ------------------------------------------------------------------------------

    def update_ema(self) -> None:
        decay = min(self.s.ema, (1 + self.step) / (10 + self.step))  # warm-up: early EMA follows G closely
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
                be.copy_(b)  # BatchNorm running statistics

    def run(self, resume: bool = False) -> Path:
        self.s.out.mkdir(parents=True, exist_ok=True)
        if resume and self.state_path.is_file():
            self.load_state()
            print(f"resumed at step {self.step}", file=sys.stderr)
        self.run_started = time.perf_counter()
        self.run_from = self.step
        bar = tqdm(total=self.s.steps, initial=self.step, desc=f"{self.kind} {self.s.name}", unit="step")
        while self.step < self.s.steps:
            record = self.train_step()
            self.step += 1
            self.history.append(record)
            bar.update(1)
            bar.set_postfix(d=record["loss_d"], g=record["loss_g"])
            if self.step % self.s.sample_every == 0 or self.step == self.s.steps:
                self.write_samples()
                if self.s.snapshots:
                    self.export(folder=self.s.out / "snapshots" / f"step_{self.step:06d}")
            if self.step % self.s.save_every == 0 or self.step == self.s.steps:
                self.save_state()
        bar.close()
        return self.export()

    def write_samples(self) -> None:
        """This step's samples to OUT/samples/step_N.png (and beside it), the losses to OUT/loss.png."""
        folder = self.s.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        self.save_samples(folder / f"step_{self.step:06d}")
        loss_plot(self.history).save(self.s.out / "loss.png")

    # --- the exported model --------------------------------------------------------------------

    def save_generator(self, folder: Path | None) -> Path:
        """The EMA generator's weights to FOLDER (default: out) as NAME.safetensors; returns the path."""
        weights = (folder or self.s.out) / f"{self.s.name}.safetensors"
        save_weights(weights, self.G_ema.state_dict(), {"kind": self.kind})
        return weights

    def loss_means(self) -> dict[str, float]:
        """The mean losses of the last 100 steps (NaN before the first), for the card's metrics."""
        tail = self.history[-100:] or [{"loss_d": math.nan, "loss_g": math.nan}]
        return {
            "final_loss_d_mean100": round(float(np.mean([h["loss_d"] for h in tail])), 4),
            "final_loss_g_mean100": round(float(np.mean([h["loss_g"] for h in tail])), 4),
        }

    def training_record(self, loss: str, **knobs: float | int) -> dict[str, Any]:
        """A card's `training` entry: the command, steps and the knobs this kind exposes (learning
        rates, crop), the loss, the machine, and every run that built these weights."""
        return {
            "command": self.command,
            "steps": self.step,
            "batch": self.s.batch,
            **knobs,
            "ema": self.s.ema,
            "seed": self.s.seed,
            "loss": loss,
            "machine": f"{platform.machine()} torch {torch.__version__} {torch.get_num_threads()} threads",
            "runs": self.all_runs(),
        }

    def all_runs(self) -> list[dict]:
        """Earlier runs plus this one (command, steps, seconds), for the state and the card."""
        this = {"command": self.command, "from_step": self.run_from, "to_step": self.step,
                "seconds": round(time.perf_counter() - self.run_started, 1)}  # fmt: skip
        return [*self.runs, this]
