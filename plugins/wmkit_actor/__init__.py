"""An actor for gradient training (DreamerV3's): an MLP from the features to an action
distribution, categorical or bounded Gaussian.

* ``categorical`` (a Discrete action space, which wmkit presents as a box of one score per
  action): a one-hot sample from softmax(logits) mixed with 1% of the uniform, so that no
  action's probability, and so no log-probability, ever reaches 0.
* ``gaussian`` (a Box): a Normal with mean tanh(m) and standard deviation between
  ``std_min`` and ``std_max``, sampled then clipped to [-1, 1] and mapped onto the action box.

``act`` takes the most likely action (evaluation); ``distribution`` is what the actor-critic
trains and the online loop explores with.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.distributions import Independent, Normal, OneHotCategorical

import wmkit
from wmkit.distributions import unimix_probs
from wmkit.protocols import ControllerOptions


class ActorOptions(ControllerOptions):
    distribution: Literal["categorical", "gaussian"] = Field(
        "gaussian",
        description=(
            "categorical for a Discrete action space (one-hot actions), gaussian for a Box."
        ),
    )
    units: int = Field(256, ge=1, description="Hidden units per layer.")
    layers: int = Field(2, ge=1, description="Hidden layers.")
    unimix: float = Field(
        0.01, ge=0, lt=1, description="Share of the uniform mixed into a categorical actor."
    )
    std_min: float = Field(0.1, gt=0, description="Smallest standard deviation (gaussian).")
    std_max: float = Field(1.0, gt=0, description="Largest standard deviation (gaussian).")


class BoundedNormal:
    """A diagonal Normal in [-1, 1]^A, clipped and mapped onto [low, high]."""

    def __init__(
        self, mean: torch.Tensor, std: torch.Tensor, low: torch.Tensor, high: torch.Tensor
    ):
        # No argument checks: they read values back to the host, which a CUDA graph cannot.
        self.normal = Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)
        self.low, self.high = low, high

    def _to_box(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + (x.clamp(-1, 1) + 1) * 0.5 * (self.high - self.low)

    def _from_box(self, a: torch.Tensor) -> torch.Tensor:
        return (a - self.low) / (self.high - self.low) * 2 - 1

    def sample(self) -> torch.Tensor:
        return self._to_box(self.normal.sample())

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.normal.log_prob(self._from_box(action))

    def entropy(self) -> torch.Tensor:
        return self.normal.entropy()

    @property
    def mode(self) -> torch.Tensor:
        return self._to_box(self.normal.mean)


class Actor(nn.Module):
    name = "actor"
    Options = ActorOptions

    def __init__(
        self,
        options: ActorOptions,
        input_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
    ):
        super().__init__()
        self.options = o = options
        n = len(action_low)
        blocks: list[nn.Module] = []
        for i in range(o.layers):
            blocks += [nn.Linear(input_dim if i == 0 else o.units, o.units), nn.LayerNorm(o.units)]
            blocks.append(nn.SiLU())
        outputs = n if o.distribution == "categorical" else 2 * n
        self.net = nn.Sequential(*blocks, nn.Linear(o.units, outputs))
        self.register_buffer("low", torch.as_tensor(action_low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_high, dtype=torch.float32))
        self.num_params = sum(p.numel() for p in self.parameters())

    def distribution(self, features: torch.Tensor):
        out = self.net(features.float())
        o = self.options
        if o.distribution == "categorical":
            return OneHotCategorical(probs=unimix_probs(out, o.unimix), validate_args=False)
        mean, std = out.chunk(2, -1)
        std = (o.std_max - o.std_min) * torch.sigmoid(std + 2.0) + o.std_min
        return BoundedNormal(torch.tanh(mean), std, self.low, self.high)

    @torch.no_grad()
    def act(self, features: torch.Tensor) -> torch.Tensor:
        """The most likely action: the one-hot of the best score, or the Gaussian's mean."""
        dist = self.distribution(features)
        if isinstance(dist, OneHotCategorical):
            best = dist.probs.argmax(-1)
            return nn.functional.one_hot(best, dist.probs.shape[-1]).float()
        return dist.mode

    def get_params(self) -> np.ndarray:
        return nn.utils.parameters_to_vector(self.parameters()).detach().cpu().double().numpy()

    def set_params(self, params: np.ndarray) -> None:
        vec = torch.as_tensor(np.asarray(params), dtype=torch.float32, device=self.low.device)
        if vec.numel() != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters, got {vec.numel()}")
        nn.utils.vector_to_parameters(vec, self.parameters())


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_controller(Actor)
