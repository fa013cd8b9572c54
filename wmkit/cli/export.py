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
        ...,
        help="Run directory with a trained agent (V, M and C; or a world model and an actor), "
        "or a zoo entry to re-export.",
    ),
    dest: Path = typer.Argument(..., help="Entry folder to write, e.g. zoo/carracing_quick."),
    dtype: Dtype = typer.Option(
        Dtype.float32,
        "--dtype",
        help="Weights as float32 (exact) or float16 (half the size); C or the actor stays exact.",
    ),
) -> None:
    """Export the trained agent (V, M and C; or the world model and the actor), without data or
    optimizer state, with the recipe, dreams' start states, scores and checksums; 'wmkit
    eval/dream/gap --checkpoint DEST' then need nothing else."""
    from wmkit.core.plugins import get_registry
    from wmkit.storage.zoo import LIMIT_BYTES
    from wmkit.storage.zoo import export as do_export

    def weights_of(pipeline: str) -> tuple[str, ...]:
        """The checkpoints the pipeline's agent consists of (unknown pipelines: none)."""
        registry = get_registry(())
        if pipeline not in registry.components["pipeline"]:
            return ()
        cls = registry.get("pipeline", pipeline)
        return tuple(getattr(cls, "zoo_weights", ()) or ())

    entry = do_export(run, dest, dtype.value, weights_of=weights_of)
    size = entry["total_bytes"]
    typer.echo(f"exported {run} -> {dest}: {len(entry['files'])} files, {size / 2**20:.1f} MiB")
    if size > LIMIT_BYTES:
        typer.echo(
            f"warning: {dest} is over {LIMIT_BYTES // 2**20} MiB; --dtype float16 halves "
            "the weights",
            err=True,
        )
