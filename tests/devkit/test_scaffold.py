"""``wmkit new-plugin``: every kind's package passes its own tests and runs a real recipe."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import gymnasium
import pytest
import torch
import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.core.plugins import reset_plugins
from wmkit.devkit.scaffold import KINDS, PluginNames
from wmkit.storage import checkpoint

runner = CliRunner()

# Each kind's component in a recipe that is otherwise conftest's TINY, made smaller still.
SMALL_OPTIONS = {
    "vision": {"z_dim": 8, "epochs": 1, "batch_size": 32},
    "memory": {"hidden": 16, "seq_len": 8, "batch_size": 4, "epochs": 1},
    "controller": {},
    "optimizer": {"population": 4, "rollouts_per_candidate": 1, "generations": 2, "max_steps": 10},
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny models run faster on one thread than fighting for a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def generate(tmp_path, monkeypatch):
    """Write a plugin with the CLI and import it from its folder; forget it afterwards."""
    made: list[PluginNames] = []

    def _generate(kind: str):
        names = PluginNames.from_name(f"scaffold-test-{kind}")
        result = runner.invoke(
            app, ["new-plugin", names.name, "--kind", kind, "--out", str(tmp_path / "plugins")]
        )
        assert result.exit_code == 0, result.output
        assert "next steps:" in result.stdout and "pip install -e ." in result.stdout
        folder = tmp_path / "plugins" / names.name
        made.append(names)
        monkeypatch.syspath_prepend(str(folder))
        return folder, names, importlib.import_module(names.module)

    yield _generate
    for names in made:
        sys.modules.pop(names.module, None)
        gymnasium.registry.pop(names.env_id, None)
    reset_plugins()


def run_generated_tests(folder: Path, module: str) -> list[str]:
    """Call each test function of the plugin's own test file, as pytest would."""
    path = folder / "tests" / f"test_{module}.py"
    spec = importlib.util.spec_from_file_location(f"test_{module}", path)
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    names = [name for name in vars(tests) if name.startswith("test_")]
    for name in names:
        test = getattr(tests, name)
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "filterwarnings":
                    action, _, message = mark.args[0].partition(":")
                    warnings.filterwarnings(action, message)
            wants = inspect.signature(test).parameters
            test(**({"monkeypatch": mp} if "monkeypatch" in wants else {}))
    return names


def tiny_recipe_using(tiny_recipe: Path, kind: str, names: PluginNames) -> dict:
    recipe = yaml.safe_load(tiny_recipe.read_text())
    recipe.update(
        plugins=[names.module],
        collect={"episodes": 2, "policy": "brownian"},
        eval={"episodes": 1, "max_steps": 10},
        dream={"max_steps": 10, "score_episodes": 2},
    )
    recipe["env"]["max_episode_steps"] = 20
    recipe["optimizer"].update(generations=1, max_steps=10)
    if kind == "env":
        recipe["env"] = {"id": names.env_id, "crop": [0, 0, 0, 0], "max_episode_steps": 20}
    else:
        recipe[kind] = {"name": names.component, **SMALL_OPTIONS[kind]}
    return recipe


@pytest.mark.parametrize("kind", KINDS)
def test_generated_plugin_passes_its_tests_and_runs_a_recipe(kind, generate, tiny_recipe, tmp_path):
    folder, names, module = generate(kind)
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "pyproject.toml",
        f"{names.module}.py",
        f"tests/test_{names.module}.py",
        "README.md",
    }
    pyproject = (folder / "pyproject.toml").read_text()
    assert f'[project.entry-points.wmkit]\n{names.component} = "{names.module}"' in pyproject
    assert f'name = "{names.distribution}"' in pyproject
    assert f'py-modules = ["{names.module}"]' in pyproject
    assert 'dependencies = ["wmkit"]' in pyproject
    assert len((folder / "README.md").read_text().splitlines()) <= 14
    assert module.__doc__ and "wmkit_register" in vars(module)

    ran = run_generated_tests(folder, names.module)
    assert "test_registers_with_wmkit" in ran and len(ran) >= 2

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_using(tiny_recipe, kind, names)))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "eval mean" in result.stdout
    used = yaml.safe_load((out / "recipe.yaml").read_text())
    if kind == "env":
        assert used["env"]["id"] == names.env_id
    else:
        assert used[kind]["name"] == names.component
    if kind == "optimizer":
        state, _ = checkpoint.load_tensors(out / "checkpoints" / "optimizer_state")
        assert {"mean", "sigma", "rng_keys"} <= set(state)


