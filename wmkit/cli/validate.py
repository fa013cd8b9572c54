"""``wmkit validate RECIPE``: check a recipe without running anything."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe


@handle_errors
def validate(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field: memory.hidden=128."),
) -> None:
    """Validate a recipe: every error names the file, the field and the bad value. Then
    build the environment and every component as 'wmkit run' does before any work, so that
    'ok' means the run will start."""
    from wmkit.pipelines.runner import make_context, preflight
    from wmkit.storage.rundir import RunDir

    r = load_recipe(recipe, overrides)
    # Nothing is written: the run directory only gives the context its paths.
    preflight(make_context(r, get_registry(tuple(r.plugins)), RunDir(Path("runs") / r.name)))
    parts = ", ".join(
        f"{role} {block.name}"
        for role, block in r.blocks().items()
        if role not in ("pipeline", "executor")
    )
    typer.echo(f"ok: {recipe} ({r.env.id}; {parts})")
