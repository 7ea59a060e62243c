"""Loss terms shared by the kinds' trainers."""

from __future__ import annotations

import torch


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor, offset: int) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): large when two images of one class (i and i + offset, as
    `grouped_labels` lays them out) are alike although their latents differ, so a conditional
    generator cannot ignore z."""
    images = (fake[:-offset] - fake[offset:]).abs().mean(dim=(1, 2, 3))
    latents = (z[:-offset] - z[offset:]).abs().mean(dim=1)
    return 1.0 / ((images / latents).mean() + 1e-5)
