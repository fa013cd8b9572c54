"""Weights & Biases as a metric sink: every ``wmkit run`` becomes a W&B run.

Select it in a recipe with ``sinks: [tensorboard, wandb]`` (or ``--set 'sinks=[wandb]'``).
It needs the ``wandb`` package: ``pip install 'wmkit[wandb]'``.

W&B's own environment variables apply: ``WANDB_PROJECT`` (default: the recipe's name),
``WANDB_ENTITY``, ``WANDB_DIR`` (where its files go; default ``./wandb``) and ``WANDB_MODE``:
``offline`` writes files only and needs no network or account (``wandb sync`` uploads them
later). Runs are grouped by recipe name, so the seeds of ``wmkit run --seeds`` sit together.
The resolved recipe is the run's config; every metric row becomes ``STAGE/KEY`` against its
own axis ``STAGE/step`` (an epoch or a generation).

A resumed ``wmkit run`` opens a new W&B run holding the rows it logs; the run directory's
``metrics/*.jsonl`` stay the full record. wmkit's stdout is left alone (W&B's console capture
is off) and W&B's system monitor is off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.record.sinks import MetricSink


class WandbSink(MetricSink):
    """Logs every metric row to a W&B run."""

    name = "wandb"

    def __init__(self, run: Any, recipe: Any = None) -> None:
        super().__init__(run, recipe)
        try:
            import wandb
        except ImportError:
            raise WmkitError(
                "metric sink 'wandb' needs Weights & Biases: pip install 'wmkit[wandb]'"
            ) from None
        name = recipe.name if recipe is not None else "wmkit"
        root = Path(run.root)
        self._run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or name,
            group=name,
            name=root.parent.name + "/" + root.name if root.name.startswith("seed_") else root.name,
            config=recipe.to_dict() if recipe is not None else {},
            settings=wandb.Settings(console="off", x_disable_stats=True, quiet=True),
        )
        self._stages: set[str] = set()

    def start(self, stage: str, keep_until: int) -> None:
        if stage not in self._stages:
            self._run.define_metric(f"{stage}/step")
            self._run.define_metric(f"{stage}/*", step_metric=f"{stage}/step")
            self._stages.add(stage)

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        row = {f"{stage}/{k}": v for k, v in values.items() if isinstance(v, (int, float))}
        self._run.log({**row, f"{stage}/step": step})

    def close(self) -> None:
        self._run.finish()


@hookimpl
def wmkit_metric_sinks() -> list[type]:
    return [WandbSink]
