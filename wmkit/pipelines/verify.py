"""Checking a run directory against what its completed stages should have left, and
repairing it.

``find_damage`` knows every file a run should hold given the stages recorded in
``stages.json`` (and the core blocks of its recipe, read without importing anything): the
episodes of each collect and encode stage, the checkpoints of each training stage, the
evaluation and the sweep's temperatures. It reports what is missing, and every checkpoint
(and, ``deep``, every shard) whose checksum does not match.

Repair deletes what is damaged and marks the stages that made it as not done. Every stage is
seeded and resumable, so the next ``wmkit run`` recreates exactly the missing pieces (one
episode, one checkpoint) and nothing else. A repair is crash-safe: its plan is first written
to ``repair.json`` (atomically), then carried out, then ``repair.json`` is deleted. A repair
cut short is finished by the next ``wmkit verify --repair`` or ``wmkit run``, so a run is
either as it was or repaired, never half of each. Every path a repair touches is checked to
lie inside the run directory first.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import yaml

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import CollectConfig, IterateConfig
from wmkit.pipelines.stages.iterate import episode_round, round_episodes
from wmkit.storage import checkpoint
from wmkit.storage.fileio import (
    atomic_write_json,
    is_plain_name,
    read_json,
    read_regular,
    sha256_bytes,
)
from wmkit.storage.rundir import RunDir
from wmkit.storage.spans import parse_wrote
from wmkit.storage.store import RolloutStore
from wmkit.storage.zoo import pipeline_name

# Which stage writes which checkpoint, for runs whose stages.json predates the stages'
# own record of it (``checkpoints`` in each stage's entry, which every run now writes).
LEGACY_CHECKPOINT_STAGES = {
    "vision": "fit_vision",
    "vision_resume": "fit_vision",
    "memory": "fit_memory",
    "memory_resume": "fit_memory",
    "controller": "fit_controller",
    "optimizer_state": "fit_controller",
}
# The checkpoints a completed stage of such a run must have left.
LEGACY_REQUIRED_CHECKPOINTS = {
    "fit_vision": ["vision"],
    "fit_memory": ["memory"],
    "fit_controller": ["controller", "optimizer_state"],
}
SWEEP_CHECKPOINTS = ["controller", "optimizer_state"]
# Stands for "every stage" when stages.json itself is lost.
EVERY_STAGE = "*"


@dataclass
class Damage:
    """A file that is damaged or missing, the stage that makes it, and how to repair it:
    the stages to mark as not done and the other steps (``fix``, see ``_apply``)."""

    path: str
    reason: str
    stage: str
    fix: list[dict[str, Any]] = field(default_factory=list)

    @property
    def remedy(self) -> str:
        if self.stage == EVERY_STAGE:
            return "every stage is run again, resuming from the files kept"
        return f"made by stage {self.stage}" if self.stage else "no stage remakes it"


def _rel(run: RunDir, path: Path) -> str:
    return Path(path).relative_to(run.root).as_posix()


def _delete(run: RunDir, *paths: Path) -> list[dict[str, Any]]:
    return [{"delete": _rel(run, p)} for p in paths]


def _layout(run: RunDir) -> tuple[Any, Damage | None]:
    """The core blocks of the run's recipe (collect and iterate), read without importing
    any plugin: enough to know which episodes each stage collects."""
    try:
        data = yaml.safe_load(read_regular(run.recipe_path))
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        layout = SimpleNamespace(
            collect=CollectConfig.model_validate(data.get("collect") or {}),
            iterate=IterateConfig.model_validate(data.get("iterate") or {}),
            pipeline=pipeline_name(data),
        )
        return layout, None
    except (WmkitError, yaml.YAMLError, ValueError) as exc:
        reason = f"unreadable ({' '.join(str(exc).split())[:200]}); repair cannot remake it"
        return None, Damage(str(run.recipe_path), reason, "")


def _latest(done: dict[str, Any], stage: str) -> str:
    """The last round's stage that rewrote this checkpoint (``iterate.rounds``), or ``stage``."""
    rounds = []
    for name in done:
        tail = name[len(f"{stage}_round") :] if name.startswith(f"{stage}_round") else ""
        if tail.isdigit():
            rounds.append(int(tail))
    return f"{stage}_round{max(rounds)}" if rounds else stage


# The stage that wrote a store's episodes in runs whose records predate ``wrote``.
LEGACY_STORE_STAGES = {"rollouts": "collect", "latents": "encode"}


def _legacy_owner(layout: Any, stage: str, episode: int) -> str:
    """For a run whose stages.json predates ``wrote``: ``collect`` (or ``encode``) for the
    random rollouts, a later round's for those its agent played."""
    r = 1 if layout is None else episode_round(layout, episode)
    return stage if r == 1 else f"{stage}_round{r}"


