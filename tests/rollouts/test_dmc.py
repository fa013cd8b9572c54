"""The DeepMind Control Suite plugin: ids, the env contract, state vectors and 64x64 frames,
action repeat, the suite's 1,000-step episodes, one recipe for every task, and one error line
for what is missing. Skipped, with the reason, only where dm-control or a headless GL is."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import wmkit_dmc
from typer.testing import CliRunner
from wmkit_dmc import (
    SUITE_TASKS,
    choose_gl,
    env_id,
    flatten_observation,
    gl_help,
    import_suite,
)

from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import EnvConfig, load_recipe
from wmkit.devkit.testing import check_env
from wmkit.rollouts.envs import env_spec, make_env

REG = get_registry()
RECIPES = Path(__file__).parents[2] / "recipes"


@pytest.fixture
def dmc():
    """dm_control.suite, imported the plugin's way (its GL chosen first)."""
    pytest.importorskip("dm_control", reason="dm-control is not installed")
    return import_suite()


@pytest.fixture
def gl(dmc):
    if choose_gl() is None:
        pytest.skip(gl_help())


def test_every_suite_task_is_registered_as_dmc_domain_task():
    for domain, task in SUITE_TASKS:
        assert REG.envs[env_id(domain, task)].kwargs == {"domain": domain, "task": task}
    assert "dmc/walker-walk" in REG.envs and "dmc/ball_in_cup-catch" in REG.envs


def test_the_written_task_list_is_the_suites(dmc):
    assert SUITE_TASKS == tuple(dmc.ALL_TASKS)


def test_state_vectors_pass_the_env_contract(dmc):
    env = make_env(EnvConfig(id="dmc/walker-walk", action_repeat=2), REG)
    check_env(env)
    spec = env_spec(env)
    # walker: 14 orientations, 1 height, 9 velocities; 6 actuators in [-1, 1].
    assert spec.obs_shape == (24,) and spec.vector_obs and not spec.discrete
    np.testing.assert_array_equal(spec.action_low, -np.ones(6))
    np.testing.assert_array_equal(spec.action_high, np.ones(6))
    env.close()


def test_frames_pass_the_env_contract(gl):
    env = make_env(EnvConfig(id="dmc/cartpole-swingup", kwargs={"obs": "pixels"}), REG)
    check_env(env, steps=2)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    assert env_spec(env).obs_shape == (3, 64, 64)
    env.close()


def test_the_flattened_state_keeps_the_suites_key_order():
    observation = {"position": np.array([1.0, 2.0]), "height": np.float64(3.0)}
    flat = flatten_observation(observation)
    assert flat.dtype == np.float32 and flat.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("obs", ["proprio", "pixels"])
def test_a_repeated_action_is_two_control_steps_with_their_rewards_summed(request, obs):
    """With repeat 2 the agent sees every second control step, and its reward is the sum
    of the two; the frame held in between is never rendered."""
    request.getfixturevalue("gl" if obs == "pixels" else "dmc")
    kwargs = {"obs": obs}
    held = make_env(EnvConfig(id="dmc/cartpole-swingup", action_repeat=2, kwargs=kwargs), REG)
    each = make_env(EnvConfig(id="dmc/cartpole-swingup", kwargs=kwargs), REG)
    a, _ = held.reset(seed=4)
    b, _ = each.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    renders = []
    physics = held.unwrapped._env.physics
    render = physics.render
    physics.render = lambda *args, **kw: renders.append(1) or render(*args, **kw)
    for value in (0.7, -0.3, 1.0):
        action = np.array([value], np.float32)
        a, reward, *_ = held.step(action)
        b, first, *_ = each.step(action)
        b, second, *_ = each.step(action)
        np.testing.assert_array_equal(a, b)
        assert reward == pytest.approx(first + second)
    assert len(renders) == (3 if obs == "pixels" else 0)
    held.close()
    each.close()


def test_an_episode_is_the_suites_1000_control_steps_ended_by_its_time_limit(dmc):
    env = make_env(EnvConfig(id="dmc/cartpole-swingup", action_repeat=2), REG)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps += 1
        done = terminated or truncated
    assert steps == 500 and truncated and not terminated
    env.close()


def test_an_unknown_observation_kind_is_one_error_line_naming_the_field(dmc):
    with pytest.raises(WmkitError, match=r"^env\.kwargs\.obs: .*'proprio' or 'pixels'"):
        make_env(EnvConfig(id="dmc/walker-walk", kwargs={"obs": "depth"}), REG)


def test_without_dm_control_the_environment_is_one_error_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dm_control", None)
    with pytest.raises(WmkitError, match=r"cannot make 'dmc/walker-walk': .*\.\[dmc\]"):
        make_env(EnvConfig(id="dmc/walker-walk"), REG)


def test_the_gl_is_chosen_egl_first_then_osmesa_and_named_when_neither_renders(monkeypatch):
    tried = []
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(wmkit_dmc, "gl_works", lambda b: tried.append(b) or b == "osmesa")
    assert choose_gl() == "osmesa" and tried == ["egl", "osmesa"]
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(wmkit_dmc, "gl_works", lambda b: False)
    assert choose_gl() is None
    with pytest.raises(WmkitError, match="neither MUJOCO_GL=egl nor MUJOCO_GL=osmesa"):
        make_env(EnvConfig(id="dmc/walker-walk", kwargs={"obs": "pixels"}), REG)
    monkeypatch.setenv("MUJOCO_GL", "disable")  # the user's choice is kept, and renders nothing
    assert choose_gl() is None


def test_one_recipe_for_every_task_and_its_pixel_variant_differs_only_in_obs():
    proprio = load_recipe(RECIPES / "dmc_proprio.yaml").to_dict()
    vision = load_recipe(RECIPES / "dmc_vision.yaml").to_dict()
    assert vision.pop("name") == "dmc_vision" and proprio.pop("name") == "dmc_proprio"
    assert vision["env"].pop("kwargs") == {"obs": "pixels"}
    assert proprio["env"].pop("kwargs") == {"obs": "proprio"}
    assert vision == proprio
    assert proprio["env"]["action_repeat"] == 2  # DreamerV3's at its score file's commit


def test_the_recipe_runs_end_to_end_on_a_task_given_by_id_alone(dmc, tmp_path):
    """The shipped recipe, shrunk by --set to seconds: only env.id names the task."""
    tiny = [
        "env.id=dmc/reacher-easy",
        "env.max_episode_steps=12",
        "collect.episodes=1",
        "pipeline.env_steps=24",
        "pipeline.train_ratio=4",
        "world_model.deter=8",
        "world_model.stoch=2",
        "world_model.classes=2",
        "world_model.units=8",
        "world_model.layers=1",
        "world_model.batch_size=2",
        "world_model.seq_len=4",
        "world_model.reward_bins=15",
        "controller.units=8",
        "controller.layers=1",
        "optimizer.units=8",
        "optimizer.layers=1",
        "optimizer.horizon=3",
        "optimizer.bins=15",
        "eval.episodes=1",
        "eval.max_steps=6",
    ]
    args = ["run", str(RECIPES / "dmc_proprio.yaml"), "--out", str(tmp_path / "run")]
    for item in tiny:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "eval.json").exists()
