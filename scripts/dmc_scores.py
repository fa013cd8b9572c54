"""An online DMC run's training-episode returns on DreamerV3's step axis, next to DreamerV3's.

DreamerV3's published DMC curves are the returns of its training episodes (the actor's
sampled actions), logged at agent steps x action repeat; the proprio file has one point per
10,000 steps. This reads a wmkit run's ``metrics/train_online.jsonl`` (a row per episode the
actor played, so not the random first episodes of ``collect``; ``env_steps`` counts agent
steps) and its ``recipe.yaml`` (``env.action_repeat``), puts each episode at its last agent
step x repeat, and prints the mean return of the episodes in each bin (step - bin, step].
With ``--reference`` (a downloaded ``dmc_*-dreamerv3.json.gz``, see
scripts/dreamerv3_reference.py) it adds DreamerV3's mean over seeds of its points in the same
bins. Works on a run still training.

    .venv/bin/python scripts/dmc_scores.py runs/dmc_proprio_cartpole-swingup_seed0 \\
        [--reference dmc_proprio-dreamerv3.json.gz] [--bin 10000]
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
from pathlib import Path

import yaml

REFERENCE = runpy.run_path(str(Path(__file__).with_name("dreamerv3_reference.py")))
fail = REFERENCE["fail"]


def episodes(run: Path) -> tuple[str, int, list[tuple[int, float]]]:
    """The run's env id, its action repeat, and (agent steps so far, return) per episode."""
    recipe_path, metrics = run / "recipe.yaml", run / "metrics" / "train_online.jsonl"
    if not recipe_path.is_file() or not metrics.is_file():
        fail(f"{run}: not an online run (needs recipe.yaml and metrics/train_online.jsonl)")
    try:
        env = yaml.safe_load(recipe_path.read_text())["env"]
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        played = [(int(r["env_steps"]), float(r["episode_return"])) for r in rows]
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        fail(f"{run}: cannot read its recipe or train_online metrics ({exc})")
    return str(env.get("id")), int(env.get("action_repeat", 1)), played


def binned(
    played: list[tuple[int, float]], repeat: int, width: int
) -> list[tuple[int, float, int]]:
    """(bin end on DreamerV3's axis, mean return, episodes) for every bin with an episode."""
    bins: dict[int, list[float]] = {}
    for steps, episode_return in played:
        x = steps * repeat
        bins.setdefault(-(-x // width) * width, []).append(episode_return)
    return [(end, statistics.fmean(v), len(v)) for end, v in sorted(bins.items())]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="The online run's directory.")
    parser.add_argument("--reference", type=Path, help="DreamerV3's dmc_*-dreamerv3.json.gz.")
    parser.add_argument("--bin", type=int, default=10_000, help="Bin width in DreamerV3's steps.")
    args = parser.parse_args(argv)
    if args.bin <= 0:
        fail(f"--bin: must be > 0, got {args.bin}")
    env_id, repeat, played = episodes(args.run)
    rows = binned(played, repeat, args.bin)
    reference = {}
    if args.reference is not None:
        if not args.reference.is_file():
            fail(f"{args.reference}: no such file")
        task = env_id.removeprefix("dmc/").replace("-", "_")
        steps = [float(end) for end, _, _ in rows]
        table = REFERENCE["reference"](
            REFERENCE["load_runs"](args.reference), [task], steps, args.bin
        )
        reference = {r["step"]: r["mean"] for r in table}
    print(f"{env_id}: training episodes (sampled actions), agent steps x {repeat}")
    print("| env steps (DreamerV3's) | wmkit mean return | episodes | DreamerV3 |")
    print("|---|---|---|---|")
    for end, mean, n in rows:
        ref = reference.get(end)
        ref_text = "–" if ref is None else f"{ref:.1f}"
        print(f"| {end:,} | {mean:.1f} | {n} | {ref_text} |")


if __name__ == "__main__":
    main()
