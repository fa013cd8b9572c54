"""Stage 5 by gradients: C is an actor, trained by a gradient optimizer (the actor-critic) on
trajectories imagined in M's dream, with no real step.

This is the paper's pipeline with its ask/tell search swapped for the Dreamer line's
learner: V and M are trained as before, then ``optimizer: actor_critic`` with ``controller:
actor`` trains C in ``dreams.memory_world_model.MemoryDream``, M seen as a world model. Progress
comes in generations of ``optimizer.updates`` updates, as an ask/tell search's comes in
generations: after each one the actor, the optimizer's own state (critic, Adam moments) and
the count are checkpointed in one file, and the actor's most likely actions are scored on
``optimizer.score_dreams`` whole dreams (its fitness curve, ``kept`` in the metrics). Every
update seeds its own draws, so a rerun resumes at the next generation bit for bit.

Each update imagines ``optimizer.starts`` trajectories of ``horizon`` steps from real
moments of the data: an episode's first frame, or (``dream.starts: anywhere``) any step,
with M warmed up on the ``dream.warmup`` real steps before it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import GradientController
from wmkit.core.seeding import derive_seed
from wmkit.dreams.memory_world_model import MemoryDream
from wmkit.dreams.rollout import dream_rollout
from wmkit.dreams.starts import StartPool, warm_up
from wmkit.nn.cuda_graph import request_graph
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.fit_controller import (
    sample_starts,
    start_latents,
    trained_memory_and_fresh_controller,
)
from wmkit.record.metrics import MetricsLogger
from wmkit.record.plots import plot_fitness
from wmkit.rollouts.components import construct, save_component
from wmkit.storage import checkpoint
from wmkit.storage.jsonl import read_metrics

STATE = "optimizer_state"


def fit_actor(ctx: StageContext, generations: int | None = None) -> dict[str, Any]:
    """Train the actor until ``generations`` generations in all (``optimizer.generations``
    unless given; later rounds of ``iterate`` go on from the last round's actor and critic)."""
    recipe, options, cfg = ctx.recipe, ctx.recipe.optimizer.options, ctx.recipe.dream
    generations = generations or options.generations
    memory, actor = trained_memory_and_fresh_controller(ctx)
    if not isinstance(actor, GradientController):
        raise WmkitError(
            f"controller: {recipe.controller.name!r} has no action distribution for "
            f"{recipe.optimizer.name!r} to train; choose one such as actor"
        )
    actor.to(ctx.device)
    dream = MemoryDream(memory, cfg.temperature)
    firsts = start_latents(ctx, ctx.device)
    feature_dim = firsts[0].shape[1] + memory.feature_dim
    seed = derive_seed(recipe.seed, "optimizer")
    optimizer = construct(
        ctx.registry, "optimizer", recipe.optimizer.name, options, actor, feature_dim, seed
    )
    optimizer.to(ctx.device)
    request_graph(optimizer, cfg.graph)
    stem = ctx.run.checkpoints / STATE
    start = 0
    if checkpoint.exists(stem):
        tensors, meta = checkpoint.load_tensors(stem)
        actor.set_params(np.asarray(tensors.pop("controller.params")))
        optimizer.load_state_dict({k.removeprefix("optimizer."): v for k, v in tensors.items()})
        start = int(meta["generation"])
    pool = StartPool(ctx.run.latents, cfg.warmup, ctx.device) if cfg.starts == "anywhere" else None

    def starts(index: int) -> dict[str, Any]:
        generator = torch.Generator(device=ctx.device)
        generator.manual_seed(derive_seed(recipe.seed, "actor-starts", index))
        if pool is None:
            return dream.start(sample_starts(firsts, options.starts, generator))
        branches = pool.sample(options.starts, generator)
        return dream.start(branches.z0, warm_up(memory, branches))

    logger = MetricsLogger(ctx.run.metrics, ctx.run.tensorboard, "fit_controller", start - 1)
    label = "fit controller (actor-critic in the dream)"
    task = ctx.progress.add_task(label, total=generations, completed=start, info="")
    try:
        for gen in range(start, generations):
            t0 = time.time()
            totals: dict[str, float] = {}
            for u in range(options.updates):
                index = gen * options.updates + u
                state = starts(index)
                torch.manual_seed(derive_seed(recipe.seed, "actor-update", index))
                for key, value in optimizer.update(dream, state).items():
                    totals[key] = totals.get(key, 0.0) + value
            scores, dream_steps = score_in_dream(ctx, dream, actor, firsts)
            logger.log(
                gen,
                best=float(scores.max()),
                mean=float(scores.mean()),
                worst=float(scores.min()),
                kept=float(scores.mean()),
                **{k: v / options.updates for k, v in totals.items()},
                env_steps=0,
                dream_steps=dream_steps,
                seconds=round(time.time() - t0, 3),
            )
            save_component(
                ctx.run.checkpoints / "controller",
                actor,
                recipe,
                "controller",
                generation=gen + 1,
                fitness=float(scores.mean()),
            )
            tensors = {f"optimizer.{k}": v for k, v in optimizer.state_dict().items()}
            tensors["controller.params"] = torch.as_tensor(actor.get_params())
            checkpoint.save_tensors(stem, tensors, {"generation": gen + 1})
            ctx.progress.update(
                task,
                advance=1,
                info=f"dream score {scores.mean():.1f}, imagined return "
                f"{totals.get('imagined_return', 0.0) / options.updates:.2f}",
            )
    finally:
        logger.close()
    rows = read_metrics(logger.path)
    if rows:
        plot_fitness(rows, ctx.run.plots / "controller_fitness.png", f"{label}: dream score")
    kept = rows[-1]["kept"] if rows else float("nan")
    return {"generations": len(rows), "kept_fitness": float(kept), "env_steps": 0}


@torch.no_grad()
def score_in_dream(
    ctx: StageContext,
    dream: MemoryDream,
    actor: GradientController,
    firsts: tuple[torch.Tensor, torch.Tensor],
) -> tuple[np.ndarray, int]:
    """The actor's most likely actions over ``optimizer.score_dreams`` whole dreams from first
    frames (the same starts every generation, so the curve compares like with like)."""
    cfg, options = ctx.recipe.dream, ctx.recipe.optimizer.options
    generator = torch.Generator(device=ctx.device)
    generator.manual_seed(derive_seed(ctx.recipe.seed, "actor-score"))
    z0 = sample_starts(firsts, options.score_dreams, generator)
    result = dream_rollout(
        dream.memory,
        actor,
        z0,
        None,
        dream.temperature,
        cfg.max_steps,
        cfg.done_threshold,
        generator,
        graph=cfg.graph,
    )
    return result.returns.cpu().numpy().astype(float), int(result.steps.sum())
