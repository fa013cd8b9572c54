"""Stage 5: evolve C with the optimizer.

Fitness comes from one of two places (``optimizer.train_in``):

* ``real``: episodes of the real environment with the trained V and M in the loop, spread
  over the worker processes;
* ``dream``: episodes imagined by M alone, a whole generation (population x rollouts) as
  one batch on M's device. No environment is created, let alone stepped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import Controller, GradientOptions, Memory
from wmkit.core.seeding import derive_seed
from wmkit.dreams.guard import ExploitGuard
from wmkit.dreams.rollout import dream_rollout
from wmkit.dreams.starts import StartPool, warm_up
from wmkit.pipelines.stages.base import StageContext
from wmkit.record.metrics import MetricsLogger
from wmkit.record.plots import plot_fitness, plot_guard
from wmkit.rollouts.components import (
    build_controller,
    build_memory,
    build_optimizer,
    load_component,
    save_component,
)
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import AgentPolicy
from wmkit.rollouts.worker import context
from wmkit.storage import checkpoint
from wmkit.storage.jsonl import read_metrics
from wmkit.storage.store import RolloutStore

# Scores a generation: (candidates, generation) -> (fitness per candidate, step counts).
# The counts name where the steps were taken: ``env_steps`` (the real environment) and
# ``dream_steps`` (M's dream), so a dream-trained run's metrics show its zero real steps.
Scorer = Callable[[list[np.ndarray], int], tuple[np.ndarray, dict[str, int]]]


def fitness_rollout(task: tuple[np.ndarray, int]) -> tuple[float, int]:
    """Worker task: the return (and length) of one real episode of the controller with
    these parameters."""
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


def real_scorer(ctx: StageContext, executor, rollouts: int | None = None) -> Scorer:
    """Scores a generation by real episodes, ``rollouts`` per candidate
    (``optimizer.rollouts_per_candidate`` unless given)."""
    k = rollouts or ctx.recipe.optimizer.options.rollouts_per_candidate

    def score(solutions: list[np.ndarray], gen: int) -> tuple[np.ndarray, dict[str, int]]:
        seeds = [derive_seed(ctx.recipe.seed, "fitness", gen, j) for j in range(k)]
        tasks = [(x, s) for x in solutions for s in seeds]
        returns = np.zeros(len(tasks))
        steps = 0
        for i, (value, n) in executor.map(fitness_rollout, tasks):
            returns[i] = value
            steps += n
        fitness = returns.reshape(len(solutions), len(seeds)).mean(axis=1)
        return fitness, {"env_steps": steps, "dream_steps": 0}

    return score


def start_latents(ctx: StageContext, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log-variance of V at the first frame of every collected episode: where
    dreams begin (as shipped, for a zoo entry: ``wmkit.storage.zoo``)."""
    from wmkit.storage.zoo import start_latents_of

    starts = start_latents_of(ctx.run)
    if starts is None:
        starts = RolloutStore(ctx.run.latents).first_latents()
    if starts is None:
        raise WmkitError(f"{ctx.run.latents}: no encoded episode to start dreams from")
    return torch.as_tensor(starts[0], device=device), torch.as_tensor(starts[1], device=device)


def sample_starts(
    pool: tuple[torch.Tensor, torch.Tensor], n: int, generator: torch.Generator
) -> torch.Tensor:
    mu, logvar = pool
    idx = torch.randint(len(mu), (n,), generator=generator, device=mu.device)
    eps = torch.randn(mu[idx].shape, generator=generator, device=mu.device)
    return mu[idx] + (logvar[idx] / 2).exp() * eps


