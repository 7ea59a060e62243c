"""Loss terms shared by the kinds' trainers."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


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


PATCH = 7  # the patch side the loss compares, as texture/evaluate.py's figure
PATCH_SCALES = (1, 2, 4)  # the generated and real crops, and both halved and quartered
PATCHES = 4096  # patches drawn from each side at each scale
PROJECTIONS = 64  # random directions per scale, new every step


def patch_distribution_loss(fake: torch.Tensor, real: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The sliced Wasserstein distance between the distributions of small patches of `fake` and
    `real` (B, C, H, W), summed over three scales, as in direct patch-distribution matching
    (Elnekave and Weiss, GPDM; Heitz et al.'s sliced Wasserstein texture loss on pixels rather than
    on a downloaded network's features). The critic judges realism through its receptive field; this
    asks that every kind of patch the exemplar has appear as often, which a critic alone leaves to
    chance (grass drawn as grey clouds with dashes). Random patches and directions come from `gen`."""
    total = fake.new_zeros(())
    for scale in PATCH_SCALES:
        a, b = (F.avg_pool2d(x, scale) if scale > 1 else x for x in (fake, real))
        pa, pb = (random_patch_rows(x, gen) for x in (a, b))
        dirs = torch.randn(pa.shape[1], PROJECTIONS, generator=gen).to(fake.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        total = total + (torch.sort(pa @ dirs, dim=0).values - torch.sort(pb @ dirs, dim=0).values).abs().mean()
    return total


def random_patch_rows(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """PATCHES random PATCH x PATCH patches of `images` (B, C, H, W), one flattened patch a row
    (channel, then row, then column). A pick numbers the patch positions image by image, row by row,
    as unfold lays them out; only the picked patches are gathered."""
    b, _, h, w = images.shape
    rows, cols = h - PATCH + 1, w - PATCH + 1
    pick = torch.randint(b * rows * cols, (PATCHES,), generator=gen).to(images.device)
    image, position = pick // (rows * cols), pick % (rows * cols)
    offsets = torch.arange(PATCH, device=images.device)
    ys = (position // cols)[:, None, None] + offsets[None, :, None]
    xs = (position % cols)[:, None, None] + offsets[None, None, :]
    patches = images.permute(0, 2, 3, 1)[image[:, None, None], ys, xs]  # (PATCHES, P, P, C)
    return patches.permute(0, 3, 1, 2).reshape(PATCHES, -1)
