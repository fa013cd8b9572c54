"""Pieces of the Dreamer line that more than one plugin needs (DreamerV3, Hafner et al. 2023):
symlog squashing, the two-hot distribution over symlog bins for rewards and values, and
categorical latents sampled with straight-through gradients. They live in the core because a
plugin should not import another plugin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|): targets of any scale squashed to a range a network can fit."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``symlog``."""
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot:
    """A scalar as a distribution over ``bins`` evenly spaced in symlog space.

    A target y is written as two-hot weights on the two bins around symlog(y), and trained by
    cross-entropy, so a reward of 1 and one of 1000 give gradients of the same size (unlike a
    squared error). The prediction is symexp of the weighted mean of the bins.
    """

    def __init__(self, logits: torch.Tensor, low: float = -20.0, high: float = 20.0):
        self.logits = logits
        self.bins = torch.linspace(low, high, logits.shape[-1], device=logits.device)

    def mean(self) -> torch.Tensor:
        probs = torch.softmax(self.logits, -1)
        return symexp((probs * self.bins).sum(-1))

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        x = symlog(target).clamp(self.bins[0], self.bins[-1])
        n = len(self.bins)
        below = (torch.searchsorted(self.bins, x.contiguous(), right=True) - 1).clamp(0, n - 1)
        above = (below + 1).clamp(0, n - 1)
        lo, hi = self.bins[below], self.bins[above]
        span = torch.where(above == below, torch.ones_like(x), hi - lo)
        w_above = torch.where(above == below, torch.zeros_like(x), (x - lo) / span)
        weights = (
            F.one_hot(below, n) * (1 - w_above)[..., None]
            + F.one_hot(above, n) * w_above[..., None]
        )
        return (weights * torch.log_softmax(self.logits, -1)).sum(-1)


def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Softmax probabilities mixed with ``unimix`` of the uniform: no class ever has
    probability 0, so a KL term or a log-probability never blows up."""
    probs = torch.softmax(logits, -1)
    return (1 - unimix) * probs + unimix / logits.shape[-1]


def sample_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """A one-hot sample per row of ``probs`` [..., K], with straight-through gradients: the
    value is the sample, the gradient is that of ``probs``."""
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
    sample = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return sample + probs - probs.detach()


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of categoricals given as probabilities [..., S, K], summed over the S."""
    return (p * (torch.log(p) - torch.log(q))).sum((-2, -1))
