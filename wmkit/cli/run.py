"""``wmkit run RECIPE``: every stage of the recipe, resuming whatever is already done.
With ``--seeds``, one independent run per pipeline seed into ``OUT/seed_S/``."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import Recipe, load_recipe
from wmkit.record.progress import console
from wmkit.storage.fileio import read_json


@handle_errors
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    out: Path | None = typer.Option(None, "--out", help="Run directory [default: runs/NAME]."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field: memory.hidden=128."),
    seeds: str | None = typer.Option(
        None,
        "--seeds",
        help="Pipeline seeds, e.g. 0,1,2 or 0-4: one run per seed into OUT/seed_S/, "
        "identical but for 'seed'.",
    ),
) -> None:
    """Run a recipe end to end; rerunning the same command resumes it."""
    if device is not None:
        overrides = [*overrides, f"device={device}"]
    if seeds is None:
        resolved = load_recipe(recipe, overrides)
        out = out or Path("runs") / resolved.name
        _run_one(resolved, out)
        result = _result(out)
        console.print(
            f"[bold green]done[/] {out}: eval over {result['episodes']} episodes "
            f"mean {result['mean']:.1f} ± {result['std']:.1f} "
            f"(min {result['min']:.1f}, max {result['max']:.1f})"
        )
        typer.echo(_eval_line(result))
        return
    from wmkit.results.groups import parse_seeds, record_group, seed_dir

    wanted = parse_seeds(seeds)
    # Every seed's recipe is validated before the first one starts.
    recipes = {s: load_recipe(recipe, [*overrides, f"seed={s}"]) for s in wanted}
    first = recipes[wanted[0]]
    out = out or Path("runs") / first.name
    _preflight(first, seed_dir(out, wanted[0]))  # before group.json is written
    record_group(out, first.to_dict(), str(recipe), wanted)
    for i, s in enumerate(wanted):
        console.print(f"[bold]seed {s}[/] ({i + 1} of {len(wanted)})")
        _run_one(recipes[s], seed_dir(out, s))
        typer.echo(f"seed {s} {_eval_line(_result(seed_dir(out, s)))}")
    console.print(
        f"[bold green]done[/] {out}: {len(wanted)} seeds; compare with 'wmkit compare {out}'"
    )


def _preflight(resolved: Recipe, out: Path) -> None:
    """The checks ``wmkit run`` makes before it touches a run directory (the runner);
    the seeds of a group differ only in ``seed``, so one seed's answer is every seed's."""
    from wmkit.pipelines.runner import make_context, preflight
    from wmkit.storage.rundir import RunDir

    preflight(make_context(resolved, get_registry(tuple(resolved.plugins)), RunDir(out)))


def _run_one(resolved: Recipe, out: Path) -> None:
    from wmkit.pipelines.runner import run_pipeline

    run_pipeline(resolved, get_registry(tuple(resolved.plugins)), out)


def _result(out: Path) -> dict:
    return read_json(out / "eval.json")


def _eval_line(result: dict) -> str:
    return f"eval mean {result['mean']:.2f} std {result['std']:.2f} episodes {result['episodes']}"
