"""Print a markdown table of an ``iterate`` run, round by round (docs/results.md, issue 18).

    python scripts/rounds_table.py RUN

For each round: the real return of the kept controller (its episodes of the next round,
``kept_mean_return`` of ``collect_round{r+1}``: a round plays the kept controller first and
then draws of the search, in turn), the mean of all the next round's episodes, the kept
dream fitness, and the minutes of the pipeline so far (the sum of ``stages.json``'s
seconds, stages in the order they finished).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    stages = json.loads((args.run / "stages.json").read_text())
    shards = json.loads((args.run / "data" / "rollouts" / "manifest.json").read_text())
    first = stages["collect"]["episodes"]
    agent = sorted(
        (e["episode"], e["total_return"])
        for e in shards["shards"].values()
        if e["episode"] >= first
    )
    minutes, elapsed = {}, 0.0
    for name in sorted(stages, key=lambda s: stages[s]["finished"]):
        elapsed += stages[name]["seconds"]
        minutes[name] = elapsed / 60
    print(
        "| after round | kept controller, real | the next round's episodes | kept fitness, dream "
        "| minutes so far |"
    )
    print("|---:|---:|---:|---:|---:|")
    start = first
    for r in range(1, 1000):
        name = "fit_controller" if r == 1 else f"fit_controller_round{r}"
        if name not in stages:
            break
        collect = stages.get(f"collect_round{r + 1}", {})
        block = [t for i, t in agent if start <= i < start + collect.get("episodes", 0)]
        start += collect.get("episodes", 0)
        real = f"{collect['kept_mean_return']:.1f}" if "kept_mean_return" in collect else ""
        rest = f"{np.mean(block):.1f}" if block else ""
        fitness = stages[name].get("kept_fitness", float("nan"))
        print(f"| {r} | {real} | {rest} | {fitness:.1f} | {minutes[name]:.0f} |")
    print(f"\nwhole pipeline: {elapsed / 60:.1f} minutes over {len(stages)} stages")


if __name__ == "__main__":
    main()
