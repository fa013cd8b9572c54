"""The reference pipeline: collect -> fit V -> encode -> fit M -> fit C -> evaluate (with
further rounds of collect -> encode -> fit M -> fit C before evaluate, see ``iterate``).

Each stage reads and writes only the run directory; a stage recorded in ``stages.json`` is
skipped on the next ``wmkit run``, and a stage cut short resumes from its last unit of work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wmkit import scores, sinks
from wmkit.components import load_component, resolve_device
from wmkit.envs import env_spec, make_env
from wmkit.errors import WmkitError
from wmkit.fileio import atomic_write_text, check_regular, json_text, sha256_bytes
from wmkit.hookspecs import hookimpl
from wmkit.progress import console, make_progress
from wmkit.protocols import (
    GradientController,
    GradientOptions,
    OptimizerOptions,
    PipelineOptions,
)
from wmkit.recipe import Recipe
from wmkit.registry import Registry
from wmkit.rundir import RunDir
from wmkit.stages.base import StageContext
from wmkit.stages.collect import collect
from wmkit.stages.encode import encode_dataset
from wmkit.stages.evaluate import dream_episodes, dream_summary, evaluate
from wmkit.stages.fit_controller import fit_controller, trained_memory_and_fresh_controller
from wmkit.stages.fit_memory import fit_memory
from wmkit.stages.fit_vision import fit_vision
from wmkit.stages.iterate import round_stages
from wmkit.stages.sweep import temperature_sweep

log = logging.getLogger("wmkit")


def _evaluate_stage(ctx: StageContext) -> dict[str, Any]:
    """The real score over eval.episodes, and the same controller's score in the dream."""
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


STAGES: list[tuple[str, Callable[[StageContext], dict[str, Any]]]] = [
    ("collect", collect),
    ("fit_vision", fit_vision),
    ("encode", encode_dataset),
    ("fit_memory", fit_memory),
    ("fit_controller", fit_controller),
    ("evaluate", _evaluate_stage),
    ("temperature_sweep", temperature_sweep),
]


def stages_for(recipe: Recipe) -> list[tuple[str, Callable[[StageContext], dict[str, Any]]]]:
    """The stages a recipe runs, in order: those of its pipeline."""
    return pipeline_of(recipe).stages(recipe)


def pipeline_of(recipe: Recipe, registry: Registry | None = None) -> Any:
    """The recipe's pipeline, built from its block."""
    from wmkit.plugins import get_registry

    registry = registry or get_registry(tuple(recipe.plugins))
    block = recipe.pipeline
    return registry.get("pipeline", block.name)(block.options)


class HaPipelineOptions(PipelineOptions):
    """The paper's pipeline has no options of its own: its blocks (``collect``, ``dream``,
    ``iterate``...) are the recipe's core blocks."""


class HaPipeline:
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

    def __init__(self, options: HaPipelineOptions):
        self.options = options

    def stages(self, recipe: Recipe) -> list[tuple[str, Callable[[StageContext], dict[str, Any]]]]:
        cut = [name for name, _ in STAGES].index("fit_controller") + 1
        return STAGES[:cut] + round_stages(recipe) + STAGES[cut:]

    def preflight(self, ctx: StageContext) -> None:
        ha_preflight(ctx)


@hookimpl
def wmkit_register(registry: Registry) -> None:
    registry.add_pipeline(HaPipeline)


def make_context(recipe: Recipe, registry: Registry, run: RunDir) -> StageContext:
    env = make_env(recipe.env, registry)
    spec = env_spec(env)
    env.close()
    return StageContext(recipe, registry, run, resolve_device(recipe.device), spec, make_progress())


def run_pipeline(recipe: Recipe, registry: Registry, out: Path) -> dict[str, Any]:
    """Run every stage not yet complete in ``out``; returns the stages' summaries."""
    run = RunDir(out)
    ctx = make_context(recipe, registry, run)
    preflight(ctx)
    with run.lock():
        return _run_locked(ctx, recipe)


