"""Metrics as JSON lines (easy to read back and plot) and TensorBoard events."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from wmkit.core.errors import WmkitError
from wmkit.record import sinks

# read_metrics lived here in 0.1; it is below the sinks now, which read the files back.
from wmkit.storage.jsonl import read_metrics  # noqa: F401


class MetricsLogger:
    """Logs one row per step of a stage to the run's metric sinks: ``metrics/<stage>.jsonl``
    always, and TensorBoard and the recipe's other sinks (``wmkit.record.sinks``). On resume, rows
    past ``keep_until`` are dropped so no step is counted twice.

    Inside ``wmkit run`` the run's open sinks are used; elsewhere (a stage called on its own)
    the built-in ones: the JSON lines, and TensorBoard when ``tb_dir`` is given."""

    def __init__(self, metrics_dir: Path, tb_dir: Path | None, stage: str, keep_until: int = -1):
        self.path = Path(metrics_dir) / f"{stage}.jsonl"
        self.stage = stage
        opened = sinks.current()
        self._own = opened is None
        if opened is None:
            dirs = SimpleNamespace(metrics=Path(metrics_dir), tensorboard=tb_dir)
            own: list[sinks.MetricSink] = [sinks.JsonlSink(dirs)]
            if tb_dir is not None:
                own.append(sinks.TensorBoardSink(dirs))
            opened = sinks.Sinks(own)
        self._sinks = opened
        opened.start(stage, keep_until)

    def log(self, step: int, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise WmkitError(
                    f"{self.stage}: {key} became {value} at step {step}; "
                    "training diverged (try a lower learning rate)"
                )
        self._sinks.log(self.stage, step, values)

    def close(self) -> None:
        if self._own:
            self._sinks.close()
