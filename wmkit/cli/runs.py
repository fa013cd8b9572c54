"""The run a command works on: ``--checkpoint`` (a run directory or a zoo entry) or the
latest, checked before any work."""

from __future__ import annotations

from pathlib import Path

from wmkit.core.errors import WmkitError
from wmkit.storage.rundir import RunDir, latest_run


def _checkpoint_exists(stem: Path) -> bool:
    from wmkit.storage.checkpoint import (
        exists,
    )  # imports torch: only for commands that need V and M

    return exists(stem)


def open_run(
    checkpoint: Path | None, trained: bool = False, pending_repair: bool = False
) -> RunDir:
    """The run directory, which must hold a recipe, and trained V and M when ``trained``.
    A repair cut short must be finished first, unless ``pending_repair`` (verify does it)."""
    root = checkpoint or latest_run()
    from wmkit.storage.zoo import is_entry, open_entry

    # A zoo entry is verified and copied to runs/zoo/, where the command may write.
    run = open_entry(root) if is_entry(root) else RunDir(root)
    if not run.recipe_path.exists():
        raise WmkitError(f"{root}: not a wmkit run directory (no recipe.yaml)")
    if not pending_repair and run.repair_path.exists():
        raise WmkitError(
            f"{run.repair_path}: a repair was cut short; run 'wmkit verify --checkpoint {root} "
            "--repair' to finish it first"
        )
    models = ("memory", "world_model")  # V and M, or a world model trained as one piece
    if trained and not any(_checkpoint_exists(run.checkpoints / m) for m in models):
        raise WmkitError(f"{root}: the world model is not trained yet; run 'wmkit run' first")
    return run