def _run_locked(ctx: StageContext, recipe: Recipe) -> dict[str, Any]:
    """The run, once this process holds its directory: check the recipe, finish a repair
    cut short, clear what killed writes left, check that every completed stage's files are
    there, then run the stages."""
    from wmkit.verify import find_damage, finish_repair

    run = ctx.run
    run.init(recipe)
    if finish_repair(run):
        console.print(f"finished the repair of {run.root} that was cut short")
    run.remove_temporary_files()
    missing = find_damage(run, deep=False)
    if missing:
        raise WmkitError(
            "\n".join(f"{item.path}: {item.reason}" for item in missing)
            + f"\n{run.root}: run 'wmkit verify --checkpoint {run.root} --repair', then this "
            "command again"
        )
    log_path = run.root / "wmkit.log"
    if log_path.exists() or log_path.is_symlink():
        check_regular(log_path)  # appended to in place: never through a link
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Warnings (a worker that crashed or hung) also go to stderr, as with 'wmkit eval'.
    shown = logging.StreamHandler()
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter("warning: %(message)s"))
    log.addHandler(handler)
    log.addHandler(shown)
    log.setLevel(logging.INFO)
    try:
        with sinks.active(sinks.open_sinks(run, recipe)):
            return _run_stages(ctx, recipe)
    finally:
        for h in (handler, shown):
            log.removeHandler(h)
            h.close()


def _run_stages(ctx: StageContext, recipe: Recipe) -> dict[str, Any]:
    run = ctx.run
    console.print(
        f"[bold]wmkit run[/] {recipe.name} -> {run.root} "
        f"(device {ctx.device}, {recipe.num_workers()} workers)"
    )
    summaries: dict[str, Any] = {}
    with ctx.progress:
        for name, stage in stages_for(recipe):
            if _complete(run, name, stage, recipe):
                console.print(f"  {name}: already complete, skipped")
                continue
            started = time.time()
            log.info("stage %s started", name)
            before = run.checkpoint_stamps()
            summary = stage(ctx)
            written = _written_since_last_stage(run, before)
            wrote = run.episodes_written(name)
            record = {**_plain(summary), "checkpoints": written, "wrote": wrote}
            run.mark_done(name, time.time() - started, record)
            log.info("stage %s done in %.1f s: %s", name, time.time() - started, _plain(summary))
            summaries[name] = summary
    return summaries


def _written_since_last_stage(run: RunDir, before: dict[str, tuple[int, int]]) -> list[str]:
    """The checkpoints the stage now ending wrote: changed since ``before`` (its start in
    this process) or since the last stage done finished (in a process killed before it could
    finish). stages.json records them, so that 'wmkit verify' remakes a damaged checkpoint
    by redoing the last stage that wrote it, whatever the pipeline."""
    finished = [r.get("finished", 0) for r in run.stages().values()]
    since = max([f for f in finished if isinstance(f, (int, float))], default=0) * 1e9
    return sorted(
        stem
        for stem, stamp in run.checkpoint_stamps().items()
        if stamp[0] > since or before.get(stem) != stamp
    )


def _complete(run, name: str, stage: Callable[..., Any], recipe: Recipe) -> bool:
    """A stage listed in stages.json is done, unless the stage has an ``is_current(recipe,
    record)`` that says otherwise (a sweep whose temperatures or budget have changed since:
    it runs again and trains only what it has not done)."""
    record = run.stages().get(name)
    if record is None:
        return False
    is_current = getattr(stage, "is_current", None)
    return True if is_current is None else is_current(recipe, record)


def preflight(ctx: StageContext) -> None:
    """Build every component of the recipe's pipeline once, untrained, before any work."""
    pipeline_of(ctx.recipe, ctx.registry).preflight(ctx)


def ha_preflight(ctx: StageContext) -> None:
    """Build every component once, untrained, before any long work: a recipe whose parts do
    not fit together (frame size, action dimensions...) or in memory fails now, not after V
    has trained, and so does a metric sink the recipe names that no plugin provides.
    ``wmkit validate`` runs it too. A constructor's exception is one line naming
    the role, the component and its plugin (``components.construct``)."""
    from wmkit.components import (
        build_controller,
        build_memory,
        build_optimizer,
        build_vision,
    )
    from wmkit.resources import building, check_trainable

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
    from wmkit.components import construct
    from wmkit.resources import building

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


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly part of a stage summary: numbers, strings and lists of them."""

    def plain(v: Any) -> bool:
        if isinstance(v, list):
            return all(isinstance(x, (int, float, str)) for x in v)
        return isinstance(v, (int, float, str))

    return {k: v for k, v in summary.items() if plain(v)}
