"""``wmkit gap``: the same policies in M's dream and in the real environment, side by side."""

from __future__ import annotations

from pathlib import Path

import typer

from wmkit.cli.errors import TRUST_PLUGINS_HELP, at_least, handle_errors
from wmkit.cli.runs import open_run
from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.record.progress import console
from wmkit.storage.fileio import atomic_write_json


@handle_errors
def gap(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory [default: the most recent under runs/]."
    ),
    policies: list[str] | None = typer.Option(
        None,
        "--policy",
        help="uniform, brownian, held, constant:a,b,... or controller; repeat for several "
        "[default: the three random policies, a 1-D action space's ends and middle, and the "
        "controller once trained].",
    ),
    episodes: int = typer.Option(16, "--episodes", help="Episodes per policy and place (>= 2)."),
    temperature: float | None = typer.Option(
        None, "--temperature", help="tau > 0 [default: the recipe's dream.temperature]."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
    trust_plugins: bool = typer.Option(False, "--trust-plugins", help=TRUST_PLUGINS_HELP),
) -> None:
    """Does the dream rank behaviours as reality does? Run this before training C in a dream."""
    from wmkit.pipelines.gap import default_policies, to_dict
    from wmkit.pipelines.runner import make_context, pipeline_of
    from wmkit.rollouts.policies import fixed_policy
    from wmkit.storage.checkpoint import exists as checkpoint_exists

    at_least("--episodes", episodes, 2)
    at_least("--temperature", temperature, 0, strict=True)
    at_least("--workers", workers, 0)
    run = open_run(checkpoint, trained=True)
    root = run.root
    overrides = [] if workers is None else [f"workers={workers}"]
    recipe = load_recipe(run.recipe_path, overrides, trust_plugins=trust_plugins)
    registry = get_registry(tuple(recipe.plugins))
    ctx = make_context(recipe, registry, run)
    spec = ctx.spec
    trained = checkpoint_exists(run.checkpoints / "controller")
    names = list(policies or default_policies(spec.action_low, spec.action_high))
    if not policies and trained:
        names.append("controller")
    for name in names:
        if name == "controller":
            if not trained:
                raise WmkitError(f"--policy controller: {root} has no trained controller yet")
        else:
            try:
                fixed_policy(name, spec.action_low, spec.action_high, 0)
            except WmkitError as exc:
                raise WmkitError(f"--policy {exc}") from None
    rows, tau = pipeline_of(recipe, registry).measure_gap(
        ctx, names, episodes, temperature, trained
    )
    dream = f"tau{tau:g}_" if tau is not None else ""
    out = run.root / "evals" / f"gap_{dream}n{episodes}.json"
    atomic_write_json(out, to_dict(rows, tau, episodes))
    at = f" at tau {tau:g}" if tau is not None else ""
    _report(rows, out, f"dream{at} vs real, {episodes} episodes each:")


def _report(rows, out: Path, title: str) -> None:
    from wmkit.pipelines.gap import pairs_in_order

    console.print(title)
    width = max(len(r.policy) for r in rows)
    for r in rows:
        typer.echo(
            f"{r.policy:<{width}}  dream {r.dream_mean:8.1f} ± {r.dream_std:6.1f}"
            f" ({r.dream_steps:6.0f} steps)   real {r.real_mean:8.1f} ± {r.real_std:6.1f}"
            f" ({r.real_steps:6.0f} steps)"
        )
    agree, total = pairs_in_order(rows)
    typer.echo(f"pairs the dream orders as reality does: {agree} of {total}; saved {out}")