def dream_scorer(
    ctx: StageContext,
    memory: Memory,
    controller: Controller,
    temperature: float,
    salt: str = "dream",
    rollouts: int | None = None,
) -> Scorer:
    """Scores a generation entirely in M's dream, as one batch, ``rollouts`` dreams per
    candidate (``optimizer.rollouts_per_candidate`` unless given)."""
    options, cfg = ctx.recipe.optimizer.options, ctx.recipe.dream
    k = rollouts or options.rollouts_per_candidate
    anywhere = cfg.starts == "anywhere"
    if anywhere:
        branches = StartPool(ctx.run.latents, cfg.warmup, ctx.device)
    else:
        pool = start_latents(ctx, ctx.device)

    def score(solutions: list[np.ndarray], gen: int) -> tuple[np.ndarray, dict[str, int]]:
        gen_rng = torch.Generator(device=ctx.device)
        gen_rng.manual_seed(derive_seed(ctx.recipe.seed, salt, gen))
        # Every candidate meets the same k starts: fairer comparisons.
        state, steps = None, options.max_steps or cfg.max_steps
        if anywhere:
            starts = branches.sample(k, gen_rng).repeat(len(solutions))
            z0, state, steps = starts.z0, warm_up(memory, starts), cfg.horizon
        else:
            z0 = sample_starts(pool, k, gen_rng).repeat(len(solutions), 1)
        params = torch.as_tensor(
            np.repeat(np.stack(solutions), k, axis=0), dtype=torch.float32, device=ctx.device
        )
        result = dream_rollout(
            memory,
            controller,
            z0,
            params,
            temperature,
            steps,
            cfg.done_threshold,
            gen_rng,
            state=state,
            graph=cfg.graph,
        )
        fitness = result.returns.view(len(solutions), k).mean(dim=1).cpu().numpy()
        return fitness.astype(float), {"env_steps": 0, "dream_steps": int(result.steps.sum())}

    return score