def _legacy_owed(layout: Any, done: dict[str, Any], stage: str) -> list[tuple[str, range]]:
    """(stage, the episodes it must have left), from the recipe's layout, for such a run."""
    if layout is None:
        return []
    out = [(stage, range(layout.collect.episodes))] if stage in done else []
    for r in range(2, layout.iterate.rounds + 1):
        if f"{stage}_round{r}" in done:
            out.append((f"{stage}_round{r}", round_episodes(layout, r)))
    return out


def _claims(run: RunDir, done: dict[str, Any]) -> tuple[dict[str, list], list[Damage]] | None:
    """Per store, (stage, episodes) for what each completed stage recorded writing
    (``wrote``), and a Damage for each record whose claim is unreadable; None for a run whose
    records predate ``wrote`` (its recipe's layout then says who wrote what)."""
    if not done or any(not isinstance(r, dict) or "wrote" not in r for r in done.values()):
        return None
    claims: dict[str, list[tuple[str, range]]] = {}
    found = []
    for stage, record in done.items():
        try:
            for store, spans in parse_wrote(record["wrote"]).items():
                claims.setdefault(store, []).extend((stage, r) for r in spans)
        except ValueError as exc:
            reason = f"{stage}'s record of the episodes it wrote is damaged ({exc})"
            found.append(Damage(str(run.stages_path), reason, stage))
    return claims, found


def _stores(run: RunDir, layout: Any, done: dict[str, Any], deep: bool) -> list[Damage]:
    """Missing and (``deep``) damaged episodes, each charged to the stage that writes it. An
    episode made from a damaged one (its latents) is made again too: redoing a round's
    episode replays it with the agent now in the checkpoints, so it is replaced, not
    restored, and what was encoded from it no longer matches."""
    recorded = _claims(run, done)
    found = recorded[1] if recorded else []
    bad: set[int] = set()  # rollouts episodes lost or damaged, whose latents are remade
    for name, folder in run.shard_stores().items():
        legacy = LEGACY_STORE_STAGES[name]
        if recorded is None:
            owed = _legacy_owed(layout, done, legacy)
        else:
            owed = recorded[0].get(name, [])

        def owner(episode: int, owed=owed, legacy=legacy) -> str:
            if recorded is None:
                return _legacy_owner(layout, legacy, episode)
            return next((stage for stage, r in owed if episode in r), "")

        manifest = folder / "manifest.json"
        if not manifest.exists() and not manifest.is_symlink():
            for stage in dict.fromkeys(stage for stage, _ in owed):
                found.append(Damage(str(manifest), f"missing although {stage} is done", stage))
            if name == "rollouts":
                bad.update(e for _, r in owed for e in r)
            continue
        try:
            store = RolloutStore(folder)
        except WmkitError as exc:
            reason = str(exc).removeprefix(f"{manifest}: ").split("; run ")[0]
            stages = list(dict.fromkeys(stage for stage, _ in owed)) or [legacy]
            fix = _delete(run, manifest)
            found += [Damage(str(manifest), reason, stage, fix) for stage in stages]
            if name == "rollouts":
                bad.update(e for _, r in owed for e in r)
            continue
        for stage, episodes in owed:
            for episode in episodes:
                if not store.has(episode):
                    path = folder / f"episode_{episode:06d}.npz"
                    reason = f"missing from the manifest although {stage} is done"
                    found.append(Damage(str(path), reason, stage))
                    if name == "rollouts":
                        bad.add(episode)
        damaged = {info.episode: info for info in store.verify()} if deep else {}
        if name == "latents":
            present = {info.episode: info for info in store.infos()}
            damaged.update({e: present[e] for e in bad - set(damaged) if e in present})
        for episode, info in sorted(damaged.items()):
            fix = [{"drop": _rel(run, folder), "episode": episode, "file": info.file}]
            reason = (
                "made from a lost or damaged episode of data/rollouts"
                if episode in bad and name == "latents"
                else "missing or checksum mismatch"
            )
            found.append(Damage(str(folder / info.file), reason, owner(episode), fix))
            if name == "rollouts":
                bad.add(episode)
    return found


def _checkpoint_damage(stem: Path) -> str | None:
    weights = stem.with_suffix(".safetensors")
    if not weights.exists() and not weights.is_symlink():
        return "missing"
    try:
        checkpoint.load_tensors(stem)
    except WmkitError as exc:
        return str(exc)
    return None


