"""What every stage is handed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    def executor(self, workers: int | None = None, controller_stem: Path | None = None):
        """A pool of rollout workers that know this run's recipe and directory (and which
        controller checkpoint to play, when not the run's own)."""
        n = self.recipe.num_workers() if workers is None else workers
        stem = str(controller_stem) if controller_stem else None
        return make_executor(
            n,
            init_worker,
            (self.recipe.to_dict(), str(self.run.root), stem),
            self.recipe.task_timeout,
            self.recipe.task_retries,
        )
