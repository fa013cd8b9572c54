"""Zoo entries: a run's trained agent in a folder small enough to commit (``wmkit export``).

An entry holds V, M and C (weights only: no data, no optimizer state), the resolved recipe,
the start latents that dreams begin from, the run's scores, and ``entry.json``: the SHA-256
and size of every one of those files. ``wmkit eval``, ``dream`` and ``gap`` accept an entry
as ``--checkpoint``.

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
import shutil
import time
from collections.abc import Callable
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

SCHEMA = "wmkit-zoo/1"
ENTRY_FILE = "entry.json"
WEIGHTS = ("vision", "memory", "controller")
STARTS = "starts.safetensors"
# The files an entry may hold; nothing else in its folder is read.
FILES = (
    "recipe.yaml",
    "scores.json",
    "eval.json",
    STARTS,
    *(f"checkpoints/{role}.safetensors" for role in WEIGHTS),
)
LIMIT_BYTES = 25 * 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024  # refuse to even hash anything larger
MAX_STARTS = 20_000


def is_entry(path: Path) -> bool:
    return (Path(path) / ENTRY_FILE).is_file()


def pipeline_name(recipe: dict[str, Any]) -> str:
    """The pipeline a raw recipe names (the recipe's default when it names none)."""
    block = recipe.get("pipeline") or DEFAULT_PIPELINE
    return block.get("name", DEFAULT_PIPELINE) if isinstance(block, dict) else block


def export(
    run_root: Path,
    dest: Path,
    dtype: str = "float32",
    exportable: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Write ``run_root``'s trained agent into the entry folder ``dest``. ``run_root`` may
    itself be an entry (verified first), so that a committed entry can be re-exported in
    float16 without its run's data. ``exportable`` says whether a pipeline's agent is what
    an entry holds (V, M and C); the command asks the pipeline itself
    (``Pipeline.exportable``)."""
    import torch

    from wmkit.storage import checkpoint
    from wmkit.storage.scores import scores_of
    from wmkit.storage.store import RolloutStore

    source = read_entry(run_root)[0] if is_entry(run_root) else None
    run = open_entry(run_root) if source is not None else RunDir(run_root)
    if not run.recipe_path.exists():
        raise WmkitError(f"{run_root}: not a wmkit run directory (no recipe.yaml)")
    recipe_bytes = read_regular(run.recipe_path)
    recipe = _recipe(run.recipe_path, recipe_bytes)
    pipeline = pipeline_name(recipe)
    if exportable is not None and not exportable(pipeline):
        raise WmkitError(
            f"{run_root}: an entry holds the paper pipeline's V, M and C; pipeline "
            f"{pipeline!r} runs cannot be exported yet"
        )
    for role in WEIGHTS:
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
    for role in WEIGHTS:
        tensors, meta = checkpoint.load_tensors(run.checkpoints / role)
        if role != "controller":  # C is a few hundred numbers: kept exactly
            tensors = {
                k: v.to(half) if torch.is_floating_point(v) else v for k, v in tensors.items()
            }
        keep = {k: meta[k] for k in ("role", "component", "options", "recipe_sha256", "seed")}
        keep.update({k: meta[k] for k in ("epoch", "generation", "fitness") if k in meta})
        files[f"checkpoints/{role}.safetensors"] = _safetensors(tensors, {**keep, "dtype": dtype})
    starts = RolloutStore(run.latents).first_latents(MAX_STARTS) or start_latents_of(run)
    if starts is None:
        raise WmkitError(f"{run_root}: no encoded episodes to take start latents from")
    files[STARTS] = _safetensors({"mu": starts[0], "logvar": starts[1]}, {"role": "starts"})
    files["recipe.yaml"] = recipe_bytes
    scores = scores_of(run.root)
    files["scores.json"] = json_text(scores).encode()
    if run.eval_path.exists():
        files["eval.json"] = read_regular(run.eval_path)
    entry = {
        "schema": SCHEMA,
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
    if dest.exists():
        for name in FILES:
            (dest / name).unlink(missing_ok=True)
    for name, data in files.items():
        atomic_write_bytes(dest / name, data)
    atomic_write_json(dest / ENTRY_FILE, entry)
    atomic_write_text(dest / "README.md", _card(entry))
    entry["total_bytes"] = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return entry


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
        f"The trained V, M and C of the run `{entry['source_run']}` (recipe "
        f"`{entry['recipe']}`, weights in {entry['dtype']}), exported by `wmkit export`.\n\n"
        f"Its own evaluation: {score}{which}.\n\n"
        "Check it on any seeds, with no data and no training:\n\n"
        f"```sh\nwmkit eval --checkpoint zoo/{entry['name']} --episodes 100\n```\n\n"
        "`entry.json` lists the SHA-256 of every file; `scores.json` has every evaluation "
        "episode by episode (docs/scores.md).\n"
    )


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
    if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
        raise WmkitError(f"{manifest_path}: not a {SCHEMA} manifest")
    listed = entry.get("files")
    if not isinstance(listed, dict):
        raise WmkitError(f"{manifest_path}: 'files' must map file names to checksums")
    unknown = sorted(set(listed) - set(FILES))
    if unknown:
        raise WmkitError(f"{manifest_path}: lists files a zoo entry does not hold: {unknown}")
    needed = ["recipe.yaml", STARTS, *(f"checkpoints/{r}.safetensors" for r in WEIGHTS)]
    data: dict[str, bytes] = {}
    for name in FILES:
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
    return run


def start_latents_of(run: RunDir) -> tuple[np.ndarray, np.ndarray] | None:
    """The start latents an entry ships, or None for a run directory with its data."""
    path = run.root / STARTS
    if not path.is_file() or run.latents.joinpath("manifest.json").is_file():
        return None
    from wmkit.storage import checkpoint

    tensors, _ = checkpoint.load_tensors(path.with_suffix(""))
    return np.asarray(tensors["mu"]), np.asarray(tensors["logvar"])
