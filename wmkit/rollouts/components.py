"""Building a recipe's components, fresh or from a run directory's checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as tensors_to_bytes

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ROLES, Controller, Memory, Optimizer, Vision
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.core.resources import allocation_failed
from wmkit.rollouts.agent import Agent
from wmkit.rollouts.envs import EnvSpec
from wmkit.storage import checkpoint


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
        if allocation_failed(exc):
            raise  # preflight's ``building`` names it: not enough memory, not a bug
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
    if ROLES[role].saved_as == "params":
        tensors = {"params": np.asarray(component.get_params(), dtype=np.float64)}
    else:
        tensors = dict(component.state_dict())
    checkpoint.save_tensors(stem, tensors, checkpoint_meta(recipe, role, **extra))


def load_component(stem: Path, component: Any, role: str) -> dict[str, Any]:
    """Load weights saved by ``save_component`` into ``component``; returns the metadata."""
    tensors, meta = checkpoint.load_tensors(stem)
    if ROLES[role].saved_as == "params":
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


@dataclass(frozen=True)
class AgentWeights:
    """The weights of V and M (safetensors bytes) and C's parameters (or None: a fresh C):
    what a stage sends its rollout workers, by value, so that they never read a checkpoint
    and need no access to the run directory."""

    vision: bytes
    memory: bytes
    controller: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        extra = 0 if self.controller is None else self.controller.nbytes
        return len(self.vision) + len(self.memory) + extra


def _state_bytes(state: dict[str, Any]) -> bytes:
    return tensors_to_bytes({k: torch.as_tensor(v).cpu().contiguous() for k, v in state.items()})


def agent_weights(
    vision: Vision, memory: Memory, controller: Controller | None = None
) -> AgentWeights:
    """The weights of live components, as values."""
    params = None if controller is None else np.asarray(controller.get_params(), np.float64)
    return AgentWeights(
        _state_bytes(vision.state_dict()), _state_bytes(memory.state_dict()), params
    )


def read_agent_weights(
    ckpt_dir: Path, controller: bool = True, controller_stem: Path | None = None
) -> AgentWeights:
    """The weights in a run's checkpoints (checksums verified here, on the driver); C's
    from ``controller_stem`` when given, and none when ``controller`` is false or C has no
    checkpoint yet."""
    vision, _ = checkpoint.load_tensors(ckpt_dir / "vision")
    memory, _ = checkpoint.load_tensors(ckpt_dir / "memory")
    params = None
    stem = controller_stem or ckpt_dir / "controller"
    if controller and checkpoint.exists(stem):
        params = np.asarray(checkpoint.load_tensors(stem)[0]["params"], np.float64)
    return AgentWeights(_state_bytes(vision), _state_bytes(memory), params)


def build_agent(recipe: Recipe, registry: Registry, spec: EnvSpec, weights: AgentWeights) -> Agent:
    """The agent of ``weights`` on the CPU, built as ``build_trained`` builds it (the same
    components in the same order, so the same numbers)."""
    vision = build_vision(recipe, registry, spec)
    vision.load_state_dict(tensors_from_bytes(weights.vision))
    memory = build_memory(recipe, registry, vision.latent_dim, spec)
    memory.load_state_dict(tensors_from_bytes(weights.memory))
    for m in (vision, memory):
        if isinstance(m, torch.nn.Module):
            m.eval()
    controller = build_controller(recipe, registry, vision.latent_dim + memory.feature_dim, spec)
    if weights.controller is not None:
        controller.set_params(np.array(weights.controller))  # writable, wherever it came from
    return Agent(vision, memory, controller)
