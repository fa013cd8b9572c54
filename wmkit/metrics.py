"""Metrics as JSON lines (easy to read back and plot) and TensorBoard events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from wmkit.errors import WmkitError
from wmkit.fileio import check_regular


class MetricsLogger:
    """Appends one JSON object per step to ``metrics/<stage>.jsonl`` and mirrors scalars to
    TensorBoard. On resume, rows past ``keep_until`` are dropped so no step is counted twice."""

    def __init__(self, metrics_dir: Path, tb_dir: Path | None, stage: str, keep_until: int = -1):
        self.path = Path(metrics_dir) / f"{stage}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            check_regular(self.path)  # rewritten in place below: never through a link
        self.stage = stage
        rows = [r for r in read_metrics(self.path) if r.get("step", -1) <= keep_until]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self._tb = None
        if tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(tb_dir))
            except ImportError:  # TensorBoard is optional at run time
                self._tb = None

    def log(self, step: int, **values: Any) -> None:
        for key, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise WmkitError(
                    f"{self.stage}: {key} became {value} at step {step}; "
                    "training diverged (try a lower learning rate)"
                )
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(f"{self.stage}/{key}", value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # a line cut short by a crash: everything after it is untrusted
    return rows
