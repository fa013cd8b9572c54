"""``wmkit run RECIPE``: every stage of the recipe, resuming whatever is already done."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.fileio import read_json
from wmkit.plugins import get_registry
from wmkit.progress import console
from wmkit.recipe import load_recipe


@handle_errors
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    out: Path | None = typer.Option(None, "--out", help="Run directory [default: runs/NAME]."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field: memory.hidden=128."),
) -> None:
    """Run a recipe end to end; rerunning the same command resumes it."""
    from wmkit.pipeline import run_pipeline

    if device is not None:
        overrides = [*overrides, f"device={device}"]
    resolved = load_recipe(recipe, overrides)
    out = out or Path("runs") / resolved.name
    run_pipeline(resolved, get_registry(tuple(resolved.plugins)), out)
    result = read_json(out / "eval.json")
    console.print(
        f"[bold green]done[/] {out}: eval over {result['episodes']} episodes "
        f"mean {result['mean']:.1f} ± {result['std']:.1f} "
        f"(min {result['min']:.1f}, max {result['max']:.1f})"
    )
    typer.echo(
        f"eval mean {result['mean']:.2f} std {result['std']:.2f} episodes {result['episodes']}"
    )
