"""``wmkit compare RUN_OR_GROUP...``: aggregate scores with confidence intervals (rliable)."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import at_least, handle_errors
from wmkit.core.errors import WmkitError
from wmkit.storage.scores import PIPELINE_EVALUATION


@handle_errors
def compare(
    groups: list[str] = typer.Argument(
        ...,
        help="Runs, zoo entries or group directories (wmkit run --seeds); LABEL=PATH[,PATH...] "
        "names a group or pools several paths into one.",
    ),
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder for the table and PNGs."),
    evaluation: str = typer.Option(
        PIPELINE_EVALUATION,
        "--evaluation",
        help="Which evaluation of each run: 'evaluate' (the pipeline's own) or a wmkit eval's "
        "key, e.g. controller_seed1000000_n100.",
    ),
    reps: int = typer.Option(
        2000, "--reps", help="Bootstrap replications (>= 10) for every confidence interval."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (>= 0)."),
) -> None:
    """Mean, median and IQM with 95% stratified-bootstrap CIs per group, the probability of
    improvement between groups, and PNGs of score distributions and training curves."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from wmkit.results import compare as cmp
    from wmkit.storage.fileio import atomic_write_text

    at_least("--reps", reps, 10)
    at_least("--seed", seed, 0)
    try:
        import rliable  # noqa: F401
    except ImportError:
        raise WmkitError("wmkit compare needs rliable: pip install rliable") from None
    loaded = cmp.load_groups(groups, evaluation)
    aggs = cmp.aggregates(loaded, reps, seed)
    pois = cmp.improvements(loaded, reps, seed)
    curves = cmp.curves(loaded, reps, seed)
    info = cmp.describe(loaded)
    out.mkdir(parents=True, exist_ok=True)
    figures = ["aggregates.png", "distributions.png", "curves.png"]
    cmp.plot_aggregates(aggs, out / figures[0])
    cmp.plot_distributions(loaded, out / figures[1], reps, seed)
    cmp.plot_curves(loaded, curves, aggs, out / figures[2])
    atomic_write_text(out / "compare.md", cmp.markdown(info, aggs, pois, evaluation, reps, figures))
    cmp.write_json(
        out / "compare.json",
        {
            "evaluation": evaluation,
            "reps": reps,
            "seed": seed,
            "groups": info,
            "aggregates": aggs,
            "probability_of_improvement": pois,
            "curves": curves,
        },
    )

    console = Console()
    table = Table(title=f"evaluation {evaluation!r}: estimates [95% CI]")
    for col in ("group", "runs", "episodes", "mean", "median", "IQM"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for label, a in aggs.items():
        table.add_row(
            escape(label),
            str(len(info[label]["runs"])),
            str(info[label]["episodes_per_run"]),
            *(f"{a[m][0]:.1f} [{a[m][1]:.1f}, {a[m][2]:.1f}]" for m in cmp.METRICS),
        )
    console.print(table)
    for p in pois:
        console.print(
            f"P({escape(p['x'])} > {escape(p['y'])}) = {p['probability']:.2f} "
            f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]",
            highlight=False,
        )
    typer.echo(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {', '.join(figures)}")
