"""``wmkit export RUN zoo/NAME``: a run's trained agent as a folder small enough to commit."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from wmkit.cli.errors import handle_errors


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"


@handle_errors
def export(
    run: Path = typer.Argument(
        ..., help="Run directory with trained V, M and C, or a zoo entry to re-export."
    ),
    dest: Path = typer.Argument(..., help="Entry folder to write, e.g. zoo/carracing_quick."),
    dtype: Dtype = typer.Option(
        Dtype.float32,
        "--dtype",
        help="V's and M's weights as float32 (exact) or float16 (half the size); C stays exact.",
    ),
) -> None:
    """Export V, M and C (no data, no optimizer state), the recipe, start latents, scores and
    checksums; 'wmkit eval/dream/gap --checkpoint DEST' then need nothing else."""
    from wmkit.core.plugins import get_registry
    from wmkit.storage.zoo import LIMIT_BYTES
    from wmkit.storage.zoo import export as do_export

    def exportable(pipeline: str) -> bool:
        """Whether the pipeline's agent is what an entry holds (unknown pipelines: no)."""
        registry = get_registry(())
        known = pipeline in registry.components["pipeline"]
        return known and registry.get("pipeline", pipeline).exportable

    entry = do_export(run, dest, dtype.value, exportable)
    size = entry["total_bytes"]
    typer.echo(f"exported {run} -> {dest}: {len(entry['files'])} files, {size / 2**20:.1f} MiB")
    if size > LIMIT_BYTES:
        typer.echo(
            f"warning: {dest} is over {LIMIT_BYTES // 2**20} MiB; --dtype float16 halves V and M",
            err=True,
        )
