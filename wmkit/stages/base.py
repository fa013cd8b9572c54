"""What every stage is handed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.progress import Progress

from wmkit.envs import EnvSpec
from wmkit.executor import make_executor
from wmkit.recipe import Recipe
from wmkit.registry import Registry
from wmkit.rundir import RunDir
from wmkit.worker import init_worker


@dataclass
class StageContext:
    recipe: Recipe
    registry: Registry
    run: RunDir
    device: torch.device
    spec: EnvSpec
    progress: Progress

    def executor(self, workers: int | None = None):
        """A pool of rollout workers that know this run's recipe and directory."""
        n = self.recipe.num_workers() if workers is None else workers
        return make_executor(n, init_worker, (self.recipe.to_dict(), str(self.run.root)))
