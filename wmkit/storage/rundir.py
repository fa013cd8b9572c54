"""A run directory: where every stage writes, and the record of which stages are done."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from wmkit.core.errors import WmkitError
from wmkit.core.recipe import Recipe, registry_for, resolve_recipe, without_run_settings
from wmkit.storage.fileio import (
    DISK_ERRORS,
    TMP_PREFIX,
    TMP_SUFFIX,
    atomic_write_json,
    atomic_write_text,
    disk_error,
    read_json,
    read_regular,
)
from wmkit.storage.spans import parse_wrote, to_spans
from wmkit.storage.store import RolloutStore

# Folders that commands other than ``wmkit run`` write into while a run may be going on.
_NOT_CLEANED = ("evals", "videos")


def _current_identity(stored: dict[str, Any], trusted: list[str]) -> dict[str, Any]:
    """A stored recipe read through today's models, so that a run made before a component
    gained an option (with its default) still resumes; as stored if it no longer validates.
    Its ``plugins:`` are imported only when they are among ``trusted`` (the user's own
    recipe's): a run directory from elsewhere never runs code by being compared."""
    modules = stored.get("plugins") or []
    if not isinstance(modules, list) or not set(modules) <= set(trusted):
        return without_run_settings(stored)
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
        self.sweep = self.root / "sweep"
        self.lock_path = self.root / ".wmkit.lock"
        self.repair_path = self.root / "repair.json"

    def init(self, recipe: Recipe) -> None:
        """Create the run, or check that an existing one holds the same recipe."""
        wanted = recipe.identity()
        if self.recipe_path.exists() or self.recipe_path.is_symlink():
            try:
                have = yaml.safe_load(read_regular(self.recipe_path))
            except (yaml.YAMLError, WmkitError):
                have = None
            if isinstance(have, dict):
                have = _current_identity(have, recipe.plugins)
            if have != wanted:
                raise WmkitError(
                    f"{self.root}: this run directory holds a different recipe; "
                    f"choose another --out, or delete it to start over"
                )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe_path, yaml.safe_dump(recipe.to_dict(), sort_keys=False))

    def stages(self) -> dict[str, Any]:
        """The completed stages; a damaged ``stages.json`` is an error naming the cure."""
        if not self.stages_path.exists() and not self.stages_path.is_symlink():
            return {}
        try:
            stages = read_json(self.stages_path)
        except WmkitError as exc:
            raise WmkitError(
                f"{exc}; run 'wmkit verify --checkpoint {self.root} --repair'"
            ) from None
        if not isinstance(stages, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in stages.items()
        ):
            raise WmkitError(
                f"{self.stages_path}: damaged (not a mapping of stage records); run "
                f"'wmkit verify --checkpoint {self.root} --repair'"
            )
        return stages

    def unmark(self, *names: str) -> None:
        """Make the next ``wmkit run`` do these stages again (each resumes from what is kept),
        in one write of ``stages.json``."""
        stages = self.stages()
        dropped = [name for name in names if stages.pop(name, None) is not None]
        if dropped:
            atomic_write_json(self.stages_path, stages)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for this process (``wmkit run``, ``verify --repair``).

        An ``fcntl`` lock on ``.wmkit.lock``: the kernel drops it when the process ends,
        however it ends, so it never goes stale. The file says who holds it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.lock_path, flags, 0o666)
        except OSError as exc:
            if exc.errno in DISK_ERRORS:
                raise disk_error(self.lock_path, exc) from None
            if exc.errno == errno.ELOOP:
                raise WmkitError(f"{self.lock_path}: is a link; refused") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise WmkitError(f"{self.lock_path}: not a regular file; refused")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise WmkitError(
                    f"{self.root}: in use by another wmkit process (pid {holder}); wait for "
                    "it to finish or stop it, then run the same command again"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

    def remove_temporary_files(self) -> list[Path]:
        """Delete what killed atomic writes left behind (``.NAME.RANDOM.tmp``). Call it only
        while holding ``lock``: no other ``wmkit run`` is writing then."""
        removed = []
        for folder, dirs, files in os.walk(self.root):
            if Path(folder) == self.root:
                dirs[:] = [d for d in dirs if d not in _NOT_CLEANED]
            for name in files:
                if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                    path = Path(folder) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    def checkpoint_stamps(self) -> dict[str, tuple[int, int]]:
        """(mtime in ns, size) of every checkpoint's weights, by stem: compared before and
        after a stage, they say which checkpoints the stage wrote."""
        stamps = {}
        for path in self.checkpoints.glob("*.safetensors") if self.checkpoints.is_dir() else []:
            stat = path.lstat()
            stamps[path.with_suffix("").name] = (stat.st_mtime_ns, stat.st_size)
        return stamps

    def shard_stores(self) -> dict[str, Path]:
        """The run's episode stores by name: what stages.json's ``wrote`` records refer to."""
        return {"rollouts": self.rollouts, "latents": self.latents}

    def episodes_written(self, stage: str) -> dict[str, list[list[int]]]:
        """The episodes now in each store that no other completed stage claims: those
        ``stage`` wrote, in this process or in one killed before the stage was done."""
        claimed: dict[str, set[int]] = {}  # store -> episodes the other stages recorded
        for other, record in self.stages().items():
            if other == stage or not isinstance(record, dict) or "wrote" not in record:
                continue
            try:
                wrote = parse_wrote(record["wrote"])
            except ValueError:  # a damaged record claims nothing; verify names it
                continue
            for name, spans in wrote.items():
                claimed.setdefault(name, set()).update(e for span in spans for e in span)
        out: dict[str, list[list[int]]] = {}
        for name, folder in self.shard_stores().items():
            if not (folder / "manifest.json").exists():
                continue
            theirs = claimed.get(name, set())
            mine = [info.episode for info in RolloutStore(folder).infos()]
            out[name] = to_spans(e for e in mine if e not in theirs)
        return out

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
