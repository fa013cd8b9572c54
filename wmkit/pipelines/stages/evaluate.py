"""Scoring a controller: ``evaluate`` plays it (or the random policy) over many real
episodes, ``dream_episodes`` over many dreams. ``evaluate_stage`` is the ``ha``
pipeline's ``evaluate`` stage; ``wmkit eval`` and the temperature sweep use them too."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmkit.core.protocols import Controller, Memory
from wmkit.core.seeding import derive_seed
from wmkit.dreams.rollout import DreamResult, dream_rollout
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.collect import random_policy
from wmkit.pipelines.stages.fit_controller import (
    sample_starts,
    start_latents,
    trained_memory_and_fresh_controller,
)
from wmkit.rollouts.components import load_component
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import AgentPolicy, recipe_policy
from wmkit.rollouts.worker import context
from wmkit.storage import scores
from wmkit.storage.fileio import atomic_write_text, json_text, sha256_bytes


@dataclass
class EvalResult:
    """Returns of every episode with their seeds, and the summary a paper would report."""

    policy: str
    episodes: int
    mean: float
    std: float
    min: float
    max: float
    returns: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def eval_episode(task: tuple[str, int, int | None, bool]) -> tuple[float, int, list | None]:
    """Worker task: one real episode of the trained agent, the collection policy ("random") or
    a fixed policy by name (see ``fixed_policy``)."""
    policy_kind, seed, max_steps, record = task
    ctx = context()
    if policy_kind == "controller":
        policy = AgentPolicy(ctx.agent())
    elif policy_kind == "random":
        policy = random_policy(ctx, seed)
    else:
        policy = recipe_policy(policy_kind, ctx.spec(), seed, ctx.recipe.collect)
    ep = run_episode(ctx.env(), policy, seed, max_steps, record=False, record_raw=record)
    return ep.total_return, ep.steps, ep.raw_frames


def evaluate(
    ctx: StageContext,
    policy: str = "controller",
    episodes: int | None = None,
    seed: int | None = None,
    video_dir: Path | None = None,
    controller_stem: Path | None = None,
) -> EvalResult:
    cfg = ctx.recipe.eval
    episodes = cfg.episodes if episodes is None else episodes
    first = cfg.seed if seed is None else seed
    seeds = [first + i for i in range(episodes)]
    returns = np.zeros(episodes)
    steps = np.zeros(episodes, dtype=int)
    task = ctx.progress.add_task(f"eval {policy} (real)", total=episodes, info="")
    weights = ctx.agent_weights(controller_stem=controller_stem) if policy == "controller" else None
    executor = ctx.executor(min(ctx.recipe.num_workers(), episodes), weights)
    try:
        tasks = [(policy, s, cfg.max_steps, False) for s in seeds]
        for i, (ret, n, _) in executor.map(eval_episode, tasks):
            returns[i], steps[i] = ret, n
            ctx.progress.update(task, advance=1, info=f"last {ret:.1f}")
        if video_dir is not None:
            # Episodes are deterministic given their seed: replay best and worst to film them.
            from wmkit.record.video import write_video

            picks = [("best", int(returns.argmax())), ("worst", int(returns.argmin()))]
            replay = [(policy, seeds[i], cfg.max_steps, True) for _, i in picks]
            for k, (_, _, frames) in executor.map(eval_episode, replay):
                label, i = picks[k]
                write_video(frames, video_dir / f"{policy}_{label}_seed{seeds[i]}.mp4")
    finally:
        executor.close()
    return EvalResult(
        policy,
        episodes,
        float(returns.mean()),
        float(statistics.pstdev(returns.tolist())) if episodes > 1 else 0.0,
        float(returns.min()),
        float(returns.max()),
        [round(float(r), 3) for r in returns],
        seeds,
        steps.tolist(),
    )


@torch.no_grad()
def dream_episodes(
    ctx: StageContext,
    memory: Memory,
    controller: Controller,
    temperature: float,
    episodes: int | None = None,
) -> DreamResult:
    """The controller's dreamed episodes in M, from real episode starts, at ``temperature``."""
    episodes = episodes or ctx.recipe.dream.score_episodes
    starts = start_latents(ctx, ctx.device)
    return dream_from_starts(ctx, memory, controller, starts, episodes, temperature, "dream-score")


def dream_from_starts(
    ctx: StageContext,
    memory: Memory,
    controller: Controller,
    starts: tuple[torch.Tensor, torch.Tensor],
    episodes: int,
    temperature: float,
    stream: str,
) -> DreamResult:
    """``episodes`` dreams from real ``starts`` under the recipe's ``dream`` block; the
    starts and the dream's noise come from one generator seeded by ``stream``, so each use
    (scoring, the gap) draws its own reproducible numbers."""
    cfg = ctx.recipe.dream
    gen = torch.Generator(device=ctx.device)
    gen.manual_seed(derive_seed(ctx.recipe.seed, stream))
    z0 = sample_starts(starts, episodes, gen)
    return dream_rollout(
        memory,
        controller,
        z0,
        None,
        temperature,
        cfg.max_steps,
        cfg.done_threshold,
        gen,
        graph=cfg.graph,
    )


def dream_summary(result: DreamResult, temperature: float) -> dict:
    """Mean, std, min, max and mean length of dreamed episodes (``eval.json``'s ``dream``)."""
    returns = result.returns.cpu().numpy()
    return {
        "temperature": temperature,
        "episodes": len(returns),
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "mean_steps": float(result.steps.float().mean()),
    }


def evaluate_stage(ctx: StageContext) -> dict[str, Any]:
    """The ``ha`` pipeline's ``evaluate`` stage: the real score over eval.episodes, and the
    same controller's score in the dream, written to eval.json and scores.json."""
    result = evaluate(ctx)
    memory, controller = trained_memory_and_fresh_controller(ctx)
    load_component(ctx.run.checkpoints / "controller", controller, "controller")
    if isinstance(controller, torch.nn.Module):
        controller.to(ctx.device)
    tau = ctx.recipe.dream.temperature
    dreamed = dream_episodes(ctx, memory, controller, tau)
    dream = dream_summary(dreamed, tau)
    data = {
        **result.to_dict(),
        "real": {"mean": result.mean, "std": result.std},
        "dream": dream,
        "train_in": ctx.recipe.optimizer.options.train_in,
    }
    text = json_text(data)
    atomic_write_text(ctx.run.eval_path, text)
    device, generation = str(ctx.device), len(scores.generation_rows(ctx.run))
    scores.record_evaluation(
        ctx.run,
        scores.PIPELINE_EVALUATION,
        scores.real_evaluation(result, device, generation=generation),
    )
    scores.record_evaluation(
        ctx.run,
        f"{scores.PIPELINE_EVALUATION}_dream",
        scores.dream_evaluation(dreamed, tau, device, generation=generation),
    )
    return {
        "mean": result.mean,
        "std": result.std,
        "episodes": result.episodes,
        "dream_mean": dream["mean"],
        "sha256": sha256_bytes(text.encode()),  # so that verify finds a damaged eval.json
    }
