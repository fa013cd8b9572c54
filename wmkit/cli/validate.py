"""``wmkit validate RECIPE``: check a recipe without running anything."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.recipe import load_recipe


@handle_errors
def validate(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: list[str] = typer.Option([], "--set", help="Override a field: memory.hidden=128."),
) -> None:
    """Validate a recipe: every error names the file, the field and the bad value."""
    r = load_recipe(recipe, overrides)
    parts = ", ".join(
        f"{role} {getattr(r, role).name}"
        for role in ("vision", "memory", "controller", "optimizer")
    )
    typer.echo(f"ok: {recipe} ({r.env.id}; {parts})")
