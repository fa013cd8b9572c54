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

import numpy as np

from wmkit.core.protocols import GradientOptions
from wmkit.core.recipe import Recipe
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.collect import collect_episodes, play_one
from wmkit.pipelines.stages.encode import encode_dataset
from wmkit.pipelines.stages.fit_controller import fit_controller
from wmkit.pipelines.stages.fit_memory import fit_memory
from wmkit.rollouts.components import build_optimizer
from wmkit.storage import checkpoint
from wmkit.storage.store import RolloutStore

Stage = Callable[[StageContext], dict[str, Any]]
# What trains C in a round: ``fit_controller``'s signature (ctx, generations, rollouts,
# fresh_from). The pipeline hands it in, so that this module need not choose.
ControllerTrainer = Callable[..., dict[str, Any]]


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


def round_candidates(ctx: StageContext) -> list[np.ndarray]:
    """The controllers a round plays: the one the last round kept, then
    ``iterate.candidates - 1`` draws from the optimizer's search distribution as it stands.

    The draws show M the neighbourhood the search will move into next, not only the point
    it kept. They are a pure function of the saved search state (the next generation's
    ``ask``, never told), so a resumed round plays the same ones.
    """
    kept, _ = checkpoint.load_tensors(ctx.run.checkpoints / "controller")
    if isinstance(ctx.recipe.optimizer.options, GradientOptions):
        # An actor has no search distribution to draw from: it plays every episode.
        return [np.asarray(kept["params"], float)] * ctx.recipe.iterate.candidates
    state, _ = checkpoint.load_tensors(ctx.run.checkpoints / "optimizer_state")
    # x0 and seed only size the optimizer: its saved state replaces both.
    optimizer = build_optimizer(ctx.recipe, ctx.registry, np.asarray(kept["params"], float), 0)
    optimizer.load_state_dict(state)
    candidates = [optimizer.result()[0]]
    while len(candidates) < ctx.recipe.iterate.candidates:
        candidates += optimizer.ask()
    return candidates[: ctx.recipe.iterate.candidates]


def collect_round(ctx: StageContext, round_: int) -> dict:
    """Play the last round's agent (and draws around it), recording as collect does; the
    round's ``i``-th episode plays candidate ``i % iterate.candidates``."""
    label = f"collect (round {round_} agent)"
    indices = round_episodes(ctx.recipe, round_)
    candidates = round_candidates(ctx)

    def turn(i: int) -> int:
        return (i - indices.start) % len(candidates)

    summary = collect_episodes(
        ctx,
        indices,
        play_one,
        label,
        lambda i: (candidates[turn(i)],),
        ctx.agent_weights(controller=False),
    )
    returns = [
        info.total_return
        for info in RolloutStore(ctx.run.rollouts).infos()
        if info.episode in indices and turn(info.episode) == 0
    ]
    return {**summary, "kept_mean_return": float(np.mean(returns))}


def fit_memory_round(ctx: StageContext, round_: int) -> dict:
    """M's epochs so far plus ``iterate.memory_epochs``, on every episode collected so far."""
    total = ctx.recipe.memory.options.epochs + (round_ - 1) * ctx.recipe.iterate.memory_epochs
    return fit_memory(ctx, epochs=total)


def fit_controller_round(
    ctx: StageContext, round_: int, train: ControllerTrainer = fit_controller
) -> dict:
    """The optimizer's search goes on, in the dream of this round's M; what it kept from
    earlier rounds' dreams is forgotten (``Optimizer.fitness_changed``)."""
    first = ctx.recipe.optimizer.options.generations
    more = ctx.recipe.iterate.generations or first
    start = first + (round_ - 2) * more
    return train(ctx, start + more, ctx.recipe.iterate.rollouts_per_candidate, fresh_from=start)


def round_stages(
    recipe: Recipe, train: ControllerTrainer = fit_controller
) -> list[tuple[str, Stage]]:
    """The stages of rounds 2 to ``iterate.rounds``, in order (none for a single pass); C is
    trained further in each by ``train``, the pipeline's choice."""
    stages: list[tuple[str, Stage]] = []
    for r in range(2, recipe.iterate.rounds + 1):
        stages += [
            (f"collect_round{r}", partial(collect_round, round_=r)),
            (f"encode_round{r}", encode_dataset),
            (f"fit_memory_round{r}", partial(fit_memory_round, round_=r)),
            (f"fit_controller_round{r}", partial(fit_controller_round, round_=r, train=train)),
        ]
    return stages
