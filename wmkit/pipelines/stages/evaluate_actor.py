"""The online pipeline's evaluation: the trained actor's most likely actions in real
episodes, the world model tracking the state; and its ``evaluate`` stage."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
import torch

from wmkit.core.protocols import GradientController, WorldModel
from wmkit.core.seeding import derive_seed
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.evaluate import EvalResult
from wmkit.rollouts.agent import WorldModelPolicy
from wmkit.rollouts.envs import make_env
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.world_model_agent import trained_parts
from wmkit.storage import scores
from wmkit.storage.fileio import atomic_write_text, json_text, sha256_bytes


def evaluate_actor(
    ctx: StageContext,
    episodes: int | None = None,
    seed: int | None = None,
    parts: tuple[WorldModel, GradientController] | None = None,
) -> EvalResult:
    """The trained actor's most likely actions over ``episodes`` real episodes (default
    ``eval.episodes``) on the seeds ``seed + i`` (default ``eval.seed``; training episodes
    use seeds derived from the recipe's seed). The evaluate stage and ``wmkit eval`` use it;
    ``parts`` plays another world model and actor (``in_progress_parts``) instead."""
    recipe, cfg = ctx.recipe, ctx.recipe.eval
    if parts is None:
        parts = trained_parts(recipe, ctx.registry, ctx.spec, ctx.run.checkpoints)
    world_model, controller = parts
    env = make_env(recipe.env, ctx.registry)
    policy = WorldModelPolicy(world_model, controller, ctx.spec.action_dim, explore=False)
    first = cfg.seed if seed is None else seed
    seeds = [first + i for i in range(cfg.episodes if episodes is None else episodes)]
    returns, steps = [], []
    bar = ctx.progress.add_task("eval controller (real)", total=len(seeds), info="")
    for i, episode_seed in enumerate(seeds):
        # The world model samples its latents: seeded by the episode's index.
        torch.manual_seed(derive_seed(recipe.seed, "online-eval", i))
        episode = run_episode(env, policy, episode_seed, cfg.max_steps, record=False)
        returns.append(episode.total_return)
        steps.append(episode.steps)
        ctx.progress.update(bar, advance=1, info=f"last {episode.total_return:.1f}")
    env.close()
    return EvalResult(
        "controller",
        len(seeds),
        float(np.mean(returns)),
        float(statistics.pstdev(returns)) if len(returns) > 1 else 0.0,
        float(min(returns)),
        float(max(returns)),
        [round(float(r), 3) for r in returns],
        seeds,
        steps,
    )


def evaluate_online(ctx: StageContext) -> dict[str, Any]:
    """The evaluate stage: ``evaluate_actor`` with the recipe's ``eval`` block, to eval.json."""
    result = evaluate_actor(ctx)
    text = json_text({**result.to_dict(), "real": {"mean": result.mean, "std": result.std}})
    atomic_write_text(ctx.run.eval_path, text)
    # The same per-episode score file as the paper's pipeline, for compare and report.
    scores.record_evaluation(
        ctx.run, scores.PIPELINE_EVALUATION, scores.real_evaluation(result, str(ctx.device))
    )
    return {
        "mean": result.mean,
        "std": result.std,
        "episodes": result.episodes,
        "sha256": sha256_bytes(text.encode()),
    }
