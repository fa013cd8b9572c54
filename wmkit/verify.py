"""Checking a run directory's data and checkpoints against their checksums, and repairing it.

Repair deletes what is damaged and marks the stage that made it as not done. Every stage is
seeded and resumable, so the next ``wmkit run`` recreates exactly the missing pieces (one
episode, one checkpoint) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from wmkit import checkpoint
from wmkit.errors import WmkitError
from wmkit.recipe import Recipe, registry_for, resolve_recipe
from wmkit.rundir import RunDir
from wmkit.stages.iterate import episode_round
from wmkit.store import RolloutStore

# Which stage writes which checkpoint.
CHECKPOINT_STAGES = {
    "vision": "fit_vision",
    "vision_resume": "fit_vision",
    "memory": "fit_memory",
    "memory_resume": "fit_memory",
    "controller": "fit_controller",
    "optimizer_state": "fit_controller",
}


@dataclass
class Damage:
    path: str
    reason: str
    stage: str


def _latest(run: RunDir, stage: str) -> str:
    """The last round's stage that rewrote this checkpoint (``iterate.rounds``), or ``stage``."""
    done = run.stages()
    rounds = [int(n.rsplit("round", 1)[1]) for n in done if n.startswith(f"{stage}_round")]
    return f"{stage}_round{max(rounds)}" if rounds else stage


def _recipe(run: RunDir) -> Recipe | None:
    """The run's recipe with today's defaults, or None when it cannot be read."""
    try:
        data = yaml.safe_load(run.recipe_path.read_text())
        return resolve_recipe(data, registry_for(data))
    except (OSError, yaml.YAMLError, WmkitError, AttributeError, TypeError):
        return None


def _episode_stage(recipe: Recipe | None, stage: str, episode: int) -> str:
    """The stage that wrote an episode: ``collect`` (or ``encode``) for the random rollouts,
    a later round's for those its agent played. Redoing a round's episode replays it with
    the agent now in the checkpoints, which after later rounds is not the one that first
    played it: the episode is replaced, not restored."""
    r = 1 if recipe is None else episode_round(recipe, episode)
    return stage if r == 1 else f"{stage}_round{r}"


def find_damage(run: RunDir) -> list[Damage]:
    found = []
    recipe = _recipe(run)
    for folder, stage in ((run.rollouts, "collect"), (run.latents, "encode")):
        if not (folder / "manifest.json").exists():
            continue
        try:
            store = RolloutStore(folder)
        except WmkitError as exc:
            found.append(Damage(str(folder / "manifest.json"), str(exc), stage))
            continue
        for info in store.verify():
            owner = _episode_stage(recipe, stage, info.episode)
            found.append(Damage(str(folder / info.file), "missing or checksum mismatch", owner))
    for weights in sorted(run.checkpoints.glob("*.safetensors")):
        stem = weights.with_suffix("")
        try:
            checkpoint.load_tensors(stem)
        except WmkitError as exc:
            stage = _latest(run, CHECKPOINT_STAGES.get(stem.name, "fit_controller"))
            found.append(Damage(str(stem.with_suffix(".safetensors")), str(exc), stage))
    return found


def repair(run: RunDir, damage: list[Damage]) -> None:
    """Delete damaged files, drop damaged shards from their manifest, un-mark their stages."""
    for item in damage:
        target = Path(item.path)
        if target.name == "manifest.json":
            target.unlink(missing_ok=True)  # its shards are re-listed as they are redone
        elif target.suffix == ".npz":
            store = RolloutStore(target.parent)
            episode = int(target.stem.split("_")[1])
            store.drop(episode)
        else:
            target.unlink(missing_ok=True)
            target.with_suffix(".json").unlink(missing_ok=True)
        run.unmark(item.stage)
        if item.stage.startswith("collect"):
            run.unmark(item.stage.replace("collect", "encode", 1))
