"""The bad-input corpus: every malformed recipe or command gets one line naming the field or
file, exit code 2 and no traceback, and nothing already written is touched."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.core.recipe import load_recipe

runner = CliRunner()

# (recipe as a dict or raw YAML text, text the single error line must contain)
CORPUS = [
    # wrong types
    ({"seed": "zero"}, "seed: Input should be a valid integer"),
    ({"workers": 1.5}, "workers: Input should be a valid integer"),
    ({"device": 3}, "device: Input should be 'auto', 'cpu' or 'cuda'"),
    ({"env": {"frame_size": "big"}}, "env.frame_size: Input should be a valid integer"),
    ({"env": {"kwargs": [1, 2]}}, "env.kwargs: Input should be a valid dictionary"),
    ({"collect": {"episodes": "ten"}}, "collect.episodes: Input should be a valid integer"),
    ({"vision": {"z_dim": [32]}}, "vision.z_dim: Input should be a valid integer"),
    ({"memory": {"learning_rate": "fast"}}, "memory.learning_rate: Input should be a valid number"),
    ({"controller": {"squash": "bent"}}, "controller.squash"),
    ({"optimizer": {"sigma0": "wide"}}, "optimizer.sigma0: Input should be a valid number"),
    ({"dream": {"sweep": "hot"}}, "dream.sweep: Input should be a valid list"),
    ({"env": "CarRacing-v3"}, "env: Input should be a valid dictionary"),
    ({"vision": 5}, "vision: must be a block of options"),
    ({"plugins": "mod"}, "plugins: must be a list of module names"),
    # negative or zero sizes
    ({"collect": {"episodes": -1}}, "collect.episodes: Input should be greater than or equal to 1"),
    ({"vision": {"z_dim": 0}}, "vision.z_dim: Input should be greater than or equal to 1"),
    ({"memory": {"hidden": -8}}, "memory.hidden: Input should be greater than or equal to 1"),
    ({"memory": {"gaussians": 0}}, "memory.gaussians"),
    ({"memory": {"seq_len": 1}}, "memory.seq_len: Input should be greater than or equal to 2"),
    ({"optimizer": {"population": 1}}, "optimizer.population"),
    ({"optimizer": {"generations": 0}}, "optimizer.generations"),
    ({"eval": {"episodes": 0}}, "eval.episodes"),
    ({"env": {"crop": [0, -1, 0, 0]}}, "env.crop: Value error, margins must be whole numbers"),
    ({"dream": {"temperature": -1}}, "dream.temperature: Input should be greater than 0"),
    ({"dream": {"sweep": [1.0, 0]}}, "dream.sweep: Value error, temperatures must be > 0"),
    ({"dream": {"sweep": [1.0, 1.0]}}, "dream.sweep: Value error, temperatures must be distinct"),
    ({"dream": {"done_threshold": 2}}, "dream.done_threshold"),
    ({"task_timeout": 0}, "task_timeout: Input should be greater than 0"),
    # unknown keys
    ({"colect": {"episodes": 3}}, "colect: unknown key"),
    ({"vision": {"zdim": 16}}, "vision.zdim: unknown key"),
    ({"optimizer": {"popsize": 8}}, "optimizer.popsize: unknown key"),
    ({"eval": {"episode": 3}}, "eval.episode: unknown key"),
    # unknown component or environment ids
    ({"memory": {"name": "transformer"}}, "memory.name: unknown memory 'transformer'; available"),
    (
        {"optimizer": {"name": "adam"}},
        "optimizer.name: unknown optimizer 'adam'; available: actor_critic, cmaes",
    ),
    ({"env": {"id": "NoSuchEnv-v0"}}, "env.id: unknown environment"),
    ({"optimizer": {"train_in": "sky"}}, "optimizer.train_in: Input should be 'real' or 'dream'"),
    ({"collect": {"policy": "expert"}}, "collect.policy"),
    ({"dream": {"ends": "never"}}, "dream.ends: Input should be 'threshold' or 'sample'"),
    # plugin import errors
    ({"plugins": ["no_such_module_xyz"]}, "plugins.0: cannot import plugin module"),
    ({"plugins": ["tests.fixtures.broken_plugin"]}, "broken on purpose"),
    # malformed YAML
    ("vision: {z_dim: 32\n", "invalid YAML at line"),
    ("\tname: tabs\n", "invalid YAML"),
    ("42\n", "a recipe must be a mapping of blocks"),
]


@pytest.mark.parametrize(("recipe", "expected"), CORPUS, ids=[c[1][:40] for c in CORPUS])
def test_corpus_answers_with_one_line_and_exit_code_2(tmp_path, recipe, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe))
    for command in (["validate", str(path)], ["run", str(path), "--out", str(tmp_path / "r")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {path}") and expected in lines[0], lines[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # a bad recipe never creates a run directory


# Values that pass their options model but that a component's constructor rejects.
REJECTED_BY_CONSTRUCTOR = [
    (
        {"vision": {"name": "picky"}},
        "error: vision 'picky' (plugin 'tests.fixtures.picky_plugin') cannot be built: "
        "ValueError: picky wants 96x96 frames, got (3, 64, 64)",
    ),
    (
        {"optimizer": {"name": "openai_es", "population": 5}},
        "error: optimizer.population: openai_es samples antithetic pairs",
    ),
    # ...or that the pipeline's preflight rejects: the paper's pipeline thresholds M's done.
    ({"dream": {"ends": "sample"}}, "error: dream.ends: 'sample' is for a world model's dream"),
]


@pytest.mark.parametrize(
    ("blocks", "expected"), REJECTED_BY_CONSTRUCTOR, ids=["raises", "wmkit", "preflight"]
)
def test_what_only_a_constructor_rejects_fails_validate_and_run_in_one_line(
    fast_recipe, tmp_path, blocks, expected
):
    data = yaml.safe_load(fast_recipe.read_text())
    data.update(blocks, plugins=[*data["plugins"], "tests.fixtures.picky_plugin"])
    fast_recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "r"
    for command in (["validate", str(fast_recipe)], ["run", str(fast_recipe), "--out", str(out)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), result.output
    assert not out.exists()


def test_corpus_is_at_least_thirty_cases():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["run", "missing.yaml"], "missing.yaml: recipe file not found"),
        (["validate", "missing.yaml"], "missing.yaml: recipe file not found"),
        (["eval", "--checkpoint", "no/such/run"], "not a wmkit run directory"),
        (["dream", "--checkpoint", "no/such/run"], "not a wmkit run directory"),
    ],
)
def test_missing_files_are_named(command, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and expected in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_recipe_can_import_a_plugin_module(write_recipe):
    path = write_recipe(
        {"plugins": ["tests.fixtures.extra_plugin"], "controller": {"name": "always_brake"}}
    )
    assert load_recipe(path).controller.name == "always_brake"
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0


def test_bad_input_leaves_an_existing_run_untouched(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "recipe.yaml").write_text(yaml.safe_dump({"name": "other"}))
    before = (out / "recipe.yaml").read_text()
    result = runner.invoke(app, ["run", str(tiny_recipe), "--out", str(out)])
    assert result.exit_code == 2 and "holds a different recipe" in result.output
    assert (out / "recipe.yaml").read_text() == before
