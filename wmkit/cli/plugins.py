"""``wmkit plugins``: what is installed, where it came from, and every option it takes."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wmkit.cli.errors import handle_errors
from wmkit.core.plugins import get_plugins
from wmkit.core.protocols import ROLES


def options_table(cls: type) -> list[dict]:
    rows = []
    for field_name, field in cls.Options.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(
            {
                "option": field_name,
                "type": getattr(field.annotation, "__name__", str(field.annotation)),
                "default": default,
                "description": field.description or "",
            }
        )
    return rows


@handle_errors
def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead.")) -> None:
    """List installed plugins, their components and each component's options."""
    loaded = get_plugins()
    registry = loaded.registry
    data = {
        "plugins": [vars(info) for info in loaded.infos],
        "components": {
            role: {
                name: {
                    "plugin": registry.origins[(role, name)],
                    "options": options_table(registry.get(role, name)),
                }
                for name in registry.names(role)
            }
            for role in ROLES
        },
        "envs": {
            k: {"entry_point": v.entry_point, "plugin": v.plugin} for k, v in registry.envs.items()
        },
    }
    if as_json:
        typer.echo(json.dumps(data, default=str, indent=2))
        return
    console = Console()
    table = Table(title="wmkit plugins")
    for col in ("plugin", "module", "distribution", "version"):
        table.add_column(col, overflow="fold")  # a narrow terminal folds names, never cuts
    table.add_column("status", no_wrap=True)
    for info in loaded.infos:
        table.add_row(
            info.name,
            info.module,
            info.distribution,
            info.version,
            "[red]error (below)[/]" if info.error else "ok",
        )
    console.print(table)
    failed = [info for info in loaded.infos if info.error]
    if failed:
        # Plain lines, never cut or wrapped to the table's width.
        typer.echo(f"{len(failed)} plugin{'s' if len(failed) > 1 else ''} with errors:")
        for info in failed:
            typer.echo(f"  {info.error}")
    for role, comps in data["components"].items():
        for name, comp in comps.items():
            t = Table(title=f"{role}: {name}  (plugin {comp['plugin']})", title_justify="left")
            for col in ("option", "type", "default", "description"):
                t.add_column(col)
            for row in comp["options"]:
                t.add_row(
                    row["option"],
                    escape(row["type"]),
                    escape(repr(row["default"])),
                    escape(row["description"]),
                )
            console.print(t)
