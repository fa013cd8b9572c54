"""The ray executor on a real, local Ray (``ray.init(num_cpus=2)``, no mocks): the numbers of
the local executor, and the same fault handling. tests/rollouts/test_ray_cluster.py runs it on two
nodes and kills a worker and a node."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import TINY, run_numbers
from tests.rollouts.test_executor import (
    always_crash,
    crash_or_hang_once,
    slow_start,
    square_and_threads,
)
from wmkit.cli import app
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import RecipeError, load_recipe
from wmkit.rollouts.executor import WorkerFailure

ray = pytest.importorskip("ray")
from wmkit_ray import RayExecutor, RayOptions  # noqa: E402

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def local_ray():
    """One Ray for the whole module: it takes seconds to start. Its workers import this
    repository's ``tests`` package, for the tasks defined in tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_worker_niceness", "0")  # not 15 levels below the rest of the suite
        ray.init(
            address="local",  # a Ray of its own, never one already on this machine
            num_cpus=2,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        )
    yield
    ray.shutdown()


def test_the_executor_is_chosen_in_the_recipe(write_recipe):
    path = write_recipe(TINY)
    recipe = load_recipe(path, ["executor.name=ray", "executor.num_cpus=2"])
    assert recipe.executor.name == "ray" and recipe.executor.options.num_cpus == 2
    assert load_recipe(path).executor.name == "local"
    # Where rollouts run is no part of what a run computes: a run may resume elsewhere.
    assert recipe.digest() == load_recipe(path).digest()
    with pytest.raises(RecipeError, match=r"executor\.name: unknown executor 'dask'"):
        load_recipe(path, ["executor.name=dask"])
    with pytest.raises(RecipeError, match=r"executor\.adress: unknown key"):
        load_recipe(path, ["executor.name=ray", "executor.adress=auto"])
    assert set(get_registry().names("executor")) >= {"local", "ray"}


def test_a_recipe_for_ray_without_ray_installed_says_how_to_install_it(write_recipe, monkeypatch):
    import wmkit_ray

    monkeypatch.setattr(wmkit_ray.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RecipeError, match=r"executor: .*pip install 'wmkit\[ray\]'"):
        load_recipe(write_recipe(TINY), ["executor.name=ray"])


def ray_executor(**kwargs) -> RayExecutor:
    args = {"initializer": None, "initargs": (), "task_timeout": None, "retries": 2, **kwargs}
    return RayExecutor(RayOptions(), 2, **args)


def test_ray_runs_every_task_with_one_torch_thread_each(local_ray):
    ex = ray_executor()
    try:
        results = dict(ex.map(square_and_threads, list(range(7))))
    finally:
        ex.close()
    assert {i: r[0] for i, r in results.items()} == {i: i * i for i in range(7)}
    assert {r[1] for r in results.values()} == {1}


def test_an_error_in_a_ray_task_is_raised_on_the_driver(local_ray):
    ex = ray_executor()
    try:
        with pytest.raises(ZeroDivisionError):
            list(ex.map(lambda x: 1 / x, [1, 0]))
    finally:
        ex.close()
    assert ex.events == []


def test_a_tiny_recipe_on_ray_gives_the_numbers_of_the_local_executor(
    local_ray, tmp_path, tiny_numbers
):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", str(recipe), "--out", str(out), "--set", "executor.name=ray"]
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "recipe.yaml").read_text())["executor"]["name"] == "ray"
    assert run_numbers(out) == tiny_numbers


# The fault tests come last: they kill the workers that the tests above reuse.


def test_on_ray_a_slow_worker_start_is_not_taken_for_a_hung_task(local_ray):
    ex = ray_executor(initializer=slow_start, initargs=(2.0,), task_timeout=1.0, retries=0)
    try:
        assert dict(ex.map(abs, [-1, -2, -3])) == {0: 1, 1: 2, 2: 3}
    finally:
        ex.close()
    assert ex.events == []


def test_on_ray_a_crashed_or_hung_task_is_run_again(local_ray, tmp_path):
    ex = ray_executor(task_timeout=3.0)
    try:
        for bad in ("crash", "hang"):
            modes = ["ok", bad, "ok", "ok"]
            tasks = [(i, m, str(tmp_path)) for i, m in enumerate(modes)]
            assert dict(ex.map(crash_or_hang_once, tasks)) == {i: i * 10 for i in range(4)}
    finally:
        ex.close()
    # Unlike a process pool, Ray says which task lost its worker: only that one is charged.
    assert sorted(ex.events) == [("crashed", 1, 1), ("hung", 1, 1)]


def test_on_ray_a_task_that_keeps_crashing_gives_up_with_a_clear_error(local_ray):
    ex = ray_executor(retries=1)
    try:
        with pytest.raises(WorkerFailure, match="task 0 failed 2 times"):
            list(ex.map(always_crash, [0]))
    finally:
        ex.close()
