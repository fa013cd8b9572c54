"""The paper's pipeline, ``ha``: collect -> fit V -> encode -> fit M -> fit C -> evaluate
(with further rounds of collect -> encode -> fit M -> fit C before evaluate, see
``stages/iterate.py``, and the temperature sweep after it).

It registers itself through the ``wmkit`` entry-point group, as a third-party pipeline would.
The runner that walks its stages is ``runner.py``, the same for every pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.core.protocols import (
    GradientController,
    GradientOptions,
    OptimizerOptions,
    PipelineOptions,
)
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.dreams.film import Imagination, imagine
from wmkit.pipelines.base import BasePipeline
from wmkit.pipelines.gap import GapRow, measure_gap
from wmkit.pipelines.runner import (  # noqa: F401  0.1's wmkit.pipeline held the runner too
    make_context,
    pipeline_of,
    preflight,
    run_pipeline,
    stages_for,
)
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.collect import collect
from wmkit.pipelines.stages.encode import encode_dataset
from wmkit.pipelines.stages.evaluate import evaluate_stage
from wmkit.pipelines.stages.fit_actor import fit_actor
from wmkit.pipelines.stages.fit_controller import fit_controller
from wmkit.pipelines.stages.fit_memory import fit_memory
from wmkit.pipelines.stages.fit_vision import fit_vision
from wmkit.pipelines.stages.iterate import ControllerTrainer, round_stages
from wmkit.pipelines.stages.sweep import temperature_sweep
from wmkit.record import sinks
from wmkit.rollouts.components import build_trained

Stage = Callable[[StageContext], dict[str, Any]]

STAGES: list[tuple[str, Stage]] = [
    ("collect", collect),
    ("fit_vision", fit_vision),
    ("encode", encode_dataset),
    ("fit_memory", fit_memory),
    ("fit_controller", fit_controller),
    ("evaluate", evaluate_stage),
    ("temperature_sweep", temperature_sweep),
]


def controller_trainer(recipe: Recipe) -> ControllerTrainer:
    """What trains C for this recipe: an ask/tell search (``fit_controller``), or, for a
    gradient optimizer, an actor-critic in M's dream (``fit_actor``). The pipeline picks, so
    that neither stage needs to know of the other."""
    if isinstance(recipe.optimizer.options, GradientOptions):
        return _fit_actor
    return fit_controller


def _fit_actor(
    ctx: StageContext,
    generations: int | None = None,
    rollouts: int | None = None,
    fresh_from: int | None = None,
) -> dict[str, Any]:
    """``fit_actor`` in ``fit_controller``'s shape: an actor plays every imagined step, so
    a search's ``rollouts`` per candidate and ``fresh_from`` have no meaning for it."""
    return fit_actor(ctx, generations)


class HaPipelineOptions(PipelineOptions):
    """The paper's pipeline has no options of its own: its blocks (``collect``, ``dream``,
    ``iterate``...) are the recipe's core blocks."""


class HaPipeline(BasePipeline):
    """The paper's line: collect -> fit V -> encode -> fit M -> fit C by an ask/tell search
    (in the real environment or M's dream) -> evaluate, with the further rounds of
    ``iterate`` before evaluate and the temperature sweep after it."""

    name = "ha"
    Options = HaPipelineOptions
    roles = {
        "vision": "conv_vae",
        "memory": "mdn_rnn",
        "controller": "linear",
        "optimizer": "cmaes",
        "executor": "local",
    }

    zoo_weights = ("vision", "memory", "controller")

    def stages(self, recipe: Recipe) -> list[tuple[str, Callable[[StageContext], dict[str, Any]]]]:
        train_c = controller_trainer(recipe)
        stages = [(name, train_c if name == "fit_controller" else s) for name, s in STAGES]
        cut = [name for name, _ in stages].index("fit_controller") + 1
        return stages[:cut] + round_stages(recipe, train_c) + stages[cut:]

    def preflight(self, ctx: StageContext) -> None:
        ha_preflight(ctx)

    @classmethod
    def stage_order(cls, layout: Any) -> list[str]:
        """The stages' names from the recipe's ``iterate`` block alone: the rounds sit
        between ``fit_controller`` and ``evaluate``."""
        names = [name for name, _ in STAGES]
        cut = names.index("fit_controller") + 1
        return names[:cut] + [name for name, _ in round_stages(layout)] + names[cut:]

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
        """M dreams from V's latent of the first real frame, at ``temperature`` (the
        recipe's ``dream.temperature`` when None), and V decodes every latent."""
        recipe, device = ctx.recipe, str(ctx.device)
        tau = recipe.dream.temperature if temperature is None else temperature
        vision, memory, c = build_trained(
            recipe,
            ctx.registry,
            ctx.spec,
            ctx.run.checkpoints,
            device=device,
            controller=controller,
        )
        if controller and isinstance(c, torch.nn.Module):
            c.to(device)
        return imagine(
            env,
            vision,
            memory,
            c,
            steps,
            tau,
            seed,
            side_by_side,
            random,
            recipe.dream.done_threshold,
            device,
        )

    def measure_gap(
        self,
        ctx: StageContext,
        policies: list[str],
        episodes: int,
        temperature: float | None,
        controller: bool,
    ) -> tuple[list[GapRow], float]:
        """M's dream at ``temperature`` (default ``dream.temperature``) against reality."""
        recipe = ctx.recipe
        tau = recipe.dream.temperature if temperature is None else temperature
        _, memory, c = build_trained(
            recipe,
            ctx.registry,
            ctx.spec,
            ctx.run.checkpoints,
            device=str(ctx.device),
            controller=controller,
        )
        if hasattr(c, "to"):
            c.to(ctx.device)
        with ctx.progress:
            return measure_gap(ctx, memory, c, policies, episodes, tau), tau


