"""DreamerV3's published DMC scores at given environment steps, from its own score file.

The file is not in wmkit (fetched data stays out of the repository); download it from
danijar/dreamerv3 at commit 2411f7d136832378c0291c587cdbf2fca6506873 (the commit that last
changed it), for example:

    curl -LO https://raw.githubusercontent.com/danijar/dreamerv3/2411f7d136832378c0291c587cdbf2fca6506873/scores/dmc_proprio-dreamerv3.json.gz
    .venv/bin/python scripts/dreamerv3_reference.py dmc_proprio-dreamerv3.json.gz \\
        --tasks walker_walk cartpole_swingup reacher_easy cheetah_run --steps 100000 500000

The file is a gzipped JSON list of runs, one per task and seed: ``{"task", "method", "seed",
"xs", "ys"}``, ``xs`` environment steps as DreamerV3 logs them (agent steps times the action
repeat, 2 for DMC: the suite's control steps) and ``ys`` episode scores. The proprio file
holds one point per 10,000 steps; the vision file one per logged episode. A run's score at
``step`` is the mean of its points in (step - window, step], ``window`` 10,000 by default
(exactly the point at ``step`` in the proprio file); the table gives the mean, the standard
deviation and the count over seeds. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path


def fail(message: str) -> None:
    """One ``error:`` line and exit code 2, as wmkit's commands do."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_runs(path: Path) -> list[dict]:
    """The score file's runs, checked for the fields this script reads."""
    try:
        runs = json.loads(gzip.decompress(path.read_bytes()))
    except OSError as exc:
        fail(f"{path}: cannot read a gzipped score file ({exc})")
    except ValueError as exc:
        fail(f"{path}: not a JSON score file ({exc})")
    fields = {"task", "seed", "xs", "ys"}
    if not isinstance(runs, list) or not all(
        isinstance(r, dict) and fields <= set(r) for r in runs
    ):
        fail(f"{path}: expected a list of runs with fields {sorted(fields)}")
    return runs


def score_at(run: dict, step: float, window: float) -> float | None:
    """The mean of the run's points in (step - window, step], None if it has none there."""
    ys = [y for x, y in zip(run["xs"], run["ys"]) if step - window < x <= step]
    return statistics.fmean(ys) if ys else None


def reference(runs: list[dict], tasks: list[str], steps: list[float], window: float) -> list[dict]:
    """One row per task and step: mean, standard deviation and number of seeds."""
    rows = []
    for task in tasks:
        name = task if task.startswith("dmc_") else f"dmc_{task}"
        of_task = [r for r in runs if r["task"] == name]
        if not of_task:
            known = ", ".join(sorted({r["task"].removeprefix("dmc_") for r in runs}))
            fail(f"--tasks: {task!r} is not in the file (it has {known})")
        for step in steps:
            scores = [s for s in (score_at(r, step, window) for r in of_task) if s is not None]
            rows.append(
                {
                    "task": name.removeprefix("dmc_"),
                    "step": int(step),
                    "mean": statistics.fmean(scores) if scores else None,
                    "std": statistics.stdev(scores) if len(scores) > 1 else None,
                    "seeds": len(scores),
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| task | env steps | DreamerV3 mean | std over seeds | seeds |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        mean = "–" if row["mean"] is None else f"{row['mean']:.1f}"
        std = "–" if row["std"] is None else f"{row['std']:.1f}"
        lines.append(f"| {row['task']} | {row['step']:,} | {mean} | {std} | {row['seeds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="dmc_proprio-dreamerv3.json.gz or dmc_vision-…")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["walker_walk", "cartpole_swingup", "reacher_easy", "cheetah_run"],
        help="Tasks as the file names them, with or without the dmc_ prefix.",
    )
    parser.add_argument(
        "--steps", nargs="+", type=float, default=[100_000, 500_000], help="Environment steps."
    )
    parser.add_argument(
        "--window", type=float, default=10_000, help="Points in (step - window, step] count."
    )
    args = parser.parse_args(argv)
    if not args.file.is_file():
        fail(f"{args.file}: no such file")
    if args.window <= 0:
        fail(f"--window: must be > 0, got {args.window}")
    print(markdown(reference(load_runs(args.file), args.tasks, args.steps, args.window)))


if __name__ == "__main__":
    main()
