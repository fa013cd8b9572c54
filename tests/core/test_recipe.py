"""Recipes: the shipped ones validate, bad ones get one clear line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.core.recipe import RecipeError, load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))
runner = CliRunner()


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    if "doom" in path.name:
        pytest.importorskip("vizdoom")  # validate makes the environment
    if path.name.startswith("dmc"):
        pytest.importorskip("dm_control")
        from wmkit_dmc import choose_gl, gl_help

        if "vision" in path.name and choose_gl() is None:
            pytest.skip(gl_help())
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_paper_recipe_has_the_paper_settings():
    r = load_recipe(RECIPES[0].parent / "carracing_ha2018.yaml")
    assert r.collect.episodes == 10_000
    assert r.vision.options.z_dim == 32
    assert (r.memory.options.hidden, r.memory.options.gaussians) == (256, 5)
    assert (r.optimizer.options.population, r.optimizer.options.rollouts_per_candidate) == (64, 16)
    assert r.optimizer.options.train_in == "real" and r.eval.episodes == 100


def test_defaults_fill_a_minimal_recipe(write_recipe):
    r = load_recipe(write_recipe({"collect": {"episodes": 5}}, "minimal.yaml"))
    assert r.name == "minimal"
    assert (r.vision.name, r.memory.name, r.controller.name, r.optimizer.name) == (
        "conv_vae",
        "mdn_rnn",
        "linear",
        "cmaes",
    )
    assert r.collect.episodes == 5 and r.memory.options.gaussians == 5


def test_overrides_reach_component_options(tiny_recipe):
    r = load_recipe(tiny_recipe, ["memory.hidden=128", "optimizer.sigma0=0.5", "seed=9"])
    assert r.memory.options.hidden == 128
    assert r.optimizer.options.sigma0 == 0.5 and r.seed == 9


def test_digest_ignores_device_and_workers_only(tiny_recipe):
    base = load_recipe(tiny_recipe).digest()
    assert load_recipe(tiny_recipe, ["device=auto", "workers=2"]).digest() == base
    assert load_recipe(tiny_recipe, ["seed=4"]).digest() != base


BAD = [
    ({"memory": {"gaussians": -1}}, "memory.gaussians", "-1"),
    ({"memory": {"gausians": 3}}, "memory.gausians: unknown key", "3"),
    ({"vision": {"name": "nope"}}, "vision.name: unknown vision 'nope'; available: conv_vae", None),
    ({"optimizer": {"population": "many"}}, "optimizer.population", "'many'"),
    ({"collect": {"policy": "greedy"}}, "collect.policy", "'greedy'"),
    ({"env": {"id": "CarRace-v9"}}, "env.id: unknown environment", "'CarRace-v9'"),
    ({"env": {"crop": [1, 2]}}, "env.crop: Value error, must be 4 pixel counts", "[1, 2]"),
    ({"name": "../x"}, "name: String should match", None),
    ({"eval": {"episodes": 0}}, "eval.episodes", "0"),
    ({"bogus": 1}, "bogus: unknown key", "1"),
    ({"vision": 5}, "vision: must be a block of options", "5"),
    ({"device": "tpu"}, "device", "'tpu'"),
]


@pytest.mark.parametrize(("data", "where", "value"), BAD, ids=[b[1] for b in BAD])
def test_bad_recipe_gets_one_line_naming_file_field_and_value(write_recipe, data, where, value):
    path = write_recipe(data)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    err = result.stderr if hasattr(result, "stderr") else result.output
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: ")
    assert where in lines[0]
    if value is not None:
        assert f"(got {value})" in lines[0]
    assert "Traceback" not in result.output


def test_several_problems_are_reported_together(write_recipe):
    path = write_recipe({"memory": {"hidden": 0}, "eval": {"episodes": -3}, "x": 1})
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    paths = [p for p, _, _ in info.value.problems]
    assert set(paths) == {"memory.hidden", "eval.episodes", "x"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("memory: [1, 2\n", "invalid YAML at line"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
)
def test_unreadable_yaml_is_a_clear_error(write_recipe, content, message):
    path = write_recipe(content)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert message in result.output and str(path) in result.output


def test_missing_file_and_bad_override(tmp_path, tiny_recipe):
    result = runner.invoke(app, ["validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "recipe file not found" in result.output
    result = runner.invoke(app, ["validate", str(tiny_recipe), "--set", "memoryhidden"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output
    with pytest.raises(WmkitError, match="seed: is not a block"):
        load_recipe(tiny_recipe, ["seed.x=1"])


def test_extends_merges_blocks_relative_to_the_file(tmp_path):
    base = {
        "name": "base",
        "seed": 4,
        "collect": {"episodes": 6, "policy": "brownian"},
        "memory": {"name": "mdn_rnn", "hidden": 32, "gaussians": 3},
        "eval": {"episodes": 7},
    }
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "base.yaml").write_text(yaml.safe_dump(base))
    child = tmp_path / "child.yaml"
    child.write_text("extends: presets/base.yaml\nmemory: {hidden: 64}\ncollect: {episodes: 9}\n")
    r = load_recipe(child)
    assert r.name == "child"  # a recipe is named by its own file, never its base's
    assert (r.seed, r.collect.episodes, r.collect.policy, r.eval.episodes) == (4, 9, "brownian", 7)
    assert (r.memory.options.hidden, r.memory.options.gaussians) == (64, 3)
    # The same recipe written out in full resolves to the same content and digest.
    full = tmp_path / "child_full.yaml"
    full.write_text(yaml.safe_dump({**base, **r.to_dict(), "name": "child"}))
    assert load_recipe(full).to_dict() == r.to_dict()
    assert load_recipe(full).digest() == r.digest()


def test_extends_chains_and_lists_replace(tmp_path):
    (tmp_path / "a.yaml").write_text("dream: {sweep: [0.5, 1.0], temperature: 1.2}\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\ndream: {sweep: [1.3]}\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\nseed: 2\n")
    r = load_recipe(tmp_path / "c.yaml")
    assert r.dream.sweep == [1.3] and r.dream.temperature == 1.2 and r.seed == 2


@pytest.mark.parametrize(
    "files, message",
    [
        ({"a.yaml": "extends: a.yaml\n"}, "extends: recipes extend each other: a.yaml -> a.yaml"),
        (
            {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"},
            "extends: recipes extend each other: a.yaml -> b.yaml -> a.yaml",
        ),
        ({"a.yaml": "extends: missing.yaml\n"}, "extends: no recipe file"),
        ({"a.yaml": "extends: [b.yaml]\n"}, "extends: must be the path of a recipe file"),
    ],
)
def test_bad_extends_is_one_line_and_exit_code_2(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = runner.invoke(app, ["validate", str(tmp_path / "a.yaml")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_a_runs_recipe_extends_nothing(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\n")
    run_recipe = tmp_path / "recipe.yaml"
    run_recipe.write_text("extends: base.yaml\n")
    with pytest.raises(RecipeError, match="extends: a run's recipe is complete"):
        load_recipe(run_recipe, trust_plugins=False)


def test_shipped_recipes_that_extend_resolve_in_full(tmp_path):
    """The recipe a run writes (to_dict) is complete: read back, it needs no base file."""
    extending = [p for p in RECIPES if "extends:" in p.read_text()]
    assert len(extending) >= 5
    for path in extending:
        r = load_recipe(path)
        written = tmp_path / f"{path.stem}.yaml"
        written.write_text(yaml.safe_dump(r.to_dict()))
        assert load_recipe(written, trust_plugins=False).digest() == r.digest()
