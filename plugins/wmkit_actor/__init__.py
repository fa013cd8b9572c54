"""An actor for gradient training (DreamerV3's): an MLP from the features to an action
distribution, categorical or bounded Gaussian.

* ``categorical`` (a Discrete action space, which wmkit presents as a box of one score per
  action): a one-hot sample from softmax(logits) mixed with 1% of the uniform, so that no
  action's probability, and so no log-probability, ever reaches 0.
* ``gaussian`` (a Box): as DreamerV3, an *unclipped* Normal with mean tanh(m) and standard
  deviation between ``std_min`` and ``std_max`` (in [-1, 1] coordinates, mapped affinely onto
  the action box). Its log-probability and entropy are those of the unclipped sample; only
  the action handed on (to the environment, or to the world model in a dream) is clipped.

Every distribution here offers the same three steps, which the actor-critic uses:
``sample_raw(grad)`` (the actor's own sample, with reparameterised or straight-through
gradients when ``grad``), ``log_prob(raw)``, and ``clip(raw)`` (the action the environment
takes). ``sample()`` is ``clip(sample_raw())``: what the online loop explores with.
``act`` takes the most likely action (evaluation).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.distributions import Independent, Normal, OneHotCategorical

import wmkit
from wmkit.core.protocols import ControllerOptions
from wmkit.nn.distributions import sample_one_hot, unimix_probs


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
    """A diagonal Normal around tanh(mean) in [-1, 1]^A, mapped affinely onto [low, high].

    Why unclipped: clipping the sample and taking the log-probability at the clip (as this
    class once did) gives every action beyond a bound the density of the bound itself, so the
    score function says nothing true about the mean and the standard deviation there; on
    CarRacing the actor's entropy rose to its maximum and stayed. Here ``log_prob`` and
    ``entropy`` are the plain Normal's, of the unclipped sample (DreamerV3's choice).

    Why the world model sees the *clipped* action: ``clip`` is what the environment receives,
    so the replay stores it (the online loop records what ``sample()`` returned), and the
    actor-critic feeds the world model ``clip(raw)`` in the dream too. The world model then
    learns and imagines with the same inputs, never sees an action the environment could not
    take, and the dynamics gradient is zero past a bound, as the environment's is.
    """

    def __init__(
        self,
        mean: torch.Tensor,
        std: torch.Tensor,
        low: torch.Tensor,
        high: torch.Tensor,
        std_range: tuple[float, float] = (0.1, 1.0),
    ):
        # No argument checks: they read values back to the host, which a CUDA graph cannot.
        self.normal = Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)
        self.low, self.high = low, high
        self.std_range = std_range

    def _to_box(self, x: torch.Tensor) -> torch.Tensor:
        return self.low + (x + 1) * 0.5 * (self.high - self.low)

    def _from_box(self, a: torch.Tensor) -> torch.Tensor:
        return (a - self.low) / (self.high - self.low) * 2 - 1

    def sample_raw(self, grad: bool = False) -> torch.Tensor:
        """The actor's sample in action units, not clipped: reparameterised when ``grad``."""
        x = self.normal.rsample() if grad else self.normal.sample()
        return self._to_box(x)

    def clip(self, raw: torch.Tensor) -> torch.Tensor:
        """The action the environment takes: ``raw`` clipped to the box."""
        return torch.minimum(torch.maximum(raw, self.low), self.high)

    def sample(self) -> torch.Tensor:
        return self.clip(self.sample_raw())

    def log_prob(self, raw: torch.Tensor) -> torch.Tensor:
        """log-density of an unclipped sample, in [-1, 1] coordinates (the box's constant
        Jacobian is left out: it has no gradient)."""
        return self.normal.log_prob(self._from_box(raw))

    def entropy(self) -> torch.Tensor:
        return self.normal.entropy()

    def entropy_share(self) -> torch.Tensor:
        """The entropy [B] as a share of the range the actor can express: 0 with every
        standard deviation at ``std_min``, 1 at ``std_max``. An actor near 1 for a whole run
        has learnt nothing. A Normal's entropy per dimension is log(std) + a constant, so the
        share is taken in log(std)."""
        lo, hi = (math.log(v) for v in self.std_range)
        return ((torch.log(self.std) - lo) / (hi - lo)).mean(-1)

    @property
    def std(self) -> torch.Tensor:
        """Standard deviation per action dimension [..., A], in [-1, 1] coordinates."""
        return self.normal.base_dist.scale

    @property
    def mode(self) -> torch.Tensor:
        return self.clip(self._to_box(self.normal.mean))


class UnimixCategorical(OneHotCategorical):
    """The categorical actor's distribution with the same three steps as ``BoundedNormal``:
    ``sample_raw(grad=True)`` is a one-hot with straight-through gradients (DreamerV2's way
    of backpropagating through discrete actions), and ``clip`` leaves it as it is."""

    def sample_raw(self, grad: bool = False) -> torch.Tensor:
        return sample_one_hot(self.probs) if grad else self.sample()

    def clip(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    def entropy_share(self) -> torch.Tensor:
        """The entropy [B] as a share of the uniform's, log(number of actions)."""
        return self.entropy() / math.log(self.probs.shape[-1])


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
            return UnimixCategorical(probs=unimix_probs(out, o.unimix), validate_args=False)
        mean, std = out.chunk(2, -1)
        std = (o.std_max - o.std_min) * torch.sigmoid(std + 2.0) + o.std_min
        return BoundedNormal(torch.tanh(mean), std, self.low, self.high, (o.std_min, o.std_max))

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
