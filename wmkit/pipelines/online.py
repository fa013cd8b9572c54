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

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.core.protocols import (
    GradientController,
    GradientOptimizer,
    GradientOptions,
    PipelineOptions,
    WorldModel,
)
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
from wmkit.nn.cuda_graph import request_graph
from wmkit.pipelines.base import BasePipeline
from wmkit.pipelines.gap import GapRow, measure, policy_controller
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.collect import collect
from wmkit.pipelines.stages.evaluate import EvalResult, evaluate
from wmkit.record.metrics import MetricsLogger
from wmkit.rollouts.agent import WorldModelPolicy
from wmkit.rollouts.components import construct, load_component, save_component
from wmkit.rollouts.envs import EnvSpec, make_env
from wmkit.rollouts.episode import run_episode
from wmkit.storage import checkpoint, scores
from wmkit.storage.fileio import atomic_write_text, json_text, sha256_bytes
from wmkit.storage.replay import Replay
from wmkit.storage.store import RolloutStore

# train_online's checkpoint of everything after each episode (``_save_resume``).
RESUME = "online_resume"


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


def build_agent_parts(
    recipe: Recipe, registry: Registry, spec: EnvSpec
) -> tuple[WorldModel, GradientController, GradientOptimizer]:
    """The world model, the actor on its features, and the optimizer that trains the actor."""
    wm_block, c_block, o_block = recipe.world_model, recipe.controller, recipe.optimizer
    world_model = construct(
        registry, "world_model", wm_block.name, wm_block.options, spec.obs_shape, spec.action_dim
    )
    controller = construct(
        registry,
        "controller",
        c_block.name,
        c_block.options,
        world_model.feature_dim,
        spec.action_low,
        spec.action_high,
    )
    optimizer = construct(
        registry,
        "optimizer",
        o_block.name,
        o_block.options,
        controller,
        world_model.feature_dim,
        derive_seed(recipe.seed, "optimizer"),
    )
    request_graph(optimizer, recipe.dream.graph)
    return world_model, controller, optimizer


def trained_parts(
    recipe: Recipe,
    registry: Registry,
    spec: EnvSpec,
    checkpoints: Path,
    device: torch.device | str = "cpu",
    controller: bool = True,
) -> tuple[WorldModel, GradientController | None]:
    """The trained world model (in eval mode) and actor (None unless ``controller``) from a
    run's checkpoints, on ``device``: what eval, dream and gap play."""
    world_model, actor, _ = build_agent_parts(recipe, registry, spec)
    load_component(checkpoints / "world_model", world_model, "world_model")
    world_model.to(device).eval()
    if not controller:
        return world_model, None
    load_component(checkpoints / "controller", actor, "controller")
    actor.to(device)
    return world_model, actor


def in_progress_parts(
    recipe: Recipe,
    registry: Registry,
    spec: EnvSpec,
    checkpoints: Path,
    device: torch.device | str = "cpu",
) -> tuple[WorldModel, GradientController, dict[str, int]]:
    """The world model and actor of a run that may still be training, as ``train_online``
    saved them after its latest episode, and how far it had got (``episodes`` played by the
    actor, ``updates``): a long run can be scored along the way without stopping it."""
    stem = checkpoints / RESUME
    if not checkpoint.exists(stem):
        raise WmkitError(
            f"{stem}.safetensors: no in-progress checkpoint yet; it is written after the "
            "actor's first episode of train_online"
        )
    tensors, meta = checkpoint.load_tensors(stem)  # checksummed, so the counters are too
    world_model, actor, _ = build_agent_parts(recipe, registry, spec)
    try:
        _load_agent(tensors, world_model, actor)
        progress = {"episodes": int(meta["episodes"]), "updates": int(meta["updates"])}
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WmkitError(f"{stem}.safetensors: does not fit this run's recipe ({first})") from None
    world_model.to(device).eval()
    actor.to(device)
    return world_model, actor, progress


def _load_agent(
    tensors: dict[str, Any], world_model: WorldModel, controller: GradientController
) -> None:
    """The world model's and actor's weights from the tensors ``_save_resume`` wrote."""
    world_model.load_state_dict(_prefixed(tensors, "world_model."))
    controller.set_params(tensors["controller.params"])


def _prefixed(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


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
        _load_agent(tensors, world_model, controller)
        world_model.load_train_state_dict(_prefixed(tensors, "world_model_optim."))
        optimizer.load_state_dict(_prefixed(tensors, "optimizer."))
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