def _next_stage(layout: Any, done: dict[str, Any]) -> str | None:
    """The stage the next ``wmkit run`` starts with, in the order the run's pipeline gives
    (``Pipeline.stage_order``); None when every one is done, or when the pipeline is not
    installed or cannot tell its order without the recipe's plugins."""
    if layout is None:
        return None
    registry = get_registry(())  # the installed pipelines; never the recipe's own modules
    if layout.pipeline not in registry.components["pipeline"]:
        return None
    order = registry.get("pipeline", layout.pipeline).stage_order(layout)
    return next((name for name in order or () if name not in done), None)


def _writers(done: dict[str, Any]) -> dict[str, str]:
    """The last completed stage that wrote each checkpoint, from the stages' own records
    (``checkpoints`` in stages.json; plain names only)."""
    writers: dict[str, str] = {}
    records = [(r.get("finished"), name, r.get("checkpoints")) for name, r in done.items()]
    for _, name, stems in sorted(
        (r for r in records if isinstance(r[0], (int, float))), key=lambda r: r[0]
    ):
        for stem in stems if isinstance(stems, list) else []:
            if is_plain_name(stem):
                writers[stem] = name
    return writers


def _checkpoints(run: RunDir, layout: Any, done: dict[str, Any]) -> list[Damage]:
    found = []
    stems = {p.with_suffix("").name for p in run.checkpoints.glob("*.safetensors")}
    upcoming = _next_stage(layout, done) or ""
    writers = _writers(done)
    required = {stem: stage for stem, stage in writers.items() if not stem.endswith("_resume")}
    for stage, names in LEGACY_REQUIRED_CHECKPOINTS.items():
        if _latest(done, stage) in done:
            required.update({n: _latest(done, stage) for n in names if n not in writers})
    for name, stage in required.items():
        # Needed once the stage that wrote it is done, unless that stage's next round is
        # what the next run does first: it writes the checkpoint again before any use. (A
        # ``_resume`` checkpoint is optional: losing one only costs its stage's redo.)
        if not upcoming.startswith(stage.split("_round")[0]):
            stems.add(name)
    for name in sorted(stems):
        stem = run.checkpoints / name
        reason = _checkpoint_damage(stem)
        if reason is None:
            continue
        stage = writers.get(name) or _latest(
            done, LEGACY_CHECKPOINT_STAGES.get(name, "fit_controller")
        )
        if reason == "missing":
            reason = f"missing although {stage} is done"
        weights, info = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        found.append(Damage(str(weights), reason, stage, _delete(run, weights, info)))
    return found


def _evaluation(run: RunDir, done: dict[str, Any]) -> list[Damage]:
    record = done.get("evaluate")
    if record is None:
        return []
    fix = _delete(run, run.eval_path)
    if not run.eval_path.exists() and not run.eval_path.is_symlink():
        return [Damage(str(run.eval_path), "missing although evaluate is done", "evaluate", fix)]
    try:
        data = read_regular(run.eval_path)
    except WmkitError as exc:
        return [Damage(str(run.eval_path), str(exc), "evaluate", fix)]
    if "sha256" in record:
        good = sha256_bytes(data) == record["sha256"]
    else:  # written before the stage recorded a checksum: it must at least parse and agree
        try:
            good = read_json(run.eval_path).get("mean") == record.get("mean")
        except (WmkitError, AttributeError):
            good = False
    if good:
        return []
    return [Damage(str(run.eval_path), "checksum mismatch", "evaluate", fix)]


def _sweep(run: RunDir, done: dict[str, Any]) -> list[Damage]:
    found = []
    results_path = run.sweep / "results.json"
    record = done.get("temperature_sweep") or {}
    swept = [str(k) for k in record.get("swept", [])] if isinstance(record, dict) else []
    results: dict[str, Any] = {}
    if results_path.exists() or results_path.is_symlink() or swept:
        try:
            results = read_json(results_path)
            if not isinstance(results, dict):
                raise WmkitError(f"{results_path}: damaged (not a mapping)")
        except WmkitError as exc:
            found.append(
                Damage(str(results_path), str(exc), "temperature_sweep", _delete(run, results_path))
            )
            results = {}
        else:
            for key in swept:
                if key not in results:
                    reason = f"temperature {key} missing although temperature_sweep is done"
                    found.append(Damage(str(results_path), reason, "temperature_sweep"))
    folders = {p.name[len("tau_") :]: p for p in run.sweep.glob("tau_*") if p.is_dir()}
    for key in swept:
        folders.setdefault(key, run.sweep / f"tau_{key}")
    for key, folder in sorted(folders.items()):
        forget = [{"forget_temperature": key}]
        stems = {p.with_suffix("").name for p in folder.glob("*.safetensors")}
        if key in results or key in swept:
            stems.update(SWEEP_CHECKPOINTS)
        for name in sorted(stems):
            reason = _checkpoint_damage(folder / name)
            if reason is not None:
                weights = (folder / name).with_suffix(".safetensors")
                fix = forget + _delete(run, weights, weights.with_suffix(".json"))
                found.append(Damage(str(weights), reason, "temperature_sweep", fix))
        budget = folder / "budget.json"
        if budget.exists() or budget.is_symlink():
            try:
                read_json(budget)
            except WmkitError as exc:
                found.append(
                    Damage(
                        str(budget), str(exc), "temperature_sweep", forget + _delete(run, budget)
                    )
                )
    return found


