"""Doom Take Cover through VizDoom, with the paper's action thresholds and 2,100-step cap."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from wmkit_doom import ENV_ID, LEFT, NO_OP, RIGHT, discrete_action

from wmkit.envs import make_env
from wmkit.errors import WmkitError
from wmkit.plugins import get_registry
from wmkit.recipe import EnvConfig


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
