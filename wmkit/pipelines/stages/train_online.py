"""The online pipeline's training stage: play one episode with the current actor (sampling
its actions), then train until the world model has replayed ``train_ratio`` steps per real
step; each training step fits the world model on real sequences, then the optimizer (an
actor-critic) in trajectories the world model imagines from them.

Everything is saved after every episode (weights, optimizer moments, counters) in one
checkpoint, and each episode and training step is seeded by its index, so a run killed
anywhere resumes to the same numbers.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from pydantic import Field

from wmkit.core.protocols import GradientOptimizer, PipelineOptions, WorldModel
from wmkit.core.seeding import derive_seed
from wmkit.pipelines.stages.base import StageContext
from wmkit.record.metrics import MetricsLogger
from wmkit.rollouts.agent import WorldModelPolicy
from wmkit.rollouts.components import save_component
from wmkit.rollouts.envs import make_env
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.world_model_agent import RESUME, build_agent_parts, load_agent, prefixed
from wmkit.storage import checkpoint
from wmkit.storage.replay import Replay
from wmkit.storage.store import RolloutStore


class OnlineOptions(PipelineOptions):
    env_steps: int = Field(
        100_000,
        ge=1,
        description="Real steps in all, the random first episodes included; training stops there.",
    )
    train_ratio: float = Field(
        32.0,
        gt=0,
        description=(
            "Steps the world model replays per real step: after each episode, training goes "
            "on until updates x batch_size x seq_len reach real steps x train_ratio."
        ),
    )
    replay_capacity: int = Field(
        1_000_000, ge=1, description="Newest real steps the replay holds in memory."
    )


def train_online(ctx: StageContext) -> dict[str, Any]:
    recipe = ctx.recipe
    options: OnlineOptions = recipe.pipeline.options
    wm_options = recipe.world_model.options
    torch.manual_seed(derive_seed(recipe.seed, "online-init"))
    world_model, controller, optimizer = build_agent_parts(recipe, ctx.registry, ctx.spec)
    for part in (world_model, controller, optimizer):
        part.to(ctx.device)
    resume = ctx.run.checkpoints / RESUME
    played, updates = 0, 0
    if checkpoint.exists(resume):
        tensors, meta = checkpoint.load_tensors(resume)
        load_agent(tensors, world_model, controller)
        world_model.load_train_state_dict(prefixed(tensors, "world_model_optim."))
        optimizer.load_state_dict(prefixed(tensors, "optimizer."))
        played, updates = int(meta["episodes"]), int(meta["updates"])

    store = RolloutStore(ctx.run.rollouts)
    first = recipe.collect.episodes
    replay = Replay(options.replay_capacity)
    steps = 0
    for info in store.infos():
        if info.episode < first + played:  # not one played before a crash, not yet counted
            replay.add(store.load(info.episode))
            steps += info.steps
    env = make_env(recipe.env, ctx.registry)
    logger = MetricsLogger(ctx.run.metrics, ctx.run.tensorboard, "train_online", played - 1)
    bar = ctx.progress.add_task(
        "train online", total=options.env_steps, completed=min(steps, options.env_steps), info=""
    )
    per_update = wm_options.batch_size * wm_options.seq_len
    while steps < options.env_steps:
        t0 = time.time()
        index = first + played
        if store.has(index):  # played before a crash, with these same weights and seed
            shard = store.load(index)
        else:
            torch.manual_seed(derive_seed(recipe.seed, "online-act", index))
            world_model.eval()
            policy = WorldModelPolicy(
                world_model, controller, ctx.spec.action_dim, explore=True, device=ctx.device
            )
            seed = derive_seed(recipe.seed, "collect", index)
            episode = run_episode(env, policy, seed, recipe.collect.max_steps, record_last=True)
            shard = episode.arrays()
            store.add(store.write_episode(index, shard))
        replay.add(shard)
        steps += len(shard["action"])
        totals: dict[str, float] = {}
        owed = int(steps * options.train_ratio / per_update)
        n = max(owed - updates, 0)
        while updates < owed:
            for key, value in train_step(ctx, world_model, optimizer, replay, updates).items():
                totals[key] = totals.get(key, 0.0) + value
            updates += 1
        played += 1
        _save_resume(resume, world_model, controller, optimizer, played, updates)
        means = {k: v / n for k, v in totals.items()}
        episode_return = float(shard["reward"].sum())
        logger.log(
            played - 1,
            episode_return=episode_return,
            env_steps=steps,
            updates=updates,
            **means,
            seconds=round(time.time() - t0, 3),
        )
        ctx.progress.update(
            bar,
            completed=min(steps, options.env_steps),
            info=f"episode {played} return {episode_return:.1f}, {updates} updates",
        )
    logger.close()
    env.close()
    save_component(ctx.run.checkpoints / "world_model", world_model, recipe, "world_model")
    save_component(ctx.run.checkpoints / "controller", controller, recipe, "controller")
    return {"episodes": played, "env_steps": steps, "updates": updates}


def train_step(
    ctx: StageContext,
    world_model: WorldModel,
    optimizer: GradientOptimizer,
    replay: Replay,
    index: int,
) -> dict[str, float]:
    """One training step, seeded by its index: the world model on a batch of real sequences,
    then the actor-critic in the world model's dream from every state of that batch."""
    seed = ctx.recipe.seed
    torch.manual_seed(derive_seed(seed, "online-update", index))
    rng = np.random.default_rng(derive_seed(seed, "online-batch", index))
    options = ctx.recipe.world_model.options
    batch = replay.sample(rng, options.batch_size, options.seq_len, ctx.device)
    world_model.train()
    wm_losses, starts = world_model.fit_batch(batch)
    world_model.eval()
    ac_losses = optimizer.update(world_model, starts)
    return {**{f"wm_{k}": v for k, v in wm_losses.items()}, **ac_losses}


def _save_resume(stem, world_model, controller, optimizer, played: int, updates: int) -> None:
    """Weights, optimizer moments and counters in one file, so they always agree."""
    tensors = {f"world_model.{k}": v for k, v in world_model.state_dict().items()}
    tensors.update({f"world_model_optim.{k}": v for k, v in world_model.train_state_dict().items()})
    tensors["controller.params"] = torch.as_tensor(controller.get_params())
    tensors.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    checkpoint.save_tensors(stem, tensors, {"episodes": played, "updates": updates})
