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

from wmkit.core.errors import WmkitError
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.pipelines.stages.base import StageContext
from wmkit.record import sinks
from wmkit.record.progress import console, make_progress
from wmkit.rollouts.components import resolve_device
from wmkit.rollouts.envs import env_spec, make_env
from wmkit.storage.fileio import check_regular
from wmkit.storage.rundir import RunDir

log = logging.getLogger("wmkit")


def stages_for(recipe: Recipe) -> list[tuple[str, Callable[[StageContext], dict[str, Any]]]]:
    """The stages a recipe runs, in order: those of its pipeline."""
    return pipeline_of(recipe).stages(recipe)


def pipeline_of(recipe: Recipe, registry: Registry | None = None) -> Any:
    """The recipe's pipeline, built from its block."""
    from wmkit.core.plugins import get_registry

    registry = registry or get_registry(tuple(recipe.plugins))
    block = recipe.pipeline
    return registry.get("pipeline", block.name)(block.options)


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
    from wmkit.pipelines.verify import find_damage, finish_repair

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


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly part of a stage summary: numbers, strings and lists of them."""

    def plain(v: Any) -> bool:
        if isinstance(v, list):
            return all(isinstance(x, (int, float, str)) for x in v)
        return isinstance(v, (int, float, str))

    return {k: v for k, v in summary.items() if plain(v)}
