"""Reading back JSON-lines files, as the metric sinks write them (``metrics/STAGE.jsonl``).

It sits in storage, below the sinks that write the rows and the scores that read them, so
that neither has to import the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wmkit.storage.fileio import read_regular


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
