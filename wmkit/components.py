"""Building a recipe's components, fresh or from a run directory's checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmkit import checkpoint
from wmkit.envs import EnvSpec
from wmkit.errors import WmkitError
from wmkit.protocols import Controller, Memory, Optimizer, Vision
from wmkit.recipe import Recipe
from wmkit.registry import Registry


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; everything also runs on the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise WmkitError("device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(device)


def construct(registry: Registry, role: str, name: str, *args: Any) -> Any:
    """Build the component ``name`` of ``role``. A constructor that rejects its arguments
    ends the command with one line naming the role, the component, its plugin and the
    message; a ``WmkitError`` it raises is shown as it is."""
    cls = registry.get(role, name)
    try:
        return cls(*args)
    except WmkitError:
        raise
    except Exception as exc:
        plugin = registry.origins.get((role, name), "?")
        message = " ".join(str(exc).split())
        raise WmkitError(
            f"{role} {name!r} (plugin {plugin!r}) cannot be built: {type(exc).__name__}: {message}"
        ) from exc


def build_vision(recipe: Recipe, registry: Registry, spec: EnvSpec) -> Vision:
    return construct(
        registry, "vision", recipe.vision.name, recipe.vision.options, spec.frame_shape
    )


def build_memory(recipe: Recipe, registry: Registry, latent_dim: int, spec: EnvSpec) -> Memory:
    block = recipe.memory
    return construct(registry, "memory", block.name, block.options, latent_dim, spec.action_dim)


def build_controller(
    recipe: Recipe, registry: Registry, input_dim: int, spec: EnvSpec
) -> Controller:
    block = recipe.controller
    return construct(
        registry,
        "controller",
        block.name,
        block.options,
        input_dim,
        spec.action_low,
        spec.action_high,
    )


def build_optimizer(recipe: Recipe, registry: Registry, x0: np.ndarray, seed: int) -> Optimizer:
    return construct(
        registry, "optimizer", recipe.optimizer.name, recipe.optimizer.options, x0, seed
    )


def checkpoint_meta(recipe: Recipe, role: str, **extra: Any) -> dict[str, Any]:
    block = getattr(recipe, role)
    return {
        "role": role,
        "component": block.name,
        "options": block.options.model_dump(mode="json"),
        "recipe_sha256": recipe.digest(),
        "seed": recipe.seed,
        **extra,
    }


def save_component(stem: Path, component: Any, recipe: Recipe, role: str, **extra: Any) -> None:
    """Save a torch component's weights (or a controller's flat parameters)."""
    if role == "controller":
        tensors = {"params": np.asarray(component.get_params(), dtype=np.float64)}
    else:
        tensors = dict(component.state_dict())
    checkpoint.save_tensors(stem, tensors, checkpoint_meta(recipe, role, **extra))


def load_component(stem: Path, component: Any, role: str) -> dict[str, Any]:
    """Load weights saved by ``save_component`` into ``component``; returns the metadata."""
    tensors, meta = checkpoint.load_tensors(stem)
    if role == "controller":
        component.set_params(tensors["params"])
    else:
        component.load_state_dict(tensors)
    return meta


def build_trained(
    recipe: Recipe,
    registry: Registry,
    spec: EnvSpec,
    ckpt_dir: Path,
    device: str = "cpu",
    controller: bool = True,
    controller_stem: Path | None = None,
) -> tuple[Vision, Memory, Controller | None]:
    """V and M (and C) with the weights of a run's checkpoints, in eval mode on ``device``."""
    vision = build_vision(recipe, registry, spec)
    load_component(ckpt_dir / "vision", vision, "vision")
    memory = build_memory(recipe, registry, vision.latent_dim, spec)
    load_component(ckpt_dir / "memory", memory, "memory")
    for m in (vision, memory):
        if isinstance(m, torch.nn.Module):
            m.to(device).eval()
    ctrl = None
    if controller:
        ctrl = build_controller(recipe, registry, vision.latent_dim + memory.feature_dim, spec)
        stem = controller_stem or ckpt_dir / "controller"
        if checkpoint.exists(stem):
            load_component(stem, ctrl, "controller")
    return vision, memory, ctrl
