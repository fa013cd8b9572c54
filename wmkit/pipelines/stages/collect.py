"""Stage 1, collect: rollouts played by the workers, which return their arrays; the driver
writes the shards and the manifest. The first round plays the recipe's collection policy
(``collect_one``: a random policy, or a freshly initialised V, M and C); each further round
of ``iterate`` plays the last round's trained agent (``play_one``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from wmkit.core.seeding import derive_seed
from wmkit.pipelines.stages.base import StageContext
from wmkit.rollouts.agent import Agent
from wmkit.rollouts.components import AgentWeights, build_controller, build_memory, build_vision
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import AgentPolicy, Policy, recipe_policy
from wmkit.rollouts.worker import WorkerContext, context
from wmkit.storage.store import RolloutStore

Arrays = dict[str, np.ndarray]


def random_policy(ctx: WorkerContext, seed: int) -> Policy:
    """The recipe's collection policy for one episode, seeded by that episode."""
    cfg = ctx.recipe.collect
    spec = ctx.spec()
    if cfg.policy != "controller":
        return recipe_policy(cfg.policy, spec, seed, cfg)
    # As in the paper's code: an untrained V, M and C, with a fresh random controller.
    torch.manual_seed(seed)
    vision = build_vision(ctx.recipe, ctx.registry, spec)
    memory = build_memory(ctx.recipe, ctx.registry, vision.latent_dim, spec)
    controller = build_controller(
        ctx.recipe, ctx.registry, vision.latent_dim + memory.feature_dim, spec
    )
    rng = np.random.default_rng(seed)
    controller.set_params(rng.standard_normal(controller.num_params) * 0.1)
    for m in (vision, memory):
        m.eval()
    return AgentPolicy(Agent(vision, memory, controller))


def collect_one(task: tuple[int, int]) -> Arrays:
    """Worker task: play episode ``index`` with ``seed`` and the collection policy; return
    its frames, actions, rewards and dones."""
    index, seed = task
    ctx = context()
    return _record(ctx, random_policy(ctx, seed), seed)


def play_one(task: tuple[int, int, np.ndarray]) -> Arrays:
    """Worker task: the same with the trained V and M the stage sent and a controller with
    the task's ``params``."""
    index, seed, params = task
    ctx = context()
    agent = ctx.agent()
    agent.controller.set_params(params)
    return _record(ctx, AgentPolicy(agent), seed)


def _record(ctx: WorkerContext, policy: Policy, seed: int) -> Arrays:
    cfg = ctx.recipe.collect
    # A pipeline whose world model trains on whole transitions keeps the last observation.
    pipeline = ctx.registry.get("pipeline", ctx.recipe.pipeline.name)
    record_last = pipeline.record_last_frame
    episode = run_episode(ctx.env(), policy, seed, cfg.max_steps, record_last=record_last)
    return episode.arrays(skip=cfg.frame_skip_start)


def collect_episodes(
    ctx: StageContext,
    indices: range,
    task: Callable[[tuple], Arrays],
    label: str,
    extra: Callable[[int], tuple] = lambda i: (),
    weights: AgentWeights | None = None,
) -> dict:
    """Play and store the episodes ``indices`` not yet in the manifest, each seeded by its
    index (``task`` gets ``(index, seed, *extra(index))``, and its workers ``weights``);
    returns their count, frames and mean stored return."""
    store = RolloutStore(ctx.run.rollouts)
    todo = [
        (i, derive_seed(ctx.recipe.seed, "collect", i), *extra(i))
        for i in indices
        if not store.has(i)
    ]
    bar = ctx.progress.add_task(
        label, total=len(indices), completed=len(indices) - len(todo), info=""
    )
    if todo:
        executor = ctx.executor(weights=weights)
        try:
            for k, arrays in executor.map(task, todo):
                store.add(store.write_episode(todo[k][0], arrays))
                ctx.progress.update(bar, advance=1, info=f"{store.total_steps()} frames")
        finally:
            executor.close()
    mine = [info for info in store.infos() if info.episode in indices]
    return {
        "episodes": len(mine),
        "frames": sum(info.steps for info in mine),
        "mean_return": float(np.mean([info.total_return for info in mine])),
    }


def collect(ctx: StageContext) -> dict:
    """Collect ``collect.episodes`` rollouts; episodes already in the manifest are kept."""
    return collect_episodes(ctx, range(ctx.recipe.collect.episodes), collect_one, "collect")
