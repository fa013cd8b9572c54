"""Score files: every evaluation of a run, episode by episode, in one schema (docs/scores.md).

``RUN/scores.json`` holds what a third party needs to recompute every figure of
``wmkit compare`` and ``wmkit report``: who the run is (recipe hash, pipeline seed, components,
device, versions), each evaluation's per-episode returns, seeds and lengths, and the
controller's fitness per generation. Each evaluation replaces the entry of the same key, so
running the same ``wmkit eval`` twice leaves one entry. ``eval.json`` and ``evals/*.json`` are
unchanged; this file is written next to them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import atomic_write_json, read_json, read_regular
from wmkit.storage.jsonl import read_metrics
from wmkit.storage.rundir import RunDir

SCHEMA = "wmkit-scores/1"
FILENAME = "scores.json"
# The evaluation that the pipeline's own evaluate stage writes.
PIPELINE_EVALUATION = "evaluate"


def group_digest(recipe_data: dict[str, Any]) -> str:
    """A hash of what a run computes apart from its pipeline seed: equal for every seed of
    one ``wmkit run --seeds`` group."""
    from wmkit.core.recipe import without_run_settings

    data = {k: v for k, v in without_run_settings(recipe_data).items() if k not in ("seed",)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def run_header(recipe_data: dict[str, Any], recipe_sha256: str) -> dict[str, Any]:
    """Who a run is: enough to tell which runs may be pooled as seeds of one group."""
    from wmkit.core.protocols import ROLES
    from wmkit.storage.checkpoint import package_versions

    def component(role: str) -> str:
        block = recipe_data.get(role)
        return block.get("name", "?") if isinstance(block, dict) else str(block)

    optimizer = recipe_data.get("optimizer")
    return {
        "name": recipe_data.get("name"),
        "seed": recipe_data.get("seed"),
        "recipe_sha256": recipe_sha256,
        "group_sha256": group_digest(recipe_data),
        "env": env.get("id") if isinstance(env := recipe_data.get("env"), dict) else None,
        # Every role the recipe fills but the executor: where rollouts run is not the agent.
        "components": {r: component(r) for r in ROLES if r in recipe_data and r != "executor"},
        "train_in": optimizer.get("train_in", "real") if isinstance(optimizer, dict) else "real",
        "device": recipe_data.get("device"),
        "versions": package_versions(),
    }


def episode_rows(
    returns: list[float], steps: list[int], seeds: list[int] | None = None
) -> list[dict[str, Any]]:
    seeds = seeds if seeds is not None else [None] * len(returns)
    return [
        {"seed": s, "return": round(float(r), 3), "steps": int(n)}
        for s, r, n in zip(seeds, returns, steps)
    ]


def generation_rows(run: RunDir, metrics_name: str = "fit_controller") -> list[dict[str, Any]]:
    """The controller's fitness per generation, from its metrics file."""
    rows = []
    for r in read_metrics(run.metrics / f"{metrics_name}.jsonl"):
        rows.append(
            {
                "generation": r.get("step"),
                "best": r.get("best"),
                "mean": r.get("mean"),
                "worst": r.get("worst"),
                "kept": r.get("kept"),
            }
        )
    return rows


def round_points(run: RunDir) -> list[dict[str, Any]]:
    """Real returns of the kept controller that later rounds of ``iterate`` played, at the
    generation that controller came from (``collect_roundR``'s ``kept_mean_return``)."""
    stages = run.stages()
    points = []
    generations = 0
    for name, record in stages.items():
        if name.startswith("fit_controller") and "generations" in record:
            generations = max(generations, int(record["generations"]))
        if name.startswith("collect_round") and "kept_mean_return" in record:
            points.append(
                {"stage": name, "generation": generations, "mean": record["kept_mean_return"]}
            )
    return points


def read_scores(path: Path) -> dict[str, Any]:
    """A score file, checked against the schema (it may come from someone else's run)."""
    path = Path(path)
    data = read_json(path)  # a regular file inside its folder (``fileio``), valid JSON
    problem = _schema_problem(data)
    if problem:
        raise WmkitError(f"{path}: not a {SCHEMA} score file: {problem}")
    return data


def _schema_problem(data: Any) -> str | None:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return f"'schema' must be {SCHEMA!r}"
    if not isinstance(data.get("run"), dict):
        return "'run' must be an object"
    evaluations = data.get("evaluations")
    if not isinstance(evaluations, dict):
        return "'evaluations' must be an object"
    for key, ev in evaluations.items():
        if not isinstance(ev, dict) or not isinstance(ev.get("episodes"), list):
            return f"evaluations.{key}.episodes must be a list"
        for ep in ev["episodes"]:
            value = ep.get("return") if isinstance(ep, dict) else None
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return f"evaluations.{key}: every episode needs a finite 'return'"
    if not isinstance(data.get("generations", []), list):
        return "'generations' must be a list"
    return None


