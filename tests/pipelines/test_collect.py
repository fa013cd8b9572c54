"""Collection: every random policy's episode comes back as arrays that make a well-formed
shard, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import resolve_recipe
from wmkit.pipelines.stages.collect import collect_one
from wmkit.rollouts.worker import init_worker
from wmkit.storage.store import RolloutStore


@pytest.mark.parametrize("policy", ["uniform", "brownian", "controller"])
def test_each_random_policy_returns_an_episode_for_a_shard(tiny_recipe, tmp_path, policy):
    data = yaml.safe_load(tiny_recipe.read_text())
    data["collect"] = {"episodes": 1, "policy": policy, "max_steps": 12}
    resolve_recipe(data, get_registry())  # valid
    init_worker(data)
    store = RolloutStore(tmp_path / "data" / "rollouts")
    store.add(store.write_episode(0, collect_one((0, 123))))
    ep = store.load(0)
    assert ep["frames"].shape == (12, 64, 64, 3) and ep["frames"].dtype == np.uint8
    assert ep["action"].shape == (12, 3)
    assert (ep["action"][:, 0] >= -1).all() and (ep["action"][:, 1:] >= 0).all()
    assert (ep["action"] <= 1).all()
    # The same seed plays the same episode.
    again = collect_one((1, 123))
    assert np.array_equal(again["action"], ep["action"])
    assert np.array_equal(again["frames"], ep["frames"])


def test_brownian_actions_drift_smoothly(tiny_recipe, tmp_path):
    data = yaml.safe_load(tiny_recipe.read_text())
    data["collect"] = {"episodes": 1, "policy": "brownian", "max_steps": 30}
    init_worker(data)
    actions = collect_one((0, 5))["action"]
    assert np.abs(np.diff(actions, axis=0)).max() < 0.8  # sqrt(1/50) steps, never jumps
    assert np.abs(np.diff(actions, axis=0)).mean() > 0.01
