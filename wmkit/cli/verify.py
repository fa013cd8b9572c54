"""``wmkit verify``: check a run's shards and checkpoints; ``--repair`` fixes what it can."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.cli.runs import open_run
from wmkit.errors import WmkitError


@handle_errors
def verify(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory (default: the most recent under runs/)."
    ),
    repair: bool = typer.Option(
        False, "--repair", help="Delete damaged files so that 'wmkit run' redoes only them."
    ),
) -> None:
    """Verify every data shard and checkpoint of a run against its recorded checksum."""
    from wmkit.verify import find_damage
    from wmkit.verify import repair as do_repair

    run = open_run(checkpoint)
    root = run.root
    damage = find_damage(run)
    if not damage:
        typer.echo(f"ok: {root}: every shard and checkpoint matches its checksum")
        return
    for item in damage:
        typer.echo(f"damaged: {item.path} ({item.reason}; made by stage {item.stage})", err=True)
    if not repair:
        raise WmkitError(
            f"{root}: {len(damage)} damaged file(s); run 'wmkit verify --checkpoint {root} "
            "--repair', then the same 'wmkit run' to redo only those"
        )
    do_repair(run, damage)
    typer.echo(f"repaired: {len(damage)} file(s) removed; rerun the same 'wmkit run' command")
