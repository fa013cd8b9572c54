"""A controller with one hidden layer: the paper's "V model plus hidden layer" variant.

    a = squash(W2 tanh(W1 [z, h] + b1) + b2)

With 40 hidden units on CarRacing's [z, h] (288 numbers) that is 288*40 + 40 + 40*3 + 3 =
11,683 parameters, searched by the optimizer exactly like the linear controller's 867.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn
from wmkit_linear import BoxSquash, FlatParams, Squash

import wmkit
from wmkit.core.protocols import ControllerOptions


class MLPControllerOptions(ControllerOptions):
    hidden: int = Field(40, ge=1, description="Hidden tanh units between [z, h] and the action.")
    squash: Squash | list[Squash] = Field(
        "affine",
        description="How tanh reaches the action box: 'affine', 'clip', or one per dimension.",
    )


class MLPController(FlatParams, nn.Module):
    name = "mlp"
    Options = MLPControllerOptions

    def __init__(
        self,
        options: MLPControllerOptions,
        input_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
    ):
        super().__init__()
        self.options = options
        self.hidden = nn.Linear(input_dim, options.hidden)
        self.out = nn.Linear(options.hidden, len(action_low))
        self._squash = BoxSquash(options.squash, action_low, action_high)
        self.num_params = sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def act(self, features: torch.Tensor) -> torch.Tensor:
        return self._squash(torch.tanh(self.out(torch.tanh(self.hidden(features.float())))))

    @torch.no_grad()
    def act_batched(self, params: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Row i with its own parameters, unpacked in ``get_params`` order (W1, b1, W2, b2)."""
        shapes = [p.shape for p in self.parameters()]
        chunks = torch.split(params.to(features.dtype), [s.numel() for s in shapes], dim=1)
        w1, b1, w2, b2 = (c.reshape(-1, *s) for c, s in zip(chunks, shapes))
        h = torch.tanh(torch.baddbmm(b1.unsqueeze(2), w1, features.float().unsqueeze(2)))
        y = torch.baddbmm(b2.unsqueeze(2), w2, h).squeeze(2)
        return self._squash(torch.tanh(y))


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_controller(MLPController)
