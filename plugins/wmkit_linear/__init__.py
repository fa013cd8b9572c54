"""The paper's C: a single linear layer on [z, h], squashed by tanh into the action box.

a = squash(W [z, h] + b)        (3 x 288 + 3 = 867 parameters on CarRacing)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ControllerOptions

Squash = Literal["affine", "clip"]


class LinearControllerOptions(ControllerOptions):
    squash: Squash | list[Squash] = Field(
        "affine",
        description=(
            "How tanh's (-1, 1) reaches the action box, for all action dimensions or as a "
            "list with one per dimension: 'affine' rescales it onto [low, high]; 'clip' "
            "clips it to [low, high]. The paper's CarRacing code is [clip, affine, clip]: "
            "steer = tanh, gas = (tanh + 1) / 2, brake = clip(tanh, 0, 1)."
        ),
    )


class BoxSquash(nn.Module):
    """tanh's (-1, 1) into the action box [low, high], per dimension 'affine' or 'clip'."""

    def __init__(self, squash: Squash | list[Squash], low: np.ndarray, high: np.ndarray):
        super().__init__()
        if isinstance(squash, list) and len(squash) != len(low):
            raise WmkitError(
                f"controller.squash: {len(squash)} entries for {len(low)} action dimensions"
            )
        modes = squash if isinstance(squash, list) else [squash] * len(low)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.register_buffer("clip_mask", torch.tensor([m == "clip" for m in modes]))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        clipped = torch.maximum(torch.minimum(y, self.high), self.low)
        affine = self.low + (y + 1) * 0.5 * (self.high - self.low)
        return torch.where(self.clip_mask, clipped, affine)


class FlatParams:
    """All of a torch controller's parameters as the one flat vector an optimizer searches."""

    num_params: int

    def get_params(self) -> np.ndarray:
        return nn.utils.parameters_to_vector(self.parameters()).detach().cpu().double().numpy()

    def set_params(self, params: np.ndarray) -> None:
        vec = torch.as_tensor(np.asarray(params), dtype=torch.float32)
        if vec.numel() != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters, got {vec.numel()}")
        device = next(self.parameters()).device
        nn.utils.vector_to_parameters(vec.to(device), self.parameters())


class LinearController(FlatParams, nn.Module):
    name = "linear"
    Options = LinearControllerOptions

    def __init__(
        self,
        options: LinearControllerOptions,
        input_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
    ):
        super().__init__()
        self.options = options
        self.linear = nn.Linear(input_dim, len(action_low))
        self._squash = BoxSquash(options.squash, action_low, action_high)
        self.num_params = sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def act(self, features: torch.Tensor) -> torch.Tensor:
        return self._squash(torch.tanh(self.linear(features.float())))

    @torch.no_grad()
    def act_batched(self, params: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Row i acts with its own parameters ``params[i]`` (laid out as ``get_params``):
        a whole CMA-ES generation in one batched matrix product."""
        a, f = self.linear.weight.shape
        weight = params[:, : a * f].reshape(-1, a, f).to(features.dtype)
        bias = params[:, a * f :].to(features.dtype)
        y = torch.baddbmm(bias.unsqueeze(2), weight, features.unsqueeze(2)).squeeze(2)
        return self._squash(torch.tanh(y))


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_controller(LinearController)
