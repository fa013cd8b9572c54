"""The agent of the Dreamer line built from a recipe: a world model, an actor on its features
and the optimizer that trains the actor; trained, from a run's checkpoints, or as a run still
training last saved it (``train_online``'s resume checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import GradientController, GradientOptimizer, WorldModel
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.core.seeding import derive_seed
from wmkit.nn.cuda_graph import request_graph
from wmkit.rollouts.components import construct, load_component
from wmkit.rollouts.envs import EnvSpec
from wmkit.storage import checkpoint

# train_online's checkpoint of everything after each episode (``_save_resume``).
RESUME = "online_resume"


def build_agent_parts(
    recipe: Recipe, registry: Registry, spec: EnvSpec
) -> tuple[WorldModel, GradientController, GradientOptimizer]:
    """The world model, the actor on its features, and the optimizer that trains the actor."""
    wm_block, c_block, o_block = recipe.world_model, recipe.controller, recipe.optimizer
    world_model = construct(
        registry, "world_model", wm_block.name, wm_block.options, spec.obs_shape, spec.action_dim
    )
    controller = construct(
        registry,
        "controller",
        c_block.name,
        c_block.options,
        world_model.feature_dim,
        spec.action_low,
        spec.action_high,
    )
    optimizer = construct(
        registry,
        "optimizer",
        o_block.name,
        o_block.options,
        controller,
        world_model.feature_dim,
        derive_seed(recipe.seed, "optimizer"),
    )
    request_graph(optimizer, recipe.dream.graph)
    return world_model, controller, optimizer


def trained_parts(
    recipe: Recipe,
    registry: Registry,
    spec: EnvSpec,
    checkpoints: Path,
    device: torch.device | str = "cpu",
    controller: bool = True,
) -> tuple[WorldModel, GradientController | None]:
    """The trained world model (in eval mode) and actor (None unless ``controller``) from a
    run's checkpoints, on ``device``: what eval, dream and gap play."""
    world_model, actor, _ = build_agent_parts(recipe, registry, spec)
    load_component(checkpoints / "world_model", world_model, "world_model")
    world_model.to(device).eval()
    if not controller:
        return world_model, None
    load_component(checkpoints / "controller", actor, "controller")
    actor.to(device)
    return world_model, actor


def in_progress_parts(
    recipe: Recipe,
    registry: Registry,
    spec: EnvSpec,
    checkpoints: Path,
    device: torch.device | str = "cpu",
) -> tuple[WorldModel, GradientController, dict[str, int]]:
    """The world model and actor of a run that may still be training, as ``train_online``
    saved them after its latest episode, and how far it had got (``episodes`` played by the
    actor, ``updates``): a long run can be scored along the way without stopping it."""
    stem = checkpoints / RESUME
    if not checkpoint.exists(stem):
        raise WmkitError(
            f"{stem}.safetensors: no in-progress checkpoint yet; it is written after the "
            "actor's first episode of train_online"
        )
    tensors, meta = checkpoint.load_tensors(stem)  # checksummed, so the counters are too
    world_model, actor, _ = build_agent_parts(recipe, registry, spec)
    try:
        load_agent(tensors, world_model, actor)
        progress = {"episodes": int(meta["episodes"]), "updates": int(meta["updates"])}
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WmkitError(f"{stem}.safetensors: does not fit this run's recipe ({first})") from None
    world_model.to(device).eval()
    actor.to(device)
    return world_model, actor, progress


def load_agent(
    tensors: dict[str, Any], world_model: WorldModel, controller: GradientController
) -> None:
    """The world model's and actor's weights from the tensors ``_save_resume`` wrote."""
    world_model.load_state_dict(prefixed(tensors, "world_model."))
    controller.set_params(tensors["controller.params"])


def prefixed(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
