"""``wmkit run --seeds``: one independent run per pipeline seed, recorded as a group."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.results.groups import group_runs, parse_seeds
from wmkit.storage.scores import SCHEMA, read_scores

runner = CliRunner()


def test_parse_seeds_takes_lists_and_ranges():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("7, 0-2,1") == [0, 1, 2, 7]
    for bad in ("a", "3-1", "-1", "0-5000", ""):
        with pytest.raises(WmkitError, match="--seeds"):
            parse_seeds(bad)


def test_seeds_run_one_pipeline_each_that_differ_only_in_seed(fast_group, fast_recipe):
    out = fast_group
    group = json.loads((out / "group.json").read_text())
    assert group["seeds"] == [0, 1] and len(group["group_sha256"]) == 64
    assert group_runs(out) == [out / "seed_0", out / "seed_1"]
    recipes = [yaml.safe_load((out / f"seed_{s}" / "recipe.yaml").read_text()) for s in (0, 1)]
    assert [r.pop("seed") for r in recipes] == [0, 1]
    assert recipes[0] == recipes[1]

    scores = [read_scores(out / f"seed_{s}" / "scores.json") for s in (0, 1)]
    assert {s["run"]["group_sha256"] for s in scores} == {group["group_sha256"]}
    assert scores[0]["run"]["recipe_sha256"] != scores[1]["run"]["recipe_sha256"]
    assert scores[0]["schema"] == SCHEMA

    # Rerunning resumes every seed: nothing is redone, and each prints its eval line.
    again = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out), "--seeds", "0,1"])
    assert again.exit_code == 0 and again.output.count("already complete, skipped") == 14
    lines = [line for line in again.stdout.splitlines() if " eval mean " in line]
    assert [line.split()[:2] for line in lines] == [["seed", "0"], ["seed", "1"]]
    # A group directory belongs to one recipe.
    other = runner.invoke(
        app,
        ["run", str(fast_recipe), "--out", str(out), "--seeds", "0", "--set", "eval.episodes=3"],
    )
    assert other.exit_code == 2 and "different recipe" in other.output
    assert json.loads((out / "group.json").read_text())["seeds"] == [0, 1]


def test_every_seed_runs_on_the_executor_its_recipe_names(fast_group, tmp_path, monkeypatch):
    """The executor block reaches each seed's run: a plugin's executor, chosen by
    ``--set executor.name=...``, runs every seed's evaluation (which is redone here), and the
    numbers are the local executor's."""
    import wmkit.core.plugins
    from tests.fixtures import blob_plugin, counting_executor
    from wmkit.core.plugins import load_plugins
    from wmkit.storage.rundir import RunDir

    plugins = load_plugins(extra=[blob_plugin, counting_executor])
    monkeypatch.setattr(wmkit.core.plugins, "_with_modules", lambda modules: plugins)
    out = tmp_path / "group"
    shutil.copytree(fast_group, out)
    for s in (0, 1):
        RunDir(out / f"seed_{s}").unmark("evaluate")
    counting_executor.BUILT.clear()
    args = ["run", str(fast_group.parent / "fast.yaml"), "--out", str(out), "--seeds", "0-1"]
    result = runner.invoke(app, [*args, "--set", "executor.name=counting"])
    assert result.exit_code == 0, result.output
    assert len(counting_executor.BUILT) == 2  # one evaluation per seed
    for s in (0, 1):
        got, want = (
            json.loads((d / f"seed_{s}" / "eval.json").read_text()) for d in (out, fast_group)
        )
        assert got == want


def test_a_bad_recipe_leaves_no_group_directory(fast_recipe, tmp_path):
    out = tmp_path / "group"
    args = ["run", str(fast_recipe), "--out", str(out), "--seeds", "0-1", "--set", "sinks=[nope]"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "sinks.0: unknown metric sink 'nope'" in result.output
    assert not out.exists()


def test_a_group_from_elsewhere_cannot_point_outside_itself(tmp_path):
    group, elsewhere = tmp_path / "group", tmp_path / "elsewhere"
    (group / "seed_0").mkdir(parents=True)
    elsewhere.mkdir()
    (group / "seed_1").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WmkitError, match="leads outside"):
        group_runs(group)
    (group / "group.json").write_text(json.dumps({"seeds": [0, 1]}))
    with pytest.raises(WmkitError, match="leads outside"):
        group_runs(group)
