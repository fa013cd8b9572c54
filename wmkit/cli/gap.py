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
    from wmkit.pipelines.runner import make_context
    from wmkit.results.gap import default_policies, measure_gap, to_dict
    from wmkit.rollouts.components import build_trained
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
    if recipe.world_model is not None:  # a world model trained as one piece (online)
        _world_model_gap(ctx, names, episodes, trained, temperature)
        return
    tau = recipe.dream.temperature if temperature is None else temperature
    _, memory, controller = build_trained(
        recipe, registry, spec, run.checkpoints, device=str(ctx.device), controller=trained
    )
    if hasattr(controller, "to"):
        controller.to(ctx.device)
    with ctx.progress:
        rows = measure_gap(ctx, memory, controller, names, episodes, tau)
    out = run.root / "evals" / f"gap_tau{tau:g}_n{episodes}.json"
    atomic_write_json(out, to_dict(rows, tau, episodes))
    _report(rows, out, f"dream at tau {tau:g} vs real, {episodes} episodes each:")


def _world_model_gap(ctx, names: list[str], episodes: int, trained: bool, temperature) -> None:
    from wmkit.pipelines.online import trained_parts
    from wmkit.results.gap import measure_world_model_gap, to_dict

    recipe = ctx.recipe
    if temperature is not None:
        raise WmkitError(
            f"--temperature: {recipe.world_model.name!r} draws its latents as trained; it "
            "has no temperature"
        )
    world_model, actor = trained_parts(
        recipe, ctx.registry, ctx.spec, ctx.run.checkpoints, ctx.device, trained
    )
    with ctx.progress:
        rows = measure_world_model_gap(ctx, world_model, actor, names, episodes)
    out = ctx.run.root / "evals" / f"gap_n{episodes}.json"
    atomic_write_json(out, to_dict(rows, None, episodes))
    _report(rows, out, f"dream vs real, {episodes} episodes each:")


def _report(rows, out: Path, title: str) -> None:
    from wmkit.results.gap import pairs_in_order

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
