"""Train a fresh C in the dream of a finished Ha run's V and M, by CMA-ES or by gradients.

    python scripts/c_in_dream.py SOURCE_RUN OUT                  # the source's own C and search
    python scripts/c_in_dream.py SOURCE_RUN OUT --actor-critic   # an actor, by the actor-critic
    python scripts/c_in_dream.py ... --set optimizer.generations=30 --set dream.starts=anywhere
    wmkit eval --checkpoint OUT --episodes 100

Issue 19's "gradient vs CMA-ES in the same dream": both controllers trained from scratch in
one dream (same V, same M, same temperature), then scored on the same real evaluation seeds.
It saves the hour of collection, V and M that a whole ``wmkit run`` would spend again.

OUT gets the source's data as hard links (copies across file systems) and copies of its V
and M checkpoints (after ``iterate``, the last round's M), and a recipe that is the
source's with ``iterate`` removed (and C and the optimizer replaced by ``--actor-critic``).
C is trained by the stage the ``ha`` pipeline picks (``fit_controller``, or ``fit_actor`` for a
gradient optimizer), as in ``wmkit run``. Rerunning the same
command resumes at the next generation. The source run is only read: its recipe through the
same validation as ``wmkit run``'s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import apply_overrides, resolve_recipe
from wmkit.pipelines.ha import controller_trainer
from wmkit.pipelines.runner import make_context
from wmkit.storage.fileio import read_regular
from wmkit.storage.rundir import RunDir

# The actor-critic as measured in docs/results.md (issue 19, MDN dream of Doom's quick recipe).
ACTOR: dict[str, Any] = {
    "controller": {"name": "actor", "distribution": "gaussian", "units": 64, "layers": 1},
    "optimizer": {
        "name": "actor_critic",
        "generations": 60,
        "updates": 10,
        "starts": 256,
        "score_dreams": 16,
        "horizon": 15,
        "gamma": 0.997,
        "entropy": 3e-4,
        "learning_rate": 1e-4,
        "critic_learning_rate": 3e-4,
    },
}


def copy_tree(src: Path, dst: Path, keep: Callable[[Path], bool] = lambda path: True) -> None:
    """The regular files under ``src`` that ``keep`` accepts, hard-linked where the file
    system allows; a link anywhere is refused before anything is written."""
    paths = sorted(src.rglob("*"))
    for path in paths:
        if path.is_symlink():
            raise WmkitError(f"{path}: a link in the source run; refusing to follow it")
    for path in paths:
        if path.is_dir() or not keep(path):
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="A finished Ha run (its V and M are used).")
    parser.add_argument("out", type=Path, help="The new run directory.")
    parser.add_argument("--actor-critic", action="store_true", help="C by gradients (ACTOR).")
    parser.add_argument("--set", action="append", default=[], help="Override: optimizer.x=1")
    args = parser.parse_args()
    data = yaml.safe_load(read_regular(args.source / "recipe.yaml"))
    if args.actor_critic:
        data = {**data, **ACTOR, "name": f"{data['name']}_actor_critic"}
    else:  # the source's own search, in the dream even where the source searched the game
        data["optimizer"] = {**data["optimizer"], "train_in": "dream"}
    data.pop("iterate", None)
    apply_overrides(data, args.set, "--set")
    registry = get_registry(tuple(data.get("plugins", ())))
    recipe = resolve_recipe(data, registry)
    if not args.out.exists():  # built aside and renamed, so a cut-short copy is never used
        partial = args.out.with_name(args.out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        copy_tree(args.source / "data", partial / "data")
        copy_tree(
            args.source / "checkpoints",
            partial / "checkpoints",
            keep=lambda path: path.name.split(".")[0] in ("vision", "memory"),
        )
        partial.rename(args.out)
    run = RunDir(args.out)
    run.init(recipe)  # a rerun with another recipe is refused here
    ctx = make_context(recipe, registry, run)
    with ctx.progress:
        print(controller_trainer(recipe)(ctx))  # fit_controller, or fit_actor by gradients


if __name__ == "__main__":
    try:
        main()
    except WmkitError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
