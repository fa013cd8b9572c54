"""``wmkit report RUN``: one self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import at_least, handle_errors


@handle_errors
def report(
    run: Path = typer.Argument(..., help="Run directory."),
    out: Path | None = typer.Option(None, "--out", help="HTML file [default: RUN/report.html]."),
    reps: int = typer.Option(
        2000, "--reps", help="Bootstrap replications (>= 10) for the IQM's confidence interval."
    ),
) -> None:
    """Write the run's recipe, stage times, curves, reconstructions, dream strip, evaluation
    histogram and dream-vs-real tables into one HTML file that opens without a server."""
    from wmkit.results.report import build_report
    from wmkit.storage.fileio import atomic_write_text

    at_least("--reps", reps, 10)
    page = build_report(run, reps)
    out = out or run / "report.html"
    atomic_write_text(out, page)
    typer.echo(f"report {out} ({len(page.encode()) // 1024} KiB)")