def find_damage(run: RunDir, deep: bool = True) -> list[Damage]:
    """What is damaged or missing in ``run``. Checkpoints (a few files) are always loaded and
    checked; ``deep`` also checks every shard's checksum, which ``wmkit run`` leaves to the
    stages that read them (a paper-scale run has 10,000 of them)."""
    found = []
    layout, bad_recipe = _layout(run)
    if bad_recipe is not None:
        found.append(bad_recipe)
    try:
        done = run.stages()
    except WmkitError as exc:
        reason = str(exc).split("; run ")[0].removeprefix(f"{run.stages_path}: ")
        fix = _delete(run, run.stages_path)
        found.append(Damage(str(run.stages_path), reason, EVERY_STAGE, fix))
        done = {}
    found += _stores(run, layout, done, deep)
    found += _checkpoints(run, layout, done)
    found += _evaluation(run, done)
    found += _sweep(run, done)
    return found


def repair(run: RunDir, damage: list[Damage]) -> None:
    """Write the repair's plan to ``repair.json``, then carry it out (``finish_repair``)."""
    unfixable = [d for d in damage if not d.stage]
    if unfixable:
        raise WmkitError(
            "\n".join(f"{d.path}: {d.reason}" for d in unfixable)
            + f"\n{run.root}: repair cannot go on without it; nothing was changed"
        )
    unmark = list(dict.fromkeys(item.stage for item in damage))
    actions = [action for item in damage for action in item.fix]
    atomic_write_json(run.repair_path, {"version": 1, "unmark": unmark, "actions": actions})
    finish_repair(run)


def finish_repair(run: RunDir) -> bool:
    """Carry out the plan in ``repair.json``, if there is one, and delete it. Every step can
    be done twice, so a repair cut short at any point is finished by calling this again.
    The stages are marked as not done first: a stage is never recorded as done while its
    files are being deleted."""
    if not run.repair_path.exists() and not run.repair_path.is_symlink():
        return False
    plan = read_json(run.repair_path)
    if (
        not isinstance(plan, dict)
        or not isinstance(plan.get("unmark"), list)
        or not isinstance(plan.get("actions"), list)
        or not all(isinstance(a, dict) for a in plan["actions"])
    ):
        raise WmkitError(f"{run.repair_path}: damaged repair plan; delete it and run verify again")
    actions = plan["actions"]
    if EVERY_STAGE in plan["unmark"]:
        _apply(run, {"delete": _rel(run, run.stages_path)})
    else:
        run.unmark(*[str(name) for name in plan["unmark"]])
    for action in actions:
        _apply(run, action)
    run.repair_path.unlink()
    return True


def _within(run: RunDir, rel: Any) -> Path:
    """``run.root / rel`` for a relative path whose folder lies inside the run directory
    (links followed); a plan that points elsewhere is refused."""
    parts = PurePosixPath(rel).parts if isinstance(rel, str) else ()
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("", ".", "..") for p in parts):
        raise WmkitError(f"{run.repair_path}: {rel!r} is not a path inside the run; refused")
    path = run.root.joinpath(*parts)
    if not path.parent.resolve().is_relative_to(run.root.resolve()):
        raise WmkitError(f"{path}: leads outside {run.root}; refused")
    return path


def _apply(run: RunDir, action: dict[str, Any]) -> None:
    if "delete" in action:
        path = _within(run, action["delete"])
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    elif "drop" in action:
        folder = _within(run, action["drop"])
        if folder not in (run.rollouts, run.latents) or not is_plain_name(action.get("file")):
            raise WmkitError(f"{run.repair_path}: {action!r} is not a shard of this run")
        if (folder / "manifest.json").exists():
            RolloutStore(folder).drop(int(action["episode"]))
        (folder / action["file"]).unlink(missing_ok=True)  # done already, unless cut short
    elif "forget_temperature" in action:
        results_path = run.sweep / "results.json"
        if results_path.exists():
            results = read_json(results_path)
            if isinstance(results, dict) and results.pop(str(action["forget_temperature"]), None):
                atomic_write_json(results_path, results)
    else:
        raise WmkitError(f"{run.repair_path}: unknown repair step {action!r}")
