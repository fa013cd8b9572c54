"""``wmkit verify``: check a run's shards and checkpoints; ``--repair`` fixes what it can."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors
from wmkit.cli.runs import open_run
from wmkit.core.errors import WmkitError

# A lost manifest of a 10,000-episode run damages as many latents: list the first few.
SHOWN = 50


@handle_errors
def verify(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory (default: the most recent under runs/)."
    ),
    repair: bool = typer.Option(
        False, "--repair", help="Delete damaged files so that 'wmkit run' redoes only them."
    ),
) -> None:
    """Verify that a run holds every file its completed stages made, each matching its
    recorded checksum. Imports nothing from the run: its recipe's plugins are not needed."""
    from wmkit.pipelines.verify import find_damage, finish_repair
    from wmkit.pipelines.verify import repair as do_repair

    run = open_run(checkpoint, pending_repair=True)
    root = run.root
    if not repair:
        if run.repair_path.exists():
            raise WmkitError(
                f"{run.repair_path}: a repair was cut short; run 'wmkit verify --checkpoint "
                f"{root} --repair' to finish it"
            )
        _report(root, find_damage(run), repair=False)
        return
    with run.lock():
        if finish_repair(run):
            typer.echo(f"finished the repair of {root} that was cut short", err=True)
        damage = find_damage(run)
        if _report(root, damage, repair=True):
            do_repair(run, damage)
            typer.echo(
                f"repaired: {len(damage)} file(s) removed or marked to redo; rerun the same "
                "'wmkit run' command"
            )


def _report(root: Path, damage: list, repair: bool) -> bool:
    """Print what is damaged; True when there is something to repair."""
    if not damage:
        typer.echo(f"ok: {root}: every file its stages made is there and matches its checksum")
        return False
    for item in damage[:SHOWN]:
        typer.echo(f"damaged: {item.path} ({item.reason}; {item.remedy})", err=True)
    if len(damage) > SHOWN:
        typer.echo(f"damaged: {len(damage) - SHOWN} more, not listed", err=True)
    if not repair:
        raise WmkitError(
            f"{root}: {len(damage)} damaged file(s); run 'wmkit verify --checkpoint {root} "
            "--repair', then the same 'wmkit run' to redo only those"
        )
    return True
