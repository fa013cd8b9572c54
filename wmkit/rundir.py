"""A run directory: where every stage writes, and the record of which stages are done."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from wmkit.errors import WmkitError
from wmkit.fileio import atomic_write_json, atomic_write_text
from wmkit.recipe import Recipe, registry_for, resolve_recipe, without_run_settings


def _current_identity(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored recipe read through today's models, so that a run made before a component
    gained an option (with its default) still resumes; as stored if it no longer validates."""
    try:
        return resolve_recipe(stored, registry_for(stored)).identity()
    except WmkitError:
        return without_run_settings(stored)


class RunDir:
    """Paths of a run and its ``stages.json``: a stage listed there is complete."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.recipe_path = self.root / "recipe.yaml"
        self.rollouts = self.root / "data" / "rollouts"
        self.latents = self.root / "data" / "latents"
        self.checkpoints = self.root / "checkpoints"
        self.metrics = self.root / "metrics"
        self.plots = self.root / "plots"
        self.videos = self.root / "videos"
        self.tensorboard = self.root / "tensorboard"
        self.eval_path = self.root / "eval.json"
        self.stages_path = self.root / "stages.json"

    def init(self, recipe: Recipe) -> None:
        """Create the run, or check that an existing one holds the same recipe."""
        wanted = recipe.identity()
        if self.recipe_path.exists():
            try:
                have = yaml.safe_load(self.recipe_path.read_text())
            except yaml.YAMLError:
                have = None
            if isinstance(have, dict):
                have = _current_identity(have)
            if have != wanted:
                raise WmkitError(
                    f"{self.root}: this run directory holds a different recipe; "
                    f"choose another --out, or delete it to start over"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe_path, yaml.safe_dump(recipe.to_dict(), sort_keys=False))

    def stages(self) -> dict[str, Any]:
        if not self.stages_path.exists():
            return {}
        return json.loads(self.stages_path.read_text())

    def unmark(self, stage: str) -> None:
        """Make the next ``wmkit run`` do ``stage`` again (it resumes from what is kept)."""
        stages = self.stages()
        if stages.pop(stage, None) is not None:
            atomic_write_json(self.stages_path, stages)

    def mark_done(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
        stages = self.stages()
        stages[stage] = {**summary, "seconds": round(seconds, 2), "finished": time.time()}
        atomic_write_json(self.stages_path, stages)


def latest_run(base: Path = Path("runs")) -> Path:
    """The most recently changed run under ``base`` (for commands given no --checkpoint)."""
    runs = [p for p in base.glob("*") if (p / "recipe.yaml").exists()] if base.is_dir() else []
    if not runs:
        raise WmkitError(f"{base}: no runs found; pass --checkpoint RUN_DIR")
    return max(runs, key=lambda p: p.stat().st_mtime)
