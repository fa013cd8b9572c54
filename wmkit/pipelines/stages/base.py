"""What every stage is handed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import Progress

from wmkit.core.protocols import Executor
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.rollouts.components import AgentWeights, read_agent_weights
from wmkit.rollouts.envs import EnvSpec
from wmkit.rollouts.worker import init_worker
from wmkit.storage.rundir import RunDir


@dataclass
class StageContext:
    recipe: Recipe
    registry: Registry
    run: RunDir
    device: torch.device
    spec: EnvSpec
    progress: Progress

    def executor(self, workers: int | None = None, weights: AgentWeights | None = None) -> Executor:
        """The recipe's executor for one stage: rollout workers that know the recipe and,
        for a stage that plays the trained agent, its ``weights`` (sent as values)."""
        n = self.recipe.num_workers() if workers is None else workers
        block = self.recipe.executor
        cls = self.registry.get("executor", block.name)
        return cls(
            block.options,
            n,
            init_worker,
            (self.recipe.to_dict(), weights),
            self.recipe.task_timeout,
            self.recipe.task_retries,
        )

    def agent_weights(
        self, controller: bool = True, controller_stem: Path | None = None
    ) -> AgentWeights:
        """V, M and (unless ``controller`` is false) C from the run's checkpoints, read here
        on the driver; C from ``controller_stem`` when given."""
        return read_agent_weights(self.run.checkpoints, controller, controller_stem)
