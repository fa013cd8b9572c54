"""The online pipeline, the Dreamer line's: a world model and an actor trained as the agent plays.

    collect        the recipe's random policy plays ``collect.episodes`` first episodes
    train_online   repeat until ``pipeline.env_steps`` real steps: play one episode with the
                   current actor (sampling its actions), then train until the world model has
                   replayed ``train_ratio`` steps per real step; each training step fits the
                   world model on real sequences, then the optimizer (an actor-critic) in
                   trajectories the world model imagines from them
    evaluate       the actor's most likely actions over ``eval.episodes`` real episodes

Episodes go to the same shard store as the paper's pipeline's; training reads the newest of
them from a replay of bounded size. ``train_online`` saves everything after every episode
(weights, optimizer moments, counters) in one checkpoint, and seeds each episode and each
training step by its index, so a run killed anywhere resumes to the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.core.protocols import GradientController, GradientOptions
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.core.seeding import derive_seed
from wmkit.dreams.film import Imagination
from wmkit.dreams.imagination import (
    first_observations,
    imagine_episodes,
    imagine_video,
    start_states,
)
from wmkit.pipelines.base import BasePipeline
from wmkit.pipelines.gap import GapRow, measure, policy_controller
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.collect import collect
from wmkit.pipelines.stages.evaluate import EvalResult, evaluate
from wmkit.pipelines.stages.evaluate_actor import evaluate_actor, evaluate_online
from wmkit.pipelines.stages.train_online import OnlineOptions, train_online
from wmkit.rollouts.world_model_agent import build_agent_parts, in_progress_parts, trained_parts

# Before the split (0.1's wmkit.online held them all): importable from here for one release.
__all__ = [
    "OnlineOptions",
    "OnlinePipeline",
    "build_agent_parts",
    "evaluate_actor",
    "evaluate_online",
    "in_progress_parts",
    "train_online",
    "trained_parts",
]


class OnlinePipeline(BasePipeline):
    """collect (random) -> train_online (play and train, interleaved) -> evaluate."""

    name = "online"
    Options = OnlineOptions
    roles = {
        "world_model": "rssm",
        "controller": "actor",
        "optimizer": "actor_critic",
        "executor": "local",
    }
    # Episodes keep the observation after their last action: a world model trained on
    # whole transitions learns from it that the episode ended there.
    record_last_frame = True
    # Its agent is the world model and the actor (saved as "controller"), the checkpoints
    # train_online writes besides its resume checkpoint; a zoo entry holds those two.
    zoo_weights = ("world_model", "controller")

    def stages(self, recipe: Recipe) -> list[tuple[str, Any]]:
        return [(name, stage) for name, stage in STAGES]

    @classmethod
    def stage_order(cls, layout: Any) -> list[str]:
        return [name for name, _ in STAGES]

    def evaluate(
        self,
        ctx: StageContext,
        episodes: int | None = None,
        seed: int | None = None,
        video_dir: Path | None = None,
    ) -> EvalResult:
        """What ``wmkit eval`` plays for the trained controller: the actor's most likely
        actions, the world model tracking the state (no videos are kept)."""
        return evaluate_actor(ctx, episodes, seed)

    def evaluate_in_progress(
        self, ctx: StageContext, episodes: int | None = None, seed: int | None = None
    ) -> tuple[EvalResult, dict[str, int]]:
        """What ``wmkit eval --in-progress`` plays: the actor as train_online last saved it."""
        *parts, progress = in_progress_parts(
            ctx.recipe, ctx.registry, ctx.spec, ctx.run.checkpoints
        )
        return evaluate_actor(ctx, episodes, seed, parts=tuple(parts)), progress

    def dream_film(
        self,
        ctx: StageContext,
        env: Any,
        steps: int,
        temperature: float | None,
        seed: int,
        side_by_side: bool,
        random: Any,
        controller: bool,
    ) -> Imagination:
        """The world model imagines from its state after the first real observation of the
        episode ``seed``, and decodes what it believes each step looks like."""
        recipe, device = ctx.recipe, str(ctx.device)
        _no_temperature(recipe, temperature)
        if ctx.spec.vector_obs:
            raise WmkitError(
                f"{ctx.run.root}: {recipe.env.id} is observed as state vectors; there are no "
                "frames to film (use 'wmkit gap' to compare dream and reality)"
            )
        world_model, actor = trained_parts(
            recipe, ctx.registry, ctx.spec, ctx.run.checkpoints, device, controller
        )
        return imagine_video(
            env,
            world_model,
            actor,
            ctx.spec.action_dim,
            steps,
            seed,
            side_by_side,
            random,
            recipe.dream.done_threshold,
            device,
            sample_ends=recipe.dream.ends == "sample",
        )

    def measure_gap(
        self,
        ctx: StageContext,
        policies: list[str],
        episodes: int,
        temperature: float | None,
        controller: bool,
    ) -> tuple[list[GapRow], None]:
        """Each policy's dreams start from the world model's state after a real first
        observation of the run's episodes (the same ones for every policy), and
        ``controller`` is the actor's most likely actions, in the dream and in the game."""
        recipe, cfg = ctx.recipe, ctx.recipe.dream
        _no_temperature(recipe, temperature)
        world_model, actor = trained_parts(
            recipe, ctx.registry, ctx.spec, ctx.run.checkpoints, ctx.device, controller
        )

        def dream(name: str) -> Any:
            gen = torch.Generator().manual_seed(derive_seed(recipe.seed, "gap"))
            state = start_states(
                world_model, observations, ctx.spec.action_dim, episodes, gen, ctx.device
            )
            act = actor.act if name == "controller" else policy_controller(ctx, name, episodes).act
            torch.manual_seed(derive_seed(recipe.seed, "gap dream"))
            return imagine_episodes(
                world_model, act, state, cfg.max_steps, cfg.done_threshold, cfg.ends == "sample"
            )

        def real(name: str) -> EvalResult:
            if name == "controller":
                return evaluate_actor(ctx, episodes)
            return evaluate(ctx, name, episodes)

        with ctx.progress:
            observations = first_observations(ctx.run)
            return measure(policies, dream, real), None

    def preflight(self, ctx: StageContext) -> None:
        from wmkit.core.resources import building

        recipe, spec = ctx.recipe, ctx.spec
        if recipe.collect.policy == "controller":
            raise WmkitError(
                "collect.policy: pipeline 'online' plays its first episodes with a random "
                "policy; set uniform, brownian or held"
            )
        if not isinstance(recipe.optimizer.options, GradientOptions):
            raise WmkitError(
                f"optimizer: {recipe.optimizer.name!r} is an ask/tell search; pipeline 'online' "
                "trains its actor by gradients (optimizer: actor_critic)"
            )
        kind = getattr(recipe.controller.options, "distribution", None)
        if kind == "categorical" and not spec.discrete:
            raise WmkitError(
                f"controller.distribution: categorical needs a Discrete action space, and "
                f"{recipe.env.id!r}'s is continuous; set gaussian"
            )
        if kind == "gaussian" and spec.discrete:
            raise WmkitError(
                f"controller.distribution: {recipe.env.id!r} has a Discrete action space; "
                "set categorical"
            )
        with building("world_model"):
            _, controller, _ = build_agent_parts(recipe, ctx.registry, spec)
        if not isinstance(controller, GradientController):
            raise WmkitError(
                f"controller: {recipe.controller.name!r} has no action distribution to train by "
                "gradients; choose one such as actor"
            )


STAGES: list[tuple[str, Any]] = [
    ("collect", collect),
    ("train_online", train_online),
    ("evaluate", evaluate_online),
]


def _no_temperature(recipe: Recipe, temperature: float | None) -> None:
    """A world model draws its latents as trained: there is no temperature to set."""
    if temperature is not None:
        raise WmkitError(
            f"--temperature: {recipe.world_model.name!r} draws its latents as trained; it "
            "has no temperature"
        )


@hookimpl
def wmkit_register(registry: Registry) -> None:
    registry.add_pipeline(OnlinePipeline)
