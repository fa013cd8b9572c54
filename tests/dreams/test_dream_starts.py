"""Fitness dreams that begin anywhere (``dream.starts: anywhere``): each starts at a real
step of a collected episode, M warmed up on the real steps before it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.dreams.test_dream import guard_env_during
from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.core.protocols import Prediction
from wmkit.dreams.starts import StartPool, warm_up
from wmkit.storage.store import RolloutStore

LENGTHS = {0: 5, 1: 20, 2: 3, 3: 12}  # episode 2 is too short to start from after warm-up


def write_latents(root, lengths=LENGTHS):
    """Episodes whose latent at step t is [100 * episode + t] (V's std ~0), action that + 0.5."""
    store = RolloutStore(root)
    for ep, steps in lengths.items():
        t = np.arange(steps, dtype=np.float32)[:, None] + 100 * ep
        arrays = {
            "mu": t,
            "logvar": np.full_like(t, -60.0),
            "action": t + 0.5,
            "reward": np.zeros(steps, np.float32),
            "done": np.zeros(steps, bool),
        }
        store.add(store.write_episode(ep, arrays))


def test_a_start_has_its_own_episode_s_real_window_before_it(tmp_path):
    write_latents(tmp_path)
    pool = StartPool(tmp_path, warmup=4, device=torch.device("cpu"))
    assert len(pool) == (5 - 4) + (20 - 4) + (12 - 4)
    generator = torch.Generator().manual_seed(0)
    branches = pool.sample(300, generator)
    start = branches.z0[:, 0].round().long()
    episode, step = start // 100, start % 100
    assert set(episode.tolist()) == {0, 1, 3}  # every long-enough episode, never the short one
    assert bool((step >= 4).all())
    assert bool((step < torch.tensor([LENGTHS[e] for e in episode.tolist()])).all())
    expected = start[None, :] - torch.arange(4, 0, -1)[:, None]  # oldest first
    torch.testing.assert_close(branches.warm_z[:, :, 0], expected.float())
    torch.testing.assert_close(branches.warm_action[:, :, 0], expected.float() + 0.5)
    # The same draw again from the same seed: a resumed generation dreams the same starts.
    again = pool.sample(300, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.z0, branches.z0)


def test_repeat_gives_every_candidate_the_same_starts(tmp_path):
    write_latents(tmp_path)
    branches = StartPool(tmp_path, 2, torch.device("cpu")).sample(3, torch.Generator())
    both = branches.repeat(2)
    torch.testing.assert_close(both.z0[:3], both.z0[3:])
    torch.testing.assert_close(both.warm_z[:, :3], both.warm_z[:, 3:])
    torch.testing.assert_close(both.warm_action[:, :3], branches.warm_action)


class RecordingMemory:
    """A fake M whose state is the list of (z, action) it was stepped on."""

    feature_dim = 1

    def initial_state(self, batch_size):
        return []

    def step(self, z, action, state):
        prediction = Prediction(reward=z[:, 0], done=torch.zeros(len(z)), params={})
        return prediction, [*state, (z.clone(), action.clone())]


def test_warm_up_feeds_m_the_real_window_in_order(tmp_path):
    write_latents(tmp_path)
    branches = StartPool(tmp_path, 3, torch.device("cpu")).sample(5, torch.Generator())
    state = warm_up(RecordingMemory(), branches)
    assert len(state) == 3
    for (z, action), real_z, real_action in zip(state, branches.warm_z, branches.warm_action):
        torch.testing.assert_close(z, real_z)
        torch.testing.assert_close(action, real_action)


def test_too_short_episodes_are_one_clear_error(tmp_path):
    write_latents(tmp_path, {0: 3})
    with pytest.raises(WmkitError, match="dream.warmup"):
        StartPool(tmp_path, 4, torch.device("cpu"))


def test_a_controller_trained_on_branched_dreams_takes_no_real_step(
    fast_recipe, tmp_path, monkeypatch
):
    data = yaml.safe_load(fast_recipe.read_text())
    data["optimizer"].update(train_in="dream", max_steps=None)
    data["dream"] = {"starts": "anywhere", "warmup": 3, "horizon": 5, "score_episodes": 2}
    fast_recipe.write_text(yaml.safe_dump(data))
    flag = guard_env_during(monkeypatch, "fit_controller")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert flag["stepped"] > 0  # the real environment was used, outside fit_controller
    rows = [json.loads(r) for r in (out / "metrics" / "fit_controller.jsonl").open()]
    population = data["optimizer"]["population"]
    assert len(rows) == data["optimizer"]["generations"]
    for row in rows:  # horizon-long dreams (or shorter, where M says the episode ended)
        assert row["env_steps"] == 0
        assert 0 < row["dream_steps"] <= population * 5
