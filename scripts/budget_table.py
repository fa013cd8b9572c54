"""Print a markdown table of what runs cost and scored (docs/results.md, issue 18).

    python scripts/budget_table.py RUN [RUN ...]

One row a run: where C trained (``train_in`` of its evaluation), its dream and real
scores, the real-environment agent steps each kind of stage used (collection for the world
model's data, C's own fitness episodes, the exploit guard's measurement, the evaluation),
C's training (CMA-ES generations, or the actor-critic's updates) and the whole pipeline's
wall clock (the sum of ``stages.json``'s seconds). Frames are agent steps times the
recipe's ``env.action_repeat``. Reads only the run's own JSON files and recipe.

The Dreamer line (``pipeline: online``) fits the same columns: its real play
(``train_online``'s ``env_steps``) is world-model data, its actor trains in imagination
(``dream``, by gradients) for ``updates``. The actor-critic in M's dream (``fit_actor``)
records generations of updates, as CMA-ES does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def _controller_env_steps(run: Path) -> int:
    """Real steps C's fitness episodes took: the ``env_steps`` of every generation row."""
    total = 0
    for path in sorted((run / "metrics").glob("fit_controller*.jsonl")):
        if path.name.endswith("_guard.jsonl"):
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                total += int(json.loads(line).get("env_steps", 0))
    return total


def row(run: Path) -> dict:
    """The figures of one run, from its stages.json, eval.json, metrics and recipe."""
    stages = json.loads((run / "stages.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    repeat = int((recipe.get("env") or {}).get("action_repeat", 1))
    collect = sum(r.get("frames", 0) for n, r in stages.items() if n.startswith("collect"))
    online = sum(r.get("env_steps", 0) for n, r in stages.items() if n.startswith("train_online"))
    updates = sum(r.get("updates", 0) for n, r in stages.items() if n.startswith("train_online"))
    generations = max(
        (r.get("generations", 0) for n, r in stages.items() if n.startswith("fit_controller")),
        default=0,
    )
    train_in = ev.get("train_in") or ("dream" if online else "?")
    # A round's fit_controller record counts its guard steps and generations from round 1.
    guard = max((r.get("guard_env_steps", 0) for r in stages.values()), default=0)
    dream = ev.get("dream") or {}
    return {
        "run": run.name,
        "train_in": train_in,
        "dream": dream.get("mean"),
        "real": ev["mean"],
        "std": ev["std"],
        "episodes": ev["episodes"],
        "collect": collect + online,
        "controller": _controller_env_steps(run),
        "guard": guard,
        "eval": sum(ev.get("steps", [])),
        "repeat": repeat,
        "minutes": sum(r["seconds"] for r in stages.values()) / 60,
        "training": f"{updates:,} updates" if updates else f"{generations} generations",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    print(
        "| run | C trained in | dream score | real score (episodes) | real agent steps: world-model"
        " data / C / guard / eval | real frames, all | C's training | wall clock, min |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|")
    for run in args.runs:
        r = row(run)
        dream = f"{r['dream']:.1f}" if r["dream"] is not None else "-"
        steps = [r["collect"], r["controller"], r["guard"], r["eval"]]
        frames = sum(steps) * r["repeat"]
        print(
            f"| {r['run']} | {r['train_in']} | {dream} | {r['real']:.1f} ± {r['std']:.1f}"
            f" ({r['episodes']}) | {' / '.join(f'{s:,}' for s in steps)} | {frames:,}"
            f" | {r['training']} | {r['minutes']:.1f} |"
        )


if __name__ == "__main__":
    main()
