"""Loss terms shared by the kinds' trainers."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def mode_seeking_penalty(
    fake: torch.Tensor, z: torch.Tensor | Mapping[str, torch.Tensor], offset: int, pooled: bool = False
) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): large when two outputs (i and i + offset) are alike although
    their latents differ, so a generator cannot give every z the same output (of one class or mode:
    the trainer lays out a batch so that each pair shares its condition).

    A distance is the mean absolute difference; a latent of several parts (a dict) takes the mean of
    the parts' distances. The two trainers weigh the pairs differently, kept as they trained:
    by default (image) the term is the inverse of the mean over pairs of each pair's output-to-latent
    distance ratio; `pooled` (music) takes the ratio of the distances over all pairs at once.
    """
    parts = list(z.values()) if isinstance(z, Mapping) else [z]

    def distance(x: torch.Tensor) -> torch.Tensor:
        d = (x[: len(x) - offset] - x[offset:]).abs()
        return d.mean() if pooled else d.mean(dim=tuple(range(1, d.dim())))

    latents = sum(distance(p) for p in parts) / len(parts)
    return 1.0 / ((distance(fake) / latents).mean() + 1e-5)
