"""Stage 5: evolve C with the optimizer; every candidate is scored by real rollouts with the
trained V and M in the loop, the rollouts spread over the worker processes."""

from __future__ import annotations

import time

import numpy as np
import torch

from wmkit import checkpoint
from wmkit.components import build_controller, build_optimizer, build_trained, save_component
from wmkit.metrics import MetricsLogger, read_metrics
from wmkit.plots import plot_fitness
from wmkit.policies import AgentPolicy
from wmkit.rollout import run_episode
from wmkit.seeding import derive_seed
from wmkit.stages.base import StageContext
from wmkit.worker import context


def fitness_rollout(task: tuple[np.ndarray, int]) -> tuple[float, int]:
    """Worker task: the return (and length) of one episode of the controller with these
    parameters."""
    params, seed = task
    options = context().recipe.optimizer.options
    agent = context().agent()
    agent.controller.set_params(params)
    ep = run_episode(
        context().env(),
        AgentPolicy(agent),
        seed,
        options.max_steps,
        record=False,
        stop_without_reward=options.stop_without_reward,
    )
    return ep.total_return, ep.steps


def fit_controller(ctx: StageContext) -> dict:
    recipe, options = ctx.recipe, ctx.recipe.optimizer.options
    ckpt = ctx.run.checkpoints
    # The controller's input size comes from the trained V and M.
    vision, memory, _ = build_trained(recipe, ctx.registry, ctx.spec, ckpt, controller=False)
    latent_dim = vision.latent_dim
    torch.manual_seed(derive_seed(recipe.seed, "controller-init"))
    controller = build_controller(recipe, ctx.registry, latent_dim + memory.feature_dim, ctx.spec)
    optimizer = build_optimizer(
        recipe, ctx.registry, controller.get_params(), derive_seed(recipe.seed, "optimizer")
    )
    state_stem = ckpt / "optimizer_state"
    start = 0
    if checkpoint.exists(state_stem):
        state, meta = checkpoint.load_tensors(state_stem)
        optimizer.load_state_dict(state)
        start = int(meta["generation"])
    logger = MetricsLogger(ctx.run.metrics, ctx.run.tensorboard, "fit_controller", start - 1)
    task = ctx.progress.add_task(
        "fit controller", total=options.generations, completed=start, info=""
    )
    executor = ctx.executor()
    try:
        for gen in range(start, options.generations):
            if optimizer.stop():
                break
            t0 = time.time()
            solutions = optimizer.ask()
            seeds = [
                derive_seed(recipe.seed, "fitness", gen, j)
                for j in range(options.rollouts_per_candidate)
            ]
            tasks = [(x, s) for x in solutions for s in seeds]
            returns = np.zeros(len(tasks))
            steps = 0
            for i, (value, n) in executor.map(fitness_rollout, tasks):
                returns[i] = value
                steps += n
            fitness = returns.reshape(len(solutions), len(seeds)).mean(axis=1)
            optimizer.tell(solutions, fitness.tolist())
            best_x, best_f = optimizer.result()
            logger.log(
                gen,
                best=float(fitness.max()),
                mean=float(fitness.mean()),
                worst=float(fitness.min()),
                best_ever=float(best_f),
                env_steps=steps,
                seconds=round(time.time() - t0, 3),
            )
            controller.set_params(best_x)
            save_component(
                ckpt / "controller",
                controller,
                recipe,
                "controller",
                generation=gen + 1,
                fitness=float(best_f),
            )
            checkpoint.save_tensors(state_stem, optimizer.state_dict(), {"generation": gen + 1})
            ctx.progress.update(
                task,
                advance=1,
                info=f"best {fitness.max():.1f} mean {fitness.mean():.1f} best-ever {best_f:.1f}",
            )
    finally:
        executor.close()
        logger.close()
    rows = read_metrics(logger.path)
    if rows:
        plot_fitness(rows, ctx.run.plots / "controller_fitness.png")
    best_x, best_f = optimizer.result()
    controller.set_params(best_x)
    save_component(
        ckpt / "controller",
        controller,
        recipe,
        "controller",
        generation=len(rows),
        fitness=float(best_f),
    )
    return {"generations": len(rows), "best_fitness": float(best_f)}