@hookimpl
def wmkit_register(registry: Registry) -> None:
    registry.add_pipeline(HaPipeline)


def ha_preflight(ctx: StageContext) -> None:
    """Build every component once, untrained, before any long work: a recipe whose parts do
    not fit together (frame size, action dimensions...) or in memory fails now, not after V
    has trained, and so does a metric sink the recipe names that no plugin provides.
    ``wmkit validate`` runs it too. A constructor's exception is one line naming
    the role, the component and its plugin (``components.construct``)."""
    from wmkit.core.resources import building, check_trainable
    from wmkit.rollouts.components import (
        build_controller,
        build_memory,
        build_optimizer,
        build_vision,
    )

    if ctx.recipe.dream.ends == "sample":
        raise WmkitError(
            "dream.ends: 'sample' is for a world model's dream (pipeline online); the paper's "
            "pipeline ends a dream when M's done probability passes dream.done_threshold"
        )
    with building("vision"):
        vision = build_vision(ctx.recipe, ctx.registry, ctx.spec)
    check_trainable("vision", vision)
    with building("memory"):
        memory = build_memory(ctx.recipe, ctx.registry, vision.latent_dim, ctx.spec)
    check_trainable("memory", memory)
    with building("controller"):
        controller = build_controller(
            ctx.recipe, ctx.registry, vision.latent_dim + memory.feature_dim, ctx.spec
        )
    options = ctx.recipe.optimizer.options
    if isinstance(options, GradientOptions):
        _gradient_preflight(ctx, controller, vision.latent_dim + memory.feature_dim)
    elif not isinstance(options, OptimizerOptions):
        raise WmkitError(
            f"optimizer: {ctx.recipe.optimizer.name!r} is neither an ask/tell search nor a "
            "gradient optimizer, the two ways pipeline 'ha' trains C"
        )
    else:
        with building("optimizer"):
            build_optimizer(ctx.recipe, ctx.registry, controller.get_params(), 0)
    sinks.check_sinks(ctx.recipe.sinks, tuple(ctx.recipe.plugins))


def _gradient_preflight(ctx: StageContext, controller: Any, feature_dim: int) -> None:
    """C trained by gradients in M's dream (``stages.fit_actor``): what that needs."""
    from wmkit.core.resources import building
    from wmkit.rollouts.components import construct

    recipe = ctx.recipe
    if not isinstance(controller, GradientController):
        raise WmkitError(
            f"controller: {recipe.controller.name!r} has no action distribution for "
            f"{recipe.optimizer.name!r} to train by gradients; choose one such as actor"
        )
    if recipe.dream.sweep:
        raise WmkitError(
            "dream.sweep: the temperature sweep reruns an ask/tell search; it has no "
            f"meaning with optimizer {recipe.optimizer.name!r}"
        )
    if recipe.dream.guard.every:
        raise WmkitError(
            "dream.guard.every: the exploit guard checks an ask/tell search's candidates; "
            f"set 0 with optimizer {recipe.optimizer.name!r}"
        )
    with building("optimizer"):
        construct(
            ctx.registry,
            "optimizer",
            recipe.optimizer.name,
            recipe.optimizer.options,
            controller,
            feature_dim,
            0,
        )
