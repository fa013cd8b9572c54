"""The reference pipeline: collect -> fit V -> encode -> fit M -> fit C -> evaluate.

Each stage reads and writes only the run directory; a stage recorded in ``stages.json`` is
skipped on the next ``wmkit run``, and a stage cut short resumes from its last unit of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wmkit.components import resolve_device
from wmkit.envs import env_spec, make_env
from wmkit.fileio import atomic_write_json
from wmkit.progress import console, make_progress
from wmkit.recipe import Recipe
from wmkit.registry import Registry
from wmkit.rundir import RunDir
from wmkit.stages.base import StageContext
from wmkit.stages.collect import collect
from wmkit.stages.encode import encode_dataset
from wmkit.stages.evaluate import evaluate
from wmkit.stages.fit_controller import fit_controller
from wmkit.stages.fit_memory import fit_memory
from wmkit.stages.fit_vision import fit_vision


def _evaluate_stage(ctx: StageContext) -> dict[str, Any]:
    result = evaluate(ctx)
    atomic_write_json(ctx.run.eval_path, result.to_dict())
    return {"mean": result.mean, "std": result.std, "episodes": result.episodes}


STAGES: list[tuple[str, Callable[[StageContext], dict[str, Any]]]] = [
    ("collect", collect),
    ("fit_vision", fit_vision),
    ("encode", encode_dataset),
    ("fit_memory", fit_memory),
    ("fit_controller", fit_controller),
    ("evaluate", _evaluate_stage),
]


def make_context(
    recipe: Recipe, registry: Registry, run: RunDir, device: str | None = None, progress: Any = None
) -> StageContext:
    env = make_env(recipe.env, registry)
    spec = env_spec(env)
    env.close()
    return StageContext(
        recipe,
        registry,
        run,
        resolve_device(device or recipe.device),
        spec,
        progress or make_progress(),
    )


def run_pipeline(
    recipe: Recipe, registry: Registry, out: Path, device: str | None = None
) -> dict[str, Any]:
    """Run every stage not yet complete in ``out``; returns the stages' summaries."""
    run = RunDir(out)
    run.init(recipe)
    ctx = make_context(recipe, registry, run, device)
    console.print(
        f"[bold]wmkit run[/] {recipe.name} -> {run.root} "
        f"(device {ctx.device}, {recipe.num_workers()} workers)"
    )
    summaries: dict[str, Any] = {}
    with ctx.progress:
        for name, stage in STAGES:
            if run.is_done(name):
                console.print(f"  {name}: already complete, skipped")
                continue
            started = time.time()
            summary = stage(ctx)
            run.mark_done(name, time.time() - started, _plain(summary))
            summaries[name] = summary
    return summaries


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}
