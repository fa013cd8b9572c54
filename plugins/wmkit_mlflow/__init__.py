"""MLflow as a metric sink: every ``wmkit run`` becomes an MLflow run.

Select it in a recipe with ``sinks: [tensorboard, mlflow]`` (or ``--set 'sinks=[mlflow]'``).
It needs MLflow's client: ``pip install 'wmkit[mlflow]'``.

Where the runs go is MLflow's own setting, ``MLFLOW_TRACKING_URI``: a folder
(``file:///path/mlruns``), a database, or a tracking server (``http://host:5000``).
The experiment is ``MLFLOW_EXPERIMENT_NAME`` when set, else the recipe's name.
The MLflow run is named after the run directory and gets the resolved recipe as parameters;
every metric row becomes ``STAGE/KEY`` at its epoch or generation.

A resumed ``wmkit run`` opens a new MLflow run holding the rows it logs; the run
directory's ``metrics/*.jsonl`` stay the full record.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.record.sinks import MetricSink

# MLflow refuses longer parameter values on some stores; the recipe stays whole in the run
# directory.
MAX_PARAM = 250


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"memory": {"hidden": 256}}`` as ``{"memory.hidden": "256"}``."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM]
    return out


class MlflowSink(MetricSink):
    """Logs every metric row to an MLflow run, through ``MlflowClient`` (no global state)."""

    name = "mlflow"

    def __init__(self, run: Any, recipe: Any = None) -> None:
        super().__init__(run, recipe)
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise WmkitError(
                "metric sink 'mlflow' needs MLflow's client: pip install 'wmkit[mlflow]'"
            ) from None
        self._metric, self._client = Metric, MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or (recipe.name if recipe else "wmkit")
        experiment = self._client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment else self._client.create_experiment(name)
        )
        tags = {"wmkit.run_dir": str(Path(run.root).resolve())}
        if recipe is not None:
            tags["wmkit.recipe_sha256"] = recipe.digest()
        self.run_id = self._client.create_run(
            experiment_id, run_name=Path(run.root).name, tags=tags
        ).info.run_id
        if recipe is not None:
            params = [Param(k, v) for k, v in flatten(recipe.to_dict()).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 per batch
                self._client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        metrics = [
            self._metric(f"{stage}/{key}", float(value), now, step)
            for key, value in values.items()
            if isinstance(value, (int, float))
        ]
        self._client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


@hookimpl
def wmkit_metric_sinks() -> list[type]:
    return [MlflowSink]
