"""What a rollout worker process keeps between tasks: the recipe, one env, the trained V and M.

Workers are started with the resolved recipe as plain data and rebuild everything from it
through the same plugin registry, so a third-party component works in workers unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmkit.agent import Agent
from wmkit.components import build_trained
from wmkit.envs import EnvSpec, FrameWrapper, env_spec, make_env
from wmkit.recipe import Recipe, registry_for, resolve_recipe
from wmkit.registry import Registry
from wmkit.rundir import RunDir


@dataclass
class WorkerContext:
    recipe: Recipe
    registry: Registry
    run: RunDir
    controller_stem: Path | None = None
    _env: FrameWrapper | None = None
    _agent: Agent | None = None

    def env(self) -> FrameWrapper:
        if self._env is None:
            self._env = make_env(self.recipe.env, self.registry)
        return self._env

    def spec(self) -> EnvSpec:
        return env_spec(self.env())

    def agent(self) -> Agent:
        """The trained V and M from the run's checkpoints, with the run's controller."""
        if self._agent is None:
            vision, memory, controller = build_trained(
                self.recipe,
                self.registry,
                self.spec(),
                self.run.checkpoints,
                controller_stem=self.controller_stem,
            )
            self._agent = Agent(vision, memory, controller)
        return self._agent


_context: WorkerContext | None = None


def init_worker(
    recipe_data: dict[str, Any], run_root: str, controller_stem: str | None = None
) -> None:
    """Executor initializer: runs once in each worker (or inline, in this process).
    ``controller_stem`` picks another controller checkpoint than the run's own."""
    global _context
    registry = registry_for(recipe_data)
    recipe = resolve_recipe(recipe_data, registry)
    stem = Path(controller_stem) if controller_stem else None
    _context = WorkerContext(recipe, registry, RunDir(Path(run_root)), stem)


def context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("worker used before init_worker")
    return _context