def test_generated_pyproject_builds_a_wheel_with_the_entry_point(tmp_path):
    pytest.importorskip("setuptools")
    result = runner.invoke(
        app, ["new-plugin", "wheel-check", "--kind", "optimizer", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps"]
        + ["--no-index", "-w", str(wheels), str(tmp_path / "wheel-check")],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = zf.namelist()
        entry_points = next(zf.read(f).decode() for f in files if f.endswith("entry_points.txt"))
    assert "wmkit_wheel_check.py" in files
    assert not any(f.startswith("tests/") for f in files)
    assert "[wmkit]\nwheel_check = wmkit_wheel_check" in entry_points
    assert wheel.name.startswith("wmkit_wheel_check-0.1.0-")  # distribution wmkit-wheel-check


@pytest.mark.parametrize(
    "name, kind, message",
    [
        ("Bad", "vision", "use lowercase letters"),
        ("9lives", "memory", "starting with a letter"),
        ("two words", "controller", "use lowercase letters"),
        ("trailing-", "optimizer", "ending with a letter or digit"),
        ("vae", "vision", "a module 'wmkit_vae' already exists"),
        ("conv-vae", "vision", "vision 'conv_vae' is already provided by plugin 'conv_vae'"),
        ("prediction", "memory", "its class 'Prediction' would shadow a name"),
        ("taken", "env", "already exists; pick another NAME or --out folder"),
    ],
)
def test_bad_name_or_existing_folder_is_one_line_and_writes_nothing(name, kind, message, tmp_path):
    out = tmp_path / "out"
    if name == "taken":
        (out / "taken").mkdir(parents=True)
    result = runner.invoke(app, ["new-plugin", name, "--kind", kind, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert result.stdout == ""
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) if out.exists() else []
    assert written == (["taken"] if name == "taken" else [])


@pytest.mark.parametrize("name", ["wmkit-cat-mem", "wmkit_cat_mem", "cat-mem", "cat_mem"])
def test_names_never_double_the_prefix_and_agree_with_each_other(name):
    names = PluginNames.from_name(name)
    assert (names.distribution, names.module, names.component, names.cls) == (
        "wmkit-cat-mem",
        "wmkit_cat_mem",
        "cat_mem",
        "CatMem",
    )
    assert names.name == name  # the folder is NAME as typed


def test_generated_pyproject_filters_the_warnings_wmkit_filters():
    import tomllib

    from wmkit.devkit.scaffold import plugin_files

    ours = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    theirs = tomllib.loads(plugin_files("warn-check", "controller")["pyproject.toml"])
    wanted = ours["tool"]["pytest"]["ini_options"]["filterwarnings"]
    assert theirs["tool"]["pytest"]["ini_options"]["filterwarnings"] == wanted


@pytest.mark.parametrize("kind", ["vision", "memory"])
def test_generated_component_resumes_with_its_adam_state(kind, generate):
    """A copy given the weights and train_state_dict of a trained one takes the same next
    step: the pipeline's resume after a crash changes nothing."""
    from wmkit.core.protocols import SequenceBatch

    _, names, module = generate(kind)
    cls = getattr(module, names.cls)
    gen = torch.Generator().manual_seed(0)
    if kind == "vision":
        make = lambda: cls(cls.Options(z_dim=4, channels=4), (3, 16, 16))  # noqa: E731
        batch = torch.rand(2, 3, 16, 16, generator=gen)
    else:
        make = lambda: cls(cls.Options(hidden=4), 3, 2)  # noqa: E731
        z, a = torch.randn(2, 5, 3, generator=gen), torch.rand(2, 5, 2, generator=gen)
        batch = SequenceBatch(z, a, torch.randn(2, 5, generator=gen), torch.zeros(2, 5))
    trained = make()
    trained.fit_epoch([batch, batch])
    resumed = make()
    resumed.load_state_dict(trained.state_dict())
    # Copies, as from the checkpoint file: torch's Adam would share the very tensors.
    resumed.load_train_state_dict({k: v.clone() for k, v in trained.train_state_dict().items()})
    for model in (trained, resumed):
        torch.manual_seed(1)  # the VAE samples z: as the pipeline does, seed each epoch
        model.fit_epoch([batch])
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_rendered_templates_pass_ruff(kind, tmp_path):
    """The templates are files (wmkit/devkit/templates/*-tpl) that ruff cannot parse until
    rendered: what it checks is each kind's plugin as written, with the plugin's own
    pyproject settings."""
    result = runner.invoke(
        app, ["new-plugin", f"lint-{kind}", "--kind", kind, "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / f"lint-{kind}"
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=folder, capture_output=True, text=True
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_templates_ship_as_package_data():
    import tomllib

    ours = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = ours["tool"]["setuptools"]["package-data"]["wmkit.devkit"]
    shipped = Path(__file__).parents[2] / "wmkit" / "devkit"
    assert {p.name for p in shipped.glob("templates/*")} == {
        p.name for pattern in data for p in shipped.glob(pattern)
    }
