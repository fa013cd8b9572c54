"""Metrics as JSON lines (easy to read back and plot) and TensorBoard events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from wmkit.errors import WmkitError
from wmkit.fileio import read_regular


class MetricsLogger:
    """Logs one row per step of a stage to the run's metric sinks: ``metrics/<stage>.jsonl``
    always, and TensorBoard and the recipe's other sinks (``wmkit.sinks``). On resume, rows
    past ``keep_until`` are dropped so no step is counted twice.

    Inside ``wmkit run`` the run's open sinks are used; elsewhere (a stage called on its own)
    the built-in ones: the JSON lines, and TensorBoard when ``tb_dir`` is given."""

    def __init__(self, metrics_dir: Path, tb_dir: Path | None, stage: str, keep_until: int = -1):
        from wmkit import sinks

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


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines metrics file, none if it is missing. It is read as every file
    of a run is (``fileio.read_regular``): a run may come from elsewhere, and a device or a
    link out of its folder is refused."""
    if not Path(path).exists():
        return []
    rows = []
    for line in read_regular(Path(path)).decode(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line cut short by a crash: everything after it is untrusted
    return rows
