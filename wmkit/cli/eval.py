"""``wmkit eval``: score a trained run (or the random policy) over real episodes."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from wmkit.cli.errors import TRUST_PLUGINS_HELP, at_least, handle_errors
from wmkit.cli.runs import open_run
from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.record.progress import console
from wmkit.storage import scores
from wmkit.storage.fileio import atomic_write_json


class PolicyChoice(str, Enum):
    controller = "controller"
    random = "random"


@handle_errors
def eval_(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory [default: the most recent under runs/]."
    ),
    episodes: int | None = typer.Option(None, "--episodes", help="[default: recipe's]"),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the first episode."),
    policy: PolicyChoice = typer.Option(
        PolicyChoice.controller,
        "--policy",
        help="The trained controller, or the recipe's random collection policy on the same seeds.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    video: bool = typer.Option(
        False, "--video", help="Save videos of the best and worst episodes."
    ),
    in_progress: bool = typer.Option(
        False,
        "--in-progress",
        help=(
            "Score the actor as a run still training last saved it (pipeline online), to "
            "evals/ only: scores.json is left to the run."
        ),
    ),
    trust_plugins: bool = typer.Option(False, "--trust-plugins", help=TRUST_PLUGINS_HELP),
) -> None:
    """Evaluate a run in the real environment: mean, std, min, max and every return."""
    from wmkit.pipelines.runner import make_context, pipeline_of
    from wmkit.pipelines.stages.evaluate import evaluate
    from wmkit.storage.checkpoint import exists as checkpoint_exists

    at_least("--episodes", episodes, 1)
    at_least("--workers", workers, 0)
    at_least("--seed", seed, 0)
    run = open_run(checkpoint)
    root = run.root
    overrides = [] if workers is None else [f"workers={workers}"]
    recipe = load_recipe(run.recipe_path, overrides, trust_plugins=trust_plugins)
    if in_progress and policy is not PolicyChoice.controller:
        raise WmkitError("--in-progress: scores the controller; leave out --policy")
    if (
        policy is PolicyChoice.controller
        and not in_progress
        and not checkpoint_exists(run.checkpoints / "controller")
    ):
        raise WmkitError(
            f"{root}: no trained controller yet; finish 'wmkit run' first, or score the "
            "run so far with --in-progress (pipeline online)"
        )
    ctx = make_context(recipe, get_registry(tuple(recipe.plugins)), run)
    pipeline = pipeline_of(recipe, ctx.registry)
    progress: dict[str, int] | None = None
    with ctx.progress:
        if in_progress:
            result, progress = pipeline.evaluate_in_progress(ctx, episodes, seed)
        elif policy is PolicyChoice.controller:
            # The pipeline plays its own trained agent (the online one's: a world model and
            # an actor; the paper's: V, M and C in the workers).
            result = pipeline.evaluate(ctx, episodes, seed, run.videos if video else None)
        else:
            result = evaluate(
                ctx, policy.value, episodes, seed, video_dir=run.videos if video else None
            )
    stem = f"{policy.value}_seed{result.seeds[0]}_n{result.episodes}"
    record = result.to_dict()
    if progress is not None:
        stem += f"_update{progress['updates']}"
        record["in_progress"] = progress
    out = run.root / "evals" / f"{stem}.json"
    # The result first: a full disk or a read-only run must not lose what took minutes.
    if as_json:
        typer.echo(json.dumps(record))
    else:
        after = (
            ""
            if progress is None
            else (
                f" after {progress['episodes']} episodes of its own, {progress['updates']} updates"
            )
        )
        console.print(
            f"[bold]{policy.value}[/]{after} over {result.episodes} episodes: mean "
            f"{result.mean:.1f} ± {result.std:.1f} (min {result.min:.1f}, max {result.max:.1f})"
        )
        typer.echo(f"eval mean {result.mean:.2f} std {result.std:.2f} episodes {result.episodes}")
    atomic_write_json(out, record)
    if progress is not None:  # the run may be writing scores.json itself: leave it alone
        if not as_json:
            console.print(f"saved {out}")
        return
    scores.record_evaluation(
        run,
        out.stem,
        scores.real_evaluation(
            result, str(ctx.device), generation=len(scores.generation_rows(run))
        ),
    )
    if not as_json:
        console.print(f"saved {out}")
