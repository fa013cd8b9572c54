"""Dreams: rolling a Memory forward as if it were the environment.

A whole batch of imagined episodes is stepped at once on M's device: the only Python loop
is over time. Each step, the controller acts on [z, h], M predicts the next latent, the
reward and the probability that the episode ends, and the next z is sampled from M at
temperature tau (higher tau: a more uncertain, harder dream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from wmkit.protocols import Controller, Memory


@dataclass
class DreamResult:
    """Per-episode returns and lengths of a batch of dreams."""

    returns: torch.Tensor
    steps: torch.Tensor


def batched_act(controller: Controller, params: torch.Tensor | None, features: torch.Tensor):
    """Actions for B agents that may each have their own parameter vector (params [B, P]).

    Controllers that implement ``act_batched`` do it in one batched call; for others, each
    row's parameters are set in turn (correct, but a Python loop over the batch).
    """
    if params is None:
        return controller.act(features)
    fast = getattr(controller, "act_batched", None)
    if fast is not None:
        return fast(params, features)
    out = []
    for i in range(len(params)):
        controller.set_params(params[i].cpu().numpy())
        out.append(controller.act(features[i : i + 1]))
    return torch.cat(out)


@torch.no_grad()
def dream_rollout(
    memory: Memory,
    controller: Controller,
    z0: torch.Tensor,
    params: torch.Tensor | None = None,
    temperature: float = 1.0,
    max_steps: int = 1000,
    done_threshold: float = 0.5,
    generator: torch.Generator | None = None,
    state: Any = None,
) -> DreamResult:
    """Dream B episodes from start latents ``z0`` [B, Z]; ``params`` [B, P] gives each its
    own controller parameters (one CMA-ES generation as one batch), or None for as-is.
    ``state`` is M's memory at the start (a fresh one unless given: wmkit.dream_starts
    warms it up on the real steps before a start in mid-episode).

    An episode ends when M's done probability passes ``done_threshold`` or at ``max_steps``;
    rewards after the end are not counted.
    """
    batch = z0.shape[0]
    device = z0.device
    if state is None:
        state = memory.initial_state(batch)
    z = z0
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    returns = torch.zeros(batch, device=device)
    steps = torch.zeros(batch, dtype=torch.long, device=device)
    for _ in range(max_steps):
        features = torch.cat([z, memory.features(state)], dim=1)
        action = batched_act(controller, params, features)
        prediction, state = memory.step(z, action, state)
        returns += torch.where(alive, prediction.reward.float(), torch.zeros_like(returns))
        steps += alive.long()
        alive &= prediction.done < done_threshold
        if not bool(alive.any()):
            break
        z = memory.sample(prediction, temperature, generator)
    return DreamResult(returns, steps)
