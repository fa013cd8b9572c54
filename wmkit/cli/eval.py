"""``wmkit eval``: score a trained run (or the random policy) over real episodes."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from wmkit import scores
from wmkit.cli.errors import handle_errors
from wmkit.cli.runs import open_run
from wmkit.errors import WmkitError
from wmkit.fileio import atomic_write_json
from wmkit.plugins import get_registry
from wmkit.progress import console
from wmkit.recipe import load_recipe


class PolicyChoice(str, Enum):
    controller = "controller"
    random = "random"


@handle_errors
def eval_(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory [default: the most recent under runs/]."
    ),
    episodes: int | None = typer.Option(None, "--episodes", min=1, help="[default: recipe's]"),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Worker processes."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed of the first episode."),
    policy: PolicyChoice = typer.Option(
        PolicyChoice.controller,
        "--policy",
        help="The trained controller, or the recipe's random collection policy on the same seeds.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    video: bool = typer.Option(
        False, "--video", help="Save videos of the best and worst episodes."
    ),
) -> None:
    """Evaluate a run in the real environment: mean, std, min, max and every return."""
    from wmkit.checkpoint import exists as checkpoint_exists
    from wmkit.pipeline import make_context
    from wmkit.stages.evaluate import evaluate

    run = open_run(checkpoint)
    root = run.root
    overrides = [] if workers is None else [f"workers={workers}"]
    recipe = load_recipe(run.recipe_path, overrides)
    if policy is PolicyChoice.controller and not checkpoint_exists(run.checkpoints / "controller"):
        raise WmkitError(f"{root}: no trained controller yet; finish 'wmkit run' first")
    ctx = make_context(recipe, get_registry(tuple(recipe.plugins)), run)
    with ctx.progress:
        result = evaluate(
            ctx, policy.value, episodes, seed, video_dir=run.videos if video else None
        )
    out = run.root / "evals" / f"{policy.value}_seed{result.seeds[0]}_n{result.episodes}.json"
    atomic_write_json(out, result.to_dict())
    scores.record_evaluation(
        run,
        out.stem,
        scores.real_evaluation(
            result, str(ctx.device), generation=len(scores.generation_rows(run))
        ),
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    console.print(
        f"[bold]{policy.value}[/] over {result.episodes} episodes: mean {result.mean:.1f} ± "
        f"{result.std:.1f} (min {result.min:.1f}, max {result.max:.1f}); saved {out}"
    )
    typer.echo(f"eval mean {result.mean:.2f} std {result.std:.2f} episodes {result.episodes}")
