"""Zoo entries: a run's trained agent in a folder small enough to commit (``wmkit export``).

An entry holds the checkpoints its pipeline names as its agent (weights only: no data, no
optimizer state): V, M and C for the paper's pipeline, the world model and the actor for the
online one. Beside them: the resolved recipe, where dreams begin (V's start latents, or the
first real observations for a world model that reads observations itself), the run's
scores, and ``entry.json``: the SHA-256 and size of every one of those files. ``wmkit eval``,
``dream`` and ``gap`` accept an entry as ``--checkpoint``.

Schema ``wmkit-zoo/1`` entries hold V, M and C; ``wmkit-zoo/2`` adds ``weights``, the list of
checkpoint names the entry holds. An entry of V, M and C is still written as ``/1``, so that
older wmkit reads it, and both are read.

An entry is someone else's data, and is read as such:

* only the files named here are read, each checked against ``entry.json`` before use;
* a file that is a symbolic link, or resolves outside the entry's folder, is refused;
* its recipe may not name ``plugins:`` modules to import: its components must come from
  installed plugins, and nothing in the entry is ever imported or unpickled.

Commands do not write into an entry: it is copied, verified, into ``runs/zoo/NAME-HASH/``,
an ordinary run directory where their outputs (``evals/``, ``videos/``) go.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from wmkit.core.errors import WmkitError
from wmkit.core.recipe import DEFAULT_PIPELINE
from wmkit.storage.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_regular,
    inside_path,
    json_text,
    read_regular,
    sha256_bytes,
)
from wmkit.storage.rundir import RunDir

SCHEMA = "wmkit-zoo/1"  # V, M and C, with no ``weights`` list
SCHEMA_WEIGHTS = "wmkit-zoo/2"  # any checkpoints, named by ``weights``
SCHEMAS = (SCHEMA, SCHEMA_WEIGHTS)
ENTRY_FILE = "entry.json"
WEIGHTS = ("vision", "memory", "controller")  # what a wmkit-zoo/1 entry holds
# Kept exactly in a float16 export: C's few hundred numbers, an actor's flat parameters.
EXACT = ("controller",)
STARTS = "starts.safetensors"
# Files beside the checkpoints; nothing else in an entry's folder is read.
OTHER_FILES = ("recipe.yaml", "scores.json", "eval.json", STARTS)
FILES = (*OTHER_FILES, *(f"checkpoints/{role}.safetensors" for role in WEIGHTS))
# A checkpoint's name: a plain identifier, so that it can name no other path.
WEIGHT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_WEIGHTS = 16
MAX_START_OBSERVATIONS = 256  # first observations an entry of a world model ships
LIMIT_BYTES = 25 * 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024  # refuse to even hash anything larger
MAX_STARTS = 20_000


def is_entry(path: Path) -> bool:
    return (Path(path) / ENTRY_FILE).is_file()


def pipeline_name(recipe: dict[str, Any]) -> str:
    """The pipeline a raw recipe names (the recipe's default when it names none)."""
    block = recipe.get("pipeline") or DEFAULT_PIPELINE
    return block.get("name", DEFAULT_PIPELINE) if isinstance(block, dict) else block


def weight_files(weights: Sequence[str]) -> list[str]:
    """The entry's file names of the checkpoints ``weights``."""
    return [f"checkpoints/{role}.safetensors" for role in weights]


def export(
    run_root: Path,
    dest: Path,
    dtype: str = "float32",
    weights_of: Callable[[str], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Write ``run_root``'s trained agent into the entry folder ``dest``. ``run_root`` may
    itself be an entry (verified first), so that a committed entry can be re-exported in
    float16 without its run's data. ``weights_of`` names the checkpoints a pipeline's agent
    consists of (empty: the pipeline's runs cannot be exported); the command asks the
    pipeline itself (``Pipeline.zoo_weights``). Without it, the agent is V, M and C."""
    import torch

    from wmkit.storage import checkpoint
    from wmkit.storage.scores import scores_of

    source = read_entry(run_root)[0] if is_entry(run_root) else None
    run = open_entry(run_root) if source is not None else RunDir(run_root)
    if not run.recipe_path.exists():
        raise WmkitError(f"{run_root}: not a wmkit run directory (no recipe.yaml)")
    recipe_bytes = read_regular(run.recipe_path)
    recipe = _recipe(run.recipe_path, recipe_bytes)
    pipeline = pipeline_name(recipe)
    weights = WEIGHTS if weights_of is None else tuple(weights_of(pipeline))
    if not weights:
        raise WmkitError(
            f"{run_root}: pipeline {pipeline!r} names no checkpoints as its agent "
            "(Pipeline.zoo_weights); its runs cannot be exported"
        )
    _check_weight_names(weights, f"{run_root}: pipeline {pipeline!r}")
    for role in weights:
        if not checkpoint.exists(run.checkpoints / role):
            raise WmkitError(f"{run_root}: no trained {role} yet; finish 'wmkit run' first")
    if recipe.get("plugins"):
        raise WmkitError(
            f"{run_root}: its recipe imports plugin modules ({', '.join(recipe['plugins'])}); "
            "a zoo entry imports no code: install those plugins as packages, then remove "
            "'plugins:' from the recipe"
        )
    dest = Path(dest)
    if dest.exists() and not is_entry(dest) and any(dest.iterdir()):
        raise WmkitError(f"{dest}: exists and is not a zoo entry; choose another folder")
    half = {"float32": torch.float32, "float16": torch.float16}[dtype]
    files: dict[str, bytes] = {}
    for role in weights:
        tensors, meta = checkpoint.load_tensors(run.checkpoints / role)
        if role not in EXACT:
            tensors = {
                k: v.to(half) if torch.is_floating_point(v) else v for k, v in tensors.items()
            }
        keep = {k: meta[k] for k in ("role", "component", "options", "recipe_sha256", "seed")}
        keep.update({k: meta[k] for k in ("epoch", "generation", "fitness") if k in meta})
        files[f"checkpoints/{role}.safetensors"] = _safetensors(tensors, {**keep, "dtype": dtype})
    files[STARTS] = _safetensors(_starts(run, run_root), {"role": "starts"})
    files["recipe.yaml"] = recipe_bytes
    scores = scores_of(run.root)
    files["scores.json"] = json_text(scores).encode()
    if run.eval_path.exists():
        files["eval.json"] = read_regular(run.eval_path)
    entry: dict[str, Any] = {
        "schema": SCHEMA if weights == WEIGHTS else SCHEMA_WEIGHTS,
        "name": dest.name,
        "recipe": recipe.get("name"),
        "source_run": str(run.root) if source is None else source.get("source_run"),
        "recipe_sha256": scores["run"].get("recipe_sha256"),
        "dtype": dtype,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": checkpoint.package_versions(),
        "eval": {
            k: v
            for k, v in (_json(files.get("eval.json")) or {}).items()
            if k in ("mean", "std", "min", "max", "episodes", "seeds")
        },
        "files": {
            name: {"sha256": sha256_bytes(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }
    if weights != WEIGHTS:
        entry["weights"] = list(weights)
    if dest.exists():
        for name in [*OTHER_FILES, *weight_files(_entry_weights(dest))]:
            (dest / name).unlink(missing_ok=True)
    for name, data in files.items():
        atomic_write_bytes(dest / name, data)
    atomic_write_json(dest / ENTRY_FILE, entry)
    atomic_write_text(dest / "README.md", _card(entry))
    entry["total_bytes"] = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return entry


def _starts(run: RunDir, run_root: Path) -> dict[str, Any]:
    """Where dreams begin: V's start latents (``mu``, ``logvar``) when the run encoded its
    episodes; else, for a world model that reads observations itself, the first real
    observation of its first episodes (``observations``); from an entry, what it ships."""
    from wmkit.storage.store import RolloutStore

    latents = RolloutStore(run.latents).first_latents(MAX_STARTS) or start_latents_of(run)
    if latents is not None:
        return {"mu": latents[0], "logvar": latents[1]}
    observations = start_observations_of(run)
    if observations is None:
        store = RolloutStore(run.rollouts)
        infos = store.infos()[:MAX_START_OBSERVATIONS]
        if infos:
            observations = np.stack([store.load(i.episode)["frames"][0] for i in infos])
    if observations is None:
        raise WmkitError(f"{run_root}: no stored episodes to take dreams' start states from")
    return {"observations": observations}


def _entry_weights(root: Path) -> tuple[str, ...]:
    """The checkpoints an existing entry at ``root`` lists (V, M and C when unreadable), so
    that a re-export removes exactly the old entry's files."""
    try:
        entry = json.loads(_read_listed(root, ENTRY_FILE))
        return _weights_of_entry(entry, root / ENTRY_FILE)
    except (WmkitError, ValueError, UnicodeDecodeError):
        return WEIGHTS


def _check_weight_names(weights: Sequence[str], where: str) -> None:
    """Checkpoint names become file names inside the entry: plain identifiers, few, unique."""
    bad = [w for w in weights if not isinstance(w, str) or not WEIGHT_NAME.fullmatch(w)]
    if bad or len(set(weights)) != len(weights) or len(weights) > MAX_WEIGHTS:
        raise WmkitError(
            f"{where}: 'weights' must be up to {MAX_WEIGHTS} distinct checkpoint names of "
            f"lower-case letters, digits and '_' (got {list(weights)!r})"
        )


def _weights_of_entry(entry: dict[str, Any], manifest_path: Path) -> tuple[str, ...]:
    """The checkpoints a manifest says its entry holds: V, M and C for ``wmkit-zoo/1``."""
    if entry.get("schema") == SCHEMA:
        if "weights" in entry:
            raise WmkitError(f"{manifest_path}: 'weights' needs schema {SCHEMA_WEIGHTS}")
        return WEIGHTS
    weights = entry.get("weights")
    if not isinstance(weights, list) or not weights:
        raise WmkitError(f"{manifest_path}: 'weights' must list the entry's checkpoints")
    _check_weight_names(weights, str(manifest_path))
    return tuple(weights)


def _safetensors(tensors: dict[str, Any], meta: dict[str, Any]) -> bytes:
    """Bytes of a checkpoint as ``checkpoint`` writes them (checksum in the header)."""
    import tempfile

    from wmkit.storage import checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "x"
        checkpoint.save_tensors(stem, tensors, meta)
        return stem.with_suffix(".safetensors").read_bytes()


def _recipe(path: Path, data: bytes) -> dict[str, Any]:
    """A recipe's YAML as a mapping (``yaml.safe_load``: no tag builds an object)."""
    try:
        recipe = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise WmkitError(f"{path}: not a recipe ({exc})") from None
    if not isinstance(recipe, dict):
        raise WmkitError(f"{path}: not a recipe")
    return recipe


def _json(data: bytes | None) -> Any:
    return json.loads(data) if data else None


def _card(entry: dict[str, Any]) -> str:
    ev = entry.get("eval") or {}
    score = (
        f"{ev['mean']:.1f} ± {ev['std']:.1f} over {ev['episodes']} episodes (seeds from "
        f"{ev['seeds'][0]})"
        if "mean" in ev
        else "not evaluated"
    )
    # A float16 entry carries its run's evaluation, which the float32 weights played.
    which = "" if entry["dtype"] == "float32" else ", with its float32 weights"
    return (
        f"# {entry['name']}\n\n"
        f"The trained {_agent(entry)} of the run `{entry['source_run']}` (recipe "
        f"`{entry['recipe']}`, weights in {entry['dtype']}), exported by `wmkit export`.\n\n"
        f"Its own evaluation: {score}{which}.\n\n"
        "Check it on any seeds, with no data and no training:\n\n"
        f"```sh\nwmkit eval --checkpoint zoo/{entry['name']} --episodes 100\n```\n\n"
        "`entry.json` lists the SHA-256 of every file; `scores.json` has every evaluation "
        "episode by episode (docs/scores.md).\n"
    )


def _agent(entry: dict[str, Any]) -> str:
    """The checkpoints an entry holds, in words for its card."""
    if "weights" not in entry:
        return "V, M and C"
    # Beside V and M, the controller is C; beside a world model, it is the actor.
    names = {"vision": "V", "memory": "M", "controller": "C"}
    if "vision" not in entry["weights"]:
        names["controller"] = "actor"
    words = [names.get(w, w.replace("_", " ")) for w in entry["weights"]]
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]


def _check_inside(root: Path, name: str) -> Path:
    """``root / name``, which must lie inside the entry (``fileio.inside_path``) and, stricter
    than a run directory, pass through no link at all: an entry is committed data."""
    for part in [root / name, *(root / name).parents]:
        if part == root.parent:
            break
        if part.is_symlink():
            raise WmkitError(f"{root}: {name}: is a symbolic link; a zoo entry may hold none")
    try:
        return inside_path(root, name)
    except WmkitError:
        raise WmkitError(f"{root}: {name}: resolves outside the entry's folder") from None


def _read_listed(root: Path, name: str, size: Any = None) -> bytes:
    """The bytes of ``root / name``: a regular file inside the entry (never a device, a pipe
    or a link), no larger than ``MAX_FILE_BYTES`` and, when ``size`` is given, of that size;
    all checked before anything is read."""
    path = _check_inside(root, name)
    if not path.exists():
        raise WmkitError(f"{root}: {name}: listed in {ENTRY_FILE} but missing")
    check_regular(path)
    actual = path.stat().st_size
    if actual > MAX_FILE_BYTES or (size is not None and actual != size):
        raise WmkitError(f"{root}: {name}: size does not match {ENTRY_FILE}")
    return read_regular(path)


def read_entry(root: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the bytes of every file it lists, each verified."""
    root = Path(root)
    manifest_path = root / ENTRY_FILE
    try:
        entry = json.loads(_read_listed(root, ENTRY_FILE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WmkitError(f"{manifest_path}: unreadable zoo manifest ({exc})") from None
    if not isinstance(entry, dict) or entry.get("schema") not in SCHEMAS:
        raise WmkitError(f"{manifest_path}: not a {' or '.join(SCHEMAS)} manifest")
    listed = entry.get("files")
    if not isinstance(listed, dict):
        raise WmkitError(f"{manifest_path}: 'files' must map file names to checksums")
    needed = ["recipe.yaml", STARTS, *weight_files(_weights_of_entry(entry, manifest_path))]
    allowed = [*OTHER_FILES, *needed[2:]]
    unknown = sorted(set(listed) - set(allowed))
    if unknown:
        raise WmkitError(f"{manifest_path}: lists files a zoo entry does not hold: {unknown}")
    data: dict[str, bytes] = {}
    for name in allowed:
        if name not in listed:
            if name in needed:
                raise WmkitError(f"{manifest_path}: does not list {name}")
            continue
        want = listed[name]
        if not isinstance(want, dict) or not isinstance(want.get("bytes"), int):
            raise WmkitError(f"{root}: {name}: size does not match {ENTRY_FILE}")
        content = _read_listed(root, name, want["bytes"])
        if sha256_bytes(content) != want.get("sha256"):
            raise WmkitError(f"{root}: {name}: checksum mismatch; the entry is damaged")
        data[name] = content
    return entry, data


def open_entry(root: Path, base: Path = Path("runs") / "zoo") -> RunDir:
    """Verify the entry at ``root`` and lay it out as a run directory under ``base``, where
    commands may write; returns that run directory."""
    entry, data = read_entry(root)
    recipe = _recipe(Path(root) / "recipe.yaml", data["recipe.yaml"])
    if recipe.get("plugins"):
        raise WmkitError(
            f"{root}: its recipe names plugin modules to import ({recipe['plugins']}); a zoo "
            "entry is data and imports no code: install the plugins as packages instead"
        )
    digest = sha256_bytes(json.dumps(entry["files"], sort_keys=True).encode())[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(root).resolve().name)
    run = RunDir(Path(base) / f"{name}-{digest}")
    if not (run.root / ENTRY_FILE).is_file():
        if run.root.exists():
            shutil.rmtree(run.root)  # a copy cut short: start again
        for file_name, content in data.items():
            atomic_write_bytes(run.root / file_name, content)
        # Written last: its presence says the copy is whole.
        atomic_write_json(run.root / ENTRY_FILE, entry)
    else:
        # A copy left by an earlier command is verified too: any file that is not the
        # entry's (edited, truncated, replaced by a link) is written again from the entry.
        for file_name, content in data.items():
            path = run.root / file_name
            same = (
                not path.is_symlink()
                and path.is_file()
                and path.stat().st_size == len(content)  # read no more than the entry's size
                and path.read_bytes() == content
            )
            if not same:
                path.unlink(missing_ok=True)
                atomic_write_bytes(path, content)
    return run


def start_observations_of(run: RunDir) -> np.ndarray | None:
    """The first real observations an entry of a world model ships (dreams start from the
    world model's state after one of them), or None for a run directory with its data or
    an entry of V's latents."""
    path = run.root / STARTS
    if not path.is_file() or run.rollouts.joinpath("manifest.json").is_file():
        return None
    from wmkit.storage import checkpoint

    tensors, _ = checkpoint.load_tensors(path.with_suffix(""))
    return np.asarray(tensors["observations"]) if "observations" in tensors else None


def start_latents_of(run: RunDir) -> tuple[np.ndarray, np.ndarray] | None:
    """The start latents an entry ships, or None for a run directory with its data."""
    path = run.root / STARTS
    if not path.is_file() or run.latents.joinpath("manifest.json").is_file():
        return None
    from wmkit.storage import checkpoint

    tensors, _ = checkpoint.load_tensors(path.with_suffix(""))
    if "mu" not in tensors:
        return None
    return np.asarray(tensors["mu"]), np.asarray(tensors["logvar"])