def _load_or_new(run: RunDir) -> dict[str, Any]:
    path = run.root / FILENAME
    if path.exists() or path.is_symlink():
        try:
            return read_scores(path)
        except WmkitError:
            pass  # a damaged file is rebuilt below from the run's other records
    return build_scores(run)


def record_evaluation(run: RunDir, key: str, evaluation: dict[str, Any]) -> Path:
    """Add (or replace) one evaluation in ``RUN/scores.json`` and refresh the run's header
    and fitness curve. ``evaluation`` has ``where``, ``policy`` and ``episodes``."""
    data = _load_or_new(run)
    data["evaluations"][key] = {**evaluation, "written": round(time.time(), 3)}
    return _write(run, data)


def real_evaluation(
    result: Any,
    device: str,
    controller: str = "checkpoints/controller",
    generation: int | None = None,
) -> dict[str, Any]:
    """An ``EvalResult`` (real episodes) as a score-file evaluation."""
    return {
        "where": "real",
        "policy": result.policy,
        "controller": controller if result.policy == "controller" else None,
        "generation": generation if result.policy == "controller" else None,
        "device": device,
        "episodes": episode_rows(result.returns, result.steps, result.seeds),
    }


def dream_evaluation(
    result: Any,
    temperature: float,
    device: str,
    controller: str = "checkpoints/controller",
    generation: int | None = None,
) -> dict[str, Any]:
    """A ``DreamResult`` (dreamed episodes; they have no environment seed) as an evaluation."""
    returns = result.returns.cpu().tolist()
    steps = result.steps.cpu().tolist()
    return {
        "where": "dream",
        "policy": "controller",
        "controller": controller,
        "generation": generation,
        "temperature": temperature,
        "device": device,
        "episodes": episode_rows(returns, steps),
    }


def _write(run: RunDir, data: dict[str, Any]) -> Path:
    recipe_data = _recipe_data(run)
    data["run"] = run_header(recipe_data, _recipe_sha256(recipe_data))
    data["generations"] = generation_rows(run)
    data["round_points"] = round_points(run)
    path = run.root / FILENAME
    atomic_write_json(path, data)
    return path


def _recipe_data(run: RunDir) -> dict[str, Any]:
    """A run's ``recipe.yaml`` as data: read as every file of a run is, and never imported
    from (its ``plugins:`` are only named in the header, not loaded)."""
    import yaml

    try:
        data = yaml.safe_load(read_regular(run.recipe_path))
    except yaml.YAMLError as exc:
        raise WmkitError(f"{run.recipe_path}: damaged recipe ({exc})") from None
    if not isinstance(data, dict):
        raise WmkitError(f"{run.recipe_path}: damaged recipe (not a mapping)")
    return data


def _recipe_sha256(recipe_data: dict[str, Any]) -> str:
    """The hash that checkpoints record (``Recipe.digest``), from a run's recipe.yaml."""
    from wmkit.core.recipe import without_run_settings

    text = json.dumps(without_run_settings(recipe_data), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build_scores(run: RunDir) -> dict[str, Any]:
    """A score file made from a run's ``eval.json`` and ``evals/*.json`` alone, for runs
    made before score files existed (their dream episodes were not kept)."""
    data: dict[str, Any] = {"schema": SCHEMA, "run": {}, "evaluations": {}, "generations": []}
    sources = [(PIPELINE_EVALUATION, run.eval_path)]
    sources += [(p.stem, p) for p in sorted((run.root / "evals").glob("*.json"))]
    for key, path in sources:
        try:
            saved = read_json(path)
        except WmkitError:
            continue  # missing, damaged, or not a regular file inside the run
        if not isinstance(saved, dict) or not isinstance(saved.get("returns"), list):
            continue  # e.g. the gap tables
        data["evaluations"][key] = {
            "where": "real",
            "policy": saved.get("policy", "controller"),
            "controller": "checkpoints/controller",
            "episodes": episode_rows(saved["returns"], saved["steps"], saved.get("seeds")),
        }
    return data


def scores_of(root: Path) -> dict[str, Any]:
    """The score file of a run directory or a zoo entry; built in memory from ``eval.json``
    for runs made before score files existed."""
    root = Path(root)
    if (root / FILENAME).exists() or (root / FILENAME).is_symlink():
        return read_scores(root / FILENAME)
    run = RunDir(root)
    if not run.recipe_path.exists():
        raise WmkitError(f"{root}: neither a run directory nor a zoo entry (no {FILENAME})")
    data = build_scores(run)
    if not data["evaluations"]:
        raise WmkitError(f"{root}: no evaluation yet; finish 'wmkit run' first")
    recipe_data = _recipe_data(run)
    data["run"] = run_header(recipe_data, _recipe_sha256(recipe_data))
    data["generations"] = generation_rows(run)
    data["round_points"] = round_points(run)
    return data
