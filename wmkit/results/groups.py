"""Groups of runs: one recipe trained with several pipeline seeds (``wmkit run --seeds``).

A group directory holds one run directory per seed, ``seed_S/``, and ``group.json``: the
seeds, and the hash of the recipe without its seed, which every seed shares. Each seed's run
is an ordinary run directory that resumes as any other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import atomic_write_json, inside, read_json
from wmkit.storage.scores import group_digest

GROUP_FILE = "group.json"
SCHEMA = "wmkit-group/1"


def parse_seeds(text: str) -> list[int]:
    """``0,1,2``, ``0-4`` or a mix (``0-2,7``) as a sorted list of distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise WmkitError(
                f"--seeds: {part!r} is not a seed or a range (examples: 0,1,2 or 0-4 or 0-2,7)"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise WmkitError(f"--seeds: the range {part!r} runs backwards")
        if last - first >= 1000:
            raise WmkitError(f"--seeds: the range {part!r} has more than 1000 seeds")
        seeds.update(range(first, last + 1))
    return sorted(seeds)


def seed_dir(root: Path, seed: int) -> Path:
    return Path(root) / f"seed_{seed}"


def read_group(root: Path) -> dict[str, Any] | None:
    """``group.json``, or None where there is none. A group may come from elsewhere: it is
    read as every file of a run is (``fileio.read_json``)."""
    path = Path(root) / GROUP_FILE
    if not path.exists() and not path.is_symlink():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("seeds"), list):
        raise WmkitError(f"{path}: not a wmkit group file (no list of seeds)")
    return data


def record_group(root: Path, recipe_data: dict[str, Any], source: str, seeds: list[int]) -> dict:
    """Create or extend ``group.json``; a group directory belongs to one recipe (up to seed)."""
    root = Path(root)
    digest = group_digest(recipe_data)
    have = read_group(root)
    if have is not None and have.get("group_sha256") != digest:
        raise WmkitError(
            f"{root}: this group directory holds runs of a different recipe; "
            "choose another --out, or delete it to start over"
        )
    if have is None and root.is_dir() and (root / "recipe.yaml").exists():
        raise WmkitError(f"{root}: is a single run's directory; choose another --out for --seeds")
    known = set(have["seeds"]) if have else set()
    all_seeds = sorted(known | set(seeds))
    data = {
        "schema": SCHEMA,
        "name": recipe_data.get("name"),
        "recipe": source,
        "group_sha256": digest,
        "seeds": all_seeds,
        "runs": {str(s): seed_dir(Path("."), s).as_posix() for s in all_seeds},
    }
    atomic_write_json(root / GROUP_FILE, data)
    return data


def group_runs(root: Path) -> list[Path]:
    """The run directories of a group (from ``group.json``, else every ``seed_*`` folder)."""
    root = Path(root)
    data = read_group(root)
    if data is not None:
        runs = []
        for seed in data["seeds"]:
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                raise WmkitError(f"{root / GROUP_FILE}: seeds must be whole numbers >= 0")
            runs.append(inside(root, seed_dir(Path("."), seed).name))
        return runs
    found = sorted(
        (p for p in root.glob("seed_*") if p.is_dir()),
        key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 0,
    )
    # A seed folder that is a link out of the group is refused, as in a run directory.
    return [inside(root, p.name) for p in found]
