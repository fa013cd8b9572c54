"""scripts/c_in_dream.py: a fresh C trained in a finished run's dream, by CMA-ES or by the
actor-critic, without touching the source run; its data shared by hard links, never links."""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
from pathlib import Path

import pytest
import yaml

SCRIPT = Path(__file__).parents[2] / "scripts" / "c_in_dream.py"
SMALL_ACTOR = [
    "--set=controller.units=8",
    "--set=optimizer.generations=2",
    "--set=optimizer.updates=1",
    "--set=optimizer.starts=4",
    "--set=optimizer.score_dreams=2",
    "--set=optimizer.horizon=3",
    "--set=optimizer.units=8",
    "--set=optimizer.bins=15",
]


def _main(monkeypatch, *argv: str) -> None:
    """The script as ``python scripts/c_in_dream.py ARGV...`` runs it."""
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *map(str, argv)])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def source(fast_recipe, tmp_path) -> Path:
    from wmkit.core.plugins import get_registry
    from wmkit.core.recipe import resolve_recipe
    from wmkit.pipelines.runner import run_pipeline

    data = yaml.safe_load(fast_recipe.read_text())
    registry = get_registry(tuple(data["plugins"]))
    run_pipeline(resolve_recipe(data, registry), registry, tmp_path / "source")
    return tmp_path / "source"


def test_both_searches_train_a_fresh_c_in_the_source_dream(source, tmp_path, monkeypatch):
    before = _digests(source)
    _main(monkeypatch, source, tmp_path / "cma")
    _main(monkeypatch, source, tmp_path / "ac", "--actor-critic", *SMALL_ACTOR)
    assert _digests(source) == before  # the source is only read
    for out, name in ((tmp_path / "cma", "linear"), (tmp_path / "ac", "actor")):
        recipe = yaml.safe_load((out / "recipe.yaml").read_text())
        assert recipe["controller"]["name"] == name and recipe["iterate"]["rounds"] == 1
        rows = (out / "metrics" / "fit_controller.jsonl").read_text().splitlines()
        assert len(rows) == 2 and all(json.loads(r)["env_steps"] == 0 for r in rows)
        assert (out / "checkpoints" / "controller.safetensors").is_file()
        for part in ("vision", "memory"):  # the source's V and M, as they were
            copied = out / "checkpoints" / f"{part}.safetensors"
            digest = hashlib.sha256(copied.read_bytes()).hexdigest()
            assert digest == before[f"checkpoints/{part}.safetensors"]
        shard = next(p for p in (out / "data").rglob("*") if p.is_file())
        twin = source / shard.relative_to(out)
        assert shard.stat().st_ino == twin.stat().st_ino  # a hard link, not a copy


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    source, tmp_path, monkeypatch, capsys
):
    _main(monkeypatch, source, tmp_path / "ac", "--actor-critic", *SMALL_ACTOR)
    trained = _digests(tmp_path / "ac")
    with pytest.raises(SystemExit) as other_recipe:
        _main(monkeypatch, source, tmp_path / "ac")  # CMA-ES into the actor-critic's run
    assert other_recipe.value.code == 2
    assert "holds a different recipe" in capsys.readouterr().err
    assert _digests(tmp_path / "ac") == trained

    (source / "data" / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(SystemExit) as linked:
        _main(monkeypatch, source, tmp_path / "out")
    assert linked.value.code == 2
    assert "a link in the source run; refusing to follow it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