def evolve(
    ctx: StageContext,
    controller: Controller,
    score: Scorer,
    ckpt_dir: Path,
    metrics_name: str,
    label: str,
    generations: int | None = None,
    guard: ExploitGuard | None = None,
    fresh_from: int | None = None,
) -> dict:
    """The optimizer's generations (``optimizer.generations`` unless given), checkpointed
    after each one so a restart resumes at the next generation with the optimizer's exact
    state. A ``guard`` checks the dream's ranking in the real game as it goes (wmkit.dreams.guard).
    ``fresh_from`` is the generation where a new fitness (a round's new dream) begins: the
    optimizer is told there, so that it keeps nothing scored by the old one."""
    recipe, options = ctx.recipe, ctx.recipe.optimizer.options
    generations = generations or options.generations
    optimizer = build_optimizer(
        recipe, ctx.registry, controller.get_params(), derive_seed(recipe.seed, "optimizer")
    )
    state_stem = ckpt_dir / "optimizer_state"
    start = 0
    if checkpoint.exists(state_stem):
        state, meta = checkpoint.load_tensors(state_stem)
        optimizer.load_state_dict(state)
        start = int(meta["generation"])
    if start == fresh_from and hasattr(optimizer, "fitness_changed"):
        optimizer.fitness_changed()  # in its state from now on, so a resume keeps it
    logger = MetricsLogger(ctx.run.metrics, ctx.run.tensorboard, metrics_name, start - 1)
    guard_logger, stopped = None, False
    if guard is not None:
        guard_name = f"{metrics_name}_guard"
        guard_logger = MetricsLogger(ctx.run.metrics, ctx.run.tensorboard, guard_name, start - 1)
        stopped = guard.replay(read_metrics(guard_logger.path))
    task = ctx.progress.add_task(label, total=generations, completed=start, info="")
    try:
        for gen in range(start, generations):
            if stopped or optimizer.stop():
                break
            t0 = time.time()
            solutions = optimizer.ask()
            fitness, steps = score(solutions, gen)
            optimizer.tell(solutions, fitness.tolist())
            best_x, best_f = optimizer.result()
            logger.log(
                gen,
                best=float(fitness.max()),
                mean=float(fitness.mean()),
                worst=float(fitness.min()),
                kept=float(best_f),
                **steps,
                seconds=round(time.time() - t0, 3),
            )
            controller.set_params(best_x)
            if guard is not None and guard.due(gen):
                generation = (solutions, fitness)
                stopped = _guard_check(
                    ctx, guard, guard_logger, controller, ckpt_dir, gen, generation, best_f
                )
            save_component(
                ckpt_dir / "controller",
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
        logger.close()
        if guard is not None:
            guard_logger.close()
            guard.close()
    rows = read_metrics(logger.path)
    short = metrics_name.removeprefix("fit_")
    if rows:
        title = f"{label}: return per generation"
        plot_fitness(rows, ctx.run.plots / f"{short}_fitness.png", title)
    best_x, best_f = optimizer.result()
    if stopped and checkpoint.exists(ckpt_dir / "guard_controller"):
        kept, meta = checkpoint.load_tensors(ckpt_dir / "guard_controller")
        best_x, best_f = np.asarray(kept["params"], dtype=float), float(meta["fitness"])
    controller.set_params(best_x)
    save_component(
        ckpt_dir / "controller",
        controller,
        recipe,
        "controller",
        generation=len(rows),
        fitness=float(best_f),
    )
    summary = {"generations": len(rows), "kept_fitness": float(best_f)}
    if guard is not None:
        checks = read_metrics(guard_logger.path)
        if checks:
            plot_guard(checks, ctx.run.plots / f"{short}_guard.png", f"{label}: exploit guard")
        summary |= {
            "guard_checks": len(checks),
            "guard_env_steps": sum(r["env_steps"] for r in checks),
            "guard_stopped": stopped,
        }
    return summary


def _guard_check(
    ctx: StageContext,
    guard: ExploitGuard,
    logger: MetricsLogger,
    controller: Controller,
    ckpt_dir: Path,
    gen: int,
    generation: tuple[list[np.ndarray], np.ndarray],
    kept_fitness: float,
) -> bool:
    """One guard check after generation ``gen``: logged, the kept controller saved as
    ``guard_controller`` when it passes; True when the search should stop."""
    check = guard.check(*generation, gen)
    logger.log(gen, **asdict(check))
    if guard.passed(check):
        save_component(
            ckpt_dir / "guard_controller",
            controller,
            ctx.recipe,
            "controller",
            generation=gen + 1,
            fitness=float(kept_fitness),
        )
    return guard.record(check)


def trained_memory_and_fresh_controller(ctx: StageContext) -> tuple[Memory, Controller]:
    """M from its checkpoint, in eval mode on the stage's device, and a freshly initialised C
    sized for [z, h] (seeded by "controller-init"): a caller that wants a trained C loads its
    weights. V is not needed: z's size is that of the encoded latents M was trained on."""
    latents = RolloutStore(ctx.run.latents)
    latent_dim = int(latents.load(latents.infos()[0].episode)["mu"].shape[1])
    memory = build_memory(ctx.recipe, ctx.registry, latent_dim, ctx.spec)
    load_component(ctx.run.checkpoints / "memory", memory, "memory")
    if isinstance(memory, torch.nn.Module):
        memory.to(ctx.device).eval()
    torch.manual_seed(derive_seed(ctx.recipe.seed, "controller-init"))
    controller = build_controller(
        ctx.recipe, ctx.registry, latent_dim + memory.feature_dim, ctx.spec
    )
    return memory, controller


def exploit_guard(ctx: StageContext) -> ExploitGuard | None:
    """The recipe's exploit guard for a dream-trained C, or None when ``every`` is 0."""
    cfg, options = ctx.recipe.dream, ctx.recipe.optimizer.options
    if cfg.guard.every == 0:
        return None
    max_steps = options.max_steps or cfg.max_steps

    def executor():
        return ctx.executor(weights=ctx.agent_weights(controller=False))

    return ExploitGuard(cfg.guard, ctx.recipe.seed, max_steps, executor, "guard")


def fit_controller(
    ctx: StageContext,
    generations: int | None = None,
    rollouts: int | None = None,
    fresh_from: int | None = None,
) -> dict:
    """Evolve C until ``generations`` generations in all (``optimizer.generations`` unless
    given; later rounds of ``iterate`` go on from the last round's search), scoring each
    candidate by ``rollouts`` episodes (``optimizer.rollouts_per_candidate`` unless given).
    A gradient optimizer (an actor-critic) trains C with ``fit_actor`` instead; the pipeline
    picks which (``pipelines/ha.py``)."""
    if isinstance(ctx.recipe.optimizer.options, GradientOptions):
        raise WmkitError(
            f"optimizer: {ctx.recipe.optimizer.name!r} trains C by gradients (stage fit_actor),"
            " not by an ask/tell search"
        )
    memory, controller = trained_memory_and_fresh_controller(ctx)
    executor, guard = None, None
    try:
        if ctx.recipe.optimizer.options.train_in == "dream":
            if isinstance(controller, torch.nn.Module):
                controller.to(ctx.device)  # the dream runs where M is
            temperature = ctx.recipe.dream.temperature
            score = dream_scorer(ctx, memory, controller, temperature, rollouts=rollouts)
            label, guard = "fit controller (dream)", exploit_guard(ctx)
        else:
            executor = ctx.executor(weights=ctx.agent_weights(controller=False))
            score = real_scorer(ctx, executor, rollouts)
            label = "fit controller"
        return evolve(
            ctx,
            controller,
            score,
            ctx.run.checkpoints,
            "fit_controller",
            label,
            generations,
            guard,
            fresh_from,
        )
    finally:
        if executor is not None:
            executor.close()
