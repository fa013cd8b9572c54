"""Doom Take Cover through VizDoom, with the paper's action thresholds and 2,100-step cap."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from wmkit_doom import ENV_ID, LEFT, NO_OP, RIGHT, discrete_action

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import EnvConfig
from wmkit.rollouts.envs import make_env


def test_paper_thresholds_map_one_output_to_three_actions():
    assert [discrete_action(v) for v in (-1.0, -0.34, -0.3, 0.0, 0.3, 0.34, 1.0)] == [
        LEFT,
        LEFT,
        NO_OP,
        NO_OP,
        NO_OP,
        RIGHT,
        RIGHT,
    ]


def test_the_thresholds_are_tested_without_vizdoom(monkeypatch):
    """Only the test that plays the game needs VizDoom: this file loads without it."""
    monkeypatch.setitem(sys.modules, "vizdoom", None)  # import vizdoom now fails
    spec = importlib.util.spec_from_file_location("doom_tests_without_vizdoom", __file__)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except pytest.skip.Exception:
        pytest.fail("a module-level skip would skip the threshold test too")


def test_without_vizdoom_the_environment_is_one_error_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "vizdoom", None)
    with pytest.raises(WmkitError, match=r"cannot make 'wmkit/DoomTakeCover-v0': .*\[doom\]"):
        make_env(EnvConfig(id=ENV_ID), get_registry())


def test_take_cover_gives_frames_and_one_point_per_step_until_death(tmp_path, monkeypatch):
    pytest.importorskip("vizdoom")
    monkeypatch.chdir(tmp_path)  # VizDoom writes _vizdoom.ini in the working directory
    env = make_env(EnvConfig(id=ENV_ID), get_registry())
    assert env.spec.max_episode_steps == 2100
    frame, _ = env.reset(seed=3)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    rewards, done = [], False
    while not done:
        frame, reward, terminated, truncated, _ = env.step(np.array([0.0], np.float32))
        rewards.append(reward)
        done = terminated or truncated
    assert terminated and set(rewards) == {1.0} and 20 < len(rewards) < 2100
    env.close()


def test_discrete_actions_press_the_same_buttons_as_the_paper_thresholds(tmp_path, monkeypatch):
    """``env.kwargs: {discrete: true}`` is VizDoom's Discrete(3), which wmkit shows as one
    score per action: choosing LEFT or RIGHT plays the same game as the paper's -1 and +1."""
    pytest.importorskip("vizdoom")
    monkeypatch.chdir(tmp_path)
    paper = make_env(EnvConfig(id=ENV_ID), get_registry())
    discrete = make_env(EnvConfig(id=ENV_ID, kwargs={"discrete": True}), get_registry())
    assert discrete.action_space.shape == (3,)
    a, _ = paper.reset(seed=5)
    b, _ = discrete.reset(seed=5)
    moves = [(-1.0, LEFT)] * 12 + [(1.0, RIGHT)] * 12 + [(0.0, NO_OP)] * 4
    for value, button in moves:
        a, *_ = paper.step(np.array([value], np.float32))
        b, *_ = discrete.step(np.eye(3, dtype=np.float32)[button])
        np.testing.assert_array_equal(a, b)
    paper.close()
    discrete.close()
