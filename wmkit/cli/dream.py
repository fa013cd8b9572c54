"""``wmkit dream``: watch what M imagines, alone or next to reality."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from wmkit.cli.errors import TRUST_PLUGINS_HELP, at_least, handle_errors
from wmkit.cli.runs import open_run
from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.record.progress import console


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class DreamPolicy(str, Enum):
    controller = "controller"
    random = "random"


@handle_errors
def dream(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Run directory (default: the most recent under runs/)."
    ),
    steps: int = typer.Option(300, "--steps", help="Steps to imagine."),
    temperature: float | None = typer.Option(
        None, "--temperature", help="tau > 0 (default: the recipe's dream.temperature)."
    ),
    policy: DreamPolicy = typer.Option(
        DreamPolicy.controller, "--policy", help="Who chooses the actions."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the real episode to start from."),
    out: Path | None = typer.Option(
        None, "--out", help="Video file, .gif or .mp4 (default: RUN/videos/dream_....gif)."
    ),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Show real | V reconstruction | M imagination."
    ),
    device: Device = typer.Option(Device.cpu, "--device", help="Where V and M run."),
    trust_plugins: bool = typer.Option(False, "--trust-plugins", help=TRUST_PLUGINS_HELP),
) -> None:
    """Roll the world model forward in imagination and decode every latent to a frame."""
    import torch

    from wmkit.pipelines.runner import pipeline_of
    from wmkit.pipelines.stages.base import StageContext
    from wmkit.record.progress import make_progress
    from wmkit.rollouts.components import resolve_device
    from wmkit.rollouts.envs import env_spec, make_env
    from wmkit.rollouts.policies import recipe_policy
    from wmkit.storage.checkpoint import exists as checkpoint_exists

    at_least("--steps", steps, 1)
    at_least("--temperature", temperature, 0, strict=True)
    at_least("--seed", seed, 0)
    run = open_run(checkpoint, trained=True)
    root = run.root
    if out is not None and out.suffix not in (".gif", ".mp4"):
        raise WmkitError(f"--out: {out}: the video must end in .gif or .mp4")
    recipe = load_recipe(run.recipe_path, trust_plugins=trust_plugins)
    registry = get_registry(tuple(recipe.plugins))
    tau = recipe.dream.temperature if temperature is None else temperature
    dev = str(resolve_device(device.value))
    env = make_env(recipe.env, registry)
    collect = recipe.collect
    random_kind = "uniform" if collect.policy == "controller" else collect.policy
    random = recipe_policy(random_kind, env_spec(env), seed, collect)
    wants_controller = policy is DreamPolicy.controller
    if wants_controller and not checkpoint_exists(run.checkpoints / "controller"):
        raise WmkitError(f"{root}: no trained controller yet; use --policy random")
    ctx = StageContext(recipe, registry, run, torch.device(dev), env_spec(env), make_progress())
    pipeline = pipeline_of(recipe, registry)
    with console.status("dreaming"):
        result = pipeline.dream_film(
            ctx, env, steps, temperature, seed, side_by_side, random, wants_controller
        )
    env.close()
    _write(run, result, side_by_side, policy, seed, tau, out)


def _write(run, result, side_by_side: bool, policy, seed: int, tau: float, out) -> None:
    """The video and its strip of stills, and one line on how the dream went."""
    from wmkit.dreams.film import compose
    from wmkit.record.video import write_strip, write_video

    frames = compose(result)
    kind = "side_by_side" if side_by_side else "dream"
    out = out or run.videos / f"{kind}_{policy.value}_seed{seed}_tau{tau:g}.gif"
    video = write_video(frames, out)
    strip = write_strip(frames, out.with_name(out.stem + "_strip.png"), count=8, vertical=True)
    console.print(
        f"{len(frames)} steps ({result.ended_by}); dream reward "
        f"{result.dream_reward:.1f}"
        + (f", real reward {result.real_reward:.1f}" if side_by_side else "")
    )
    typer.echo(f"video {video}")
    typer.echo(f"strip {strip}")
