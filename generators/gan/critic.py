"""What the kinds' critics share: the minibatch spread feature (Karras et al., ProGAN)."""

from __future__ import annotations

import torch


def minibatch_spread(x: torch.Tensor, group: int) -> torch.Tensor:
    """(N, ...) features -> (N,): the standard deviation of each feature across a small group of the
    batch, averaged over the features, so a critic that sees it can tell a generator that makes the
    same output for every z. Sample i is in group i % (N / group size), the group size being the
    largest divisor of N up to `group`."""
    n = x.shape[0]
    g = min(group, n)
    while n % g:
        g -= 1
    std = x.view(g, -1, *x.shape[1:]).std(dim=0, unbiased=False).mean(dim=tuple(range(1, x.dim())))  # (N/g,)
    return std.repeat(g)
