"""``wmkit new-plugin NAME --kind KIND``: write a working plugin package to start from."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.devkit.scaffold import KINDS

# The kinds are the scaffold's templates, so a new template is a new --kind.
Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)


@handle_errors
def new_plugin(
    name: str = typer.Argument(
        ...,
        help="Plugin name: lowercase letters, digits, - and _, starting with a letter. "
        "'cat-mem' (or 'wmkit-cat-mem') gives the distribution wmkit-cat-mem, the module "
        "wmkit_cat_mem and the component cat_mem.",
    ),
    kind: Kind = typer.Option(..., "--kind", help="What the plugin adds."),
    out: Path = typer.Option(Path("."), "--out", help="Folder to write the folder NAME into."),
) -> None:
    """Write an installable plugin package: a working component, its tests and a README."""
    from wmkit.devkit.scaffold import write_plugin

    plugin = write_plugin(name, kind.value, out)
    typer.echo(f"wrote {plugin.folder}:")
    for path in plugin.files:
        typer.echo(f"  {path.as_posix()}")
    typer.echo("next steps:")
    typer.echo(f"  cd {plugin.folder}")
    entry_point = plugin.names.component
    typer.echo(
        f"  pip install -e .   # installs {plugin.names.distribution!r}, whose entry point "
        f"{entry_point!r} is in the 'wmkit' group"
    )
    typer.echo("  pytest tests       # wmkit's contract check for its role")
    typer.echo(f"  wmkit plugins      # {entry_point!r} should be listed with status ok")
    typer.echo(f"  then select it in a recipe: {plugin.selection}")
