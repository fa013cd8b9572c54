"""Further rounds of the paper's iterative training procedure (``iterate.rounds``).

A controller trained in the dream exploits what M gets wrong about the states it reaches,
and random rollouts rarely reach them. So each further round plays the last round's agent
in the real environment, adds those episodes to M's data, trains M further on all of it
and evolves C further in the new dream. C itself still takes no real step: the real
episodes are M's data, as the random rollouts were. V is not retrained.

Round r's stages are ``collect_round{r}``, ``encode_round{r}``, ``fit_memory_round{r}`` and
``fit_controller_round{r}``, between ``fit_controller`` and ``evaluate``. M and C continue
from their checkpoints, so their metrics files and epoch/generation counts run on across
rounds, and a round cut short resumes like any stage.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from wmkit.recipe import Recipe
from wmkit.stages.base import StageContext
from wmkit.stages.collect import collect_episodes, play_one
from wmkit.stages.encode import encode_dataset
from wmkit.stages.fit_controller import fit_controller
from wmkit.stages.fit_memory import fit_memory

Stage = Callable[[StageContext], dict[str, Any]]


def round_episodes(recipe: Recipe, round_: int) -> range:
    """Episode indices collected in ``round_`` (2 or more), after the random rollouts."""
    n = recipe.iterate.episodes
    first = recipe.collect.episodes + (round_ - 2) * n
    return range(first, first + n)


def episode_round(recipe: Recipe, episode: int) -> int:
    """The round that collected ``episode``: 1 for the random rollouts (``round_episodes``
    inverted)."""
    first = recipe.collect.episodes
    return 1 if episode < first else 2 + (episode - first) // recipe.iterate.episodes


def collect_round(ctx: StageContext, round_: int) -> dict:
    """Play the agent that the last round left in the checkpoints, recording as collect does."""
    label = f"collect (round {round_} agent)"
    return collect_episodes(ctx, round_episodes(ctx.recipe, round_), play_one, label)


def fit_memory_round(ctx: StageContext, round_: int) -> dict:
    """M's epochs so far plus ``iterate.memory_epochs``, on every episode collected so far."""
    total = ctx.recipe.memory.options.epochs + (round_ - 1) * ctx.recipe.iterate.memory_epochs
    return fit_memory(ctx, epochs=total)


def fit_controller_round(ctx: StageContext, round_: int) -> dict:
    """The optimizer's search goes on, in the dream of this round's M."""
    first = ctx.recipe.optimizer.options.generations
    more = ctx.recipe.iterate.generations or first
    return fit_controller(ctx, generations=first + (round_ - 1) * more)


def round_stages(recipe: Recipe) -> list[tuple[str, Stage]]:
    """The stages of rounds 2 to ``iterate.rounds``, in order (none for a single pass)."""
    stages: list[tuple[str, Stage]] = []
    for r in range(2, recipe.iterate.rounds + 1):
        stages += [
            (f"collect_round{r}", partial(collect_round, round_=r)),
            (f"encode_round{r}", encode_dataset),
            (f"fit_memory_round{r}", partial(fit_memory_round, round_=r)),
            (f"fit_controller_round{r}", partial(fit_controller_round, round_=r)),
        ]
    return stages
