"""What a rollout worker process keeps between tasks: the recipe, one env, the trained V and M.

Workers are started with the resolved recipe as plain data and the weights of V, M and C as
values, and rebuild everything from them through the same plugin registry, so a third-party
component works in workers unchanged. A worker never opens the run directory: it may be on
another machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wmkit.core.recipe import Recipe, registry_for, resolve_recipe
from wmkit.core.registry import Registry
from wmkit.rollouts.agent import Agent
from wmkit.rollouts.components import AgentWeights, build_agent
from wmkit.rollouts.envs import EnvSpec, FrameWrapper, env_spec, make_env


@dataclass
class WorkerContext:
    recipe: Recipe
    registry: Registry
    weights: AgentWeights | None = None
    _env: FrameWrapper | None = None
    _agent: Agent | None = None

    def env(self) -> FrameWrapper:
        if self._env is None:
            self._env = make_env(self.recipe.env, self.registry)
        return self._env

    def spec(self) -> EnvSpec:
        return env_spec(self.env())

    def agent(self) -> Agent:
        """V and M with the weights the stage sent, and C with its parameters (when sent)."""
        if self._agent is None:
            if self.weights is None:
                raise RuntimeError("this stage sent its workers no weights")
            self._agent = build_agent(self.recipe, self.registry, self.spec(), self.weights)
        return self._agent


_context: WorkerContext | None = None


def init_worker(recipe_data: dict[str, Any], weights: AgentWeights | None = None) -> None:
    """Executor initializer: runs once in each worker (or inline, in this process) per stage.
    ``weights`` are those of the agent the stage plays, if it plays one."""
    global _context
    registry = registry_for(recipe_data)
    recipe = resolve_recipe(recipe_data, registry)
    _context = WorkerContext(recipe, registry, weights)


def context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("worker used before init_worker")
    return _context
