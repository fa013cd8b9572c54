"""The dream-reality gap: does M's dream rank simple behaviours as the real game does?

A controller trained in the dream can only be as good as the dream's ranking of behaviours:
if standing still survives longest in the dream but not in the game, CMA-ES will find that,
and it will fail in the game. Playing the same fixed policies (the collection policy, a few
constant actions, the trained controller) in both places shows this before CMA-ES time is
spent, and shows afterwards which way a trained controller was misled.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
import torch

from wmkit.core.protocols import Controller, Memory
from wmkit.core.seeding import derive_seed
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.evaluate import EvalResult, dream_from_starts, evaluate
from wmkit.pipelines.stages.fit_controller import start_latents
from wmkit.rollouts.policies import Policy, recipe_policy


@dataclass
class GapRow:
    """One policy's return (mean, std) and episode length in the dream and in reality."""

    policy: str
    dream_mean: float
    dream_std: float
    dream_steps: float
    real_mean: float
    real_std: float
    real_steps: float


class PolicyController:
    """Plays one plain policy per dreamed episode, ignoring the features (a batched stand-in
    for a Controller, so fixed policies can be dreamed with ``dream_rollout``)."""

    def __init__(self, policies: list[Policy]):
        self.policies = policies
        for p in policies:
            p.reset()

    def act(self, features: torch.Tensor) -> torch.Tensor:
        actions = np.stack([p.act(None) for p in self.policies])
        return torch.as_tensor(actions, dtype=features.dtype, device=features.device)


def default_policies(action_low: np.ndarray, action_high: np.ndarray) -> list[str]:
    """The random policies, and for a one-dimensional action space its two ends and middle
    (Doom Take Cover: always left, always right, stand still)."""
    names = ["uniform", "brownian", "held"]
    if action_low.shape == (1,):
        lo, hi = float(action_low[0]), float(action_high[0])
        names += [f"constant:{v:g}" for v in (lo, (lo + hi) / 2, hi)]
    return names


def policy_controller(ctx: StageContext, name: str, episodes: int) -> PolicyController:
    """The plain policy ``name`` for each of ``episodes`` dreams, each seeded by its index."""
    seeds = [derive_seed(ctx.recipe.seed, f"gap {name}", i) for i in range(episodes)]
    return PolicyController([recipe_policy(name, ctx.spec, s, ctx.recipe.collect) for s in seeds])


@torch.no_grad()
def dream_returns(
    ctx: StageContext,
    memory: Memory,
    controller: Controller | None,
    name: str,
    episodes: int,
    temperature: float,
    starts: tuple[torch.Tensor, torch.Tensor],
):
    """One policy's dreamed episodes from real ``starts`` (the same ones for every policy)."""
    if name != "controller":
        controller = policy_controller(ctx, name, episodes)
    return dream_from_starts(ctx, memory, controller, starts, episodes, temperature, "gap")


def gap_row(name: str, dream: Any, real: EvalResult) -> GapRow:
    """One policy's row from its dreamed episodes (``returns``, ``steps``) and real ones."""
    returns = dream.returns.cpu().numpy()
    return GapRow(
        name,
        float(returns.mean()),
        float(returns.std()),
        float(dream.steps.float().mean()),
        real.mean,
        real.std,
        statistics.fmean(real.steps),
    )


def measure(
    policies: list[str],
    dream: Callable[[str], Any],
    real: Callable[[str], EvalResult],
) -> list[GapRow]:
    """Every policy in the dream and in the real environment, in that order for each policy
    (``dream(name)`` gives its dreamed episodes' ``returns`` and ``steps``, ``real(name)`` its
    real ones). The pipeline supplies both: its ``measure_gap`` says how it dreams."""
    return [gap_row(name, dream(name), real(name)) for name in policies]


def measure_gap(
    ctx: StageContext,
    memory: Memory,
    controller: Controller | None,
    policies: list[str],
    episodes: int,
    temperature: float,
) -> list[GapRow]:
    """``measure`` for a Memory (the paper's M): each policy dreamed at ``temperature`` from
    the same real starts, and played in reality on the same seeds for every policy."""
    starts = start_latents(ctx, ctx.device)
    return measure(
        policies,
        lambda name: dream_returns(ctx, memory, controller, name, episodes, temperature, starts),
        lambda name: evaluate(ctx, name, episodes),
    )


def pairs_in_order(rows: list[GapRow]) -> tuple[int, int]:
    """How many pairs of policies the dream orders as reality does, out of how many."""
    pairs = list(combinations(rows, 2))
    agree = sum((a.dream_mean - b.dream_mean) * (a.real_mean - b.real_mean) > 0 for a, b in pairs)
    return agree, len(pairs)


def to_dict(rows: list[GapRow], temperature: float | None, episodes: int) -> dict:
    agree, total = pairs_in_order(rows)
    return {
        "temperature": temperature,
        "episodes": episodes,
        "pairs_in_order": agree,
        "pairs": total,
        "policies": [asdict(r) for r in rows],
    }
