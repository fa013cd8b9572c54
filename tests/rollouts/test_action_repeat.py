"""env.action_repeat: each action held for k frames, rewards summed, the last frame seen."""

from __future__ import annotations

import numpy as np
from gymnasium.envs.box2d.car_racing import CarRacing

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import EnvConfig
from wmkit.rollouts.envs import make_env


def play(env, actions, seed=5):
    frame, _ = env.reset(seed=seed)
    frames, rewards, ends = [frame], [], []
    for action in actions:
        frame, reward, terminated, truncated, _ = env.step(action)
        frames.append(frame)
        rewards.append(reward)
        ends.append(terminated or truncated)
        if terminated or truncated:
            break
    return frames, rewards, ends


def test_a_held_step_is_k_single_steps_with_summed_rewards_and_skipped_renders(monkeypatch):
    registry = get_registry()
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1, 0, 0], [1, 1, 0.2], (12, 3)).astype(np.float32)
    single = make_env(EnvConfig(id="wmkit/CarRacing-v3", crop=(0, 12, 0, 0)), registry)
    held = make_env(
        EnvConfig(id="wmkit/CarRacing-v3", crop=(0, 12, 0, 0), action_repeat=3), registry
    )
    frames, rewards, _ = play(single, np.repeat(actions, 3, axis=0))
    renders = []
    draw = CarRacing._render
    monkeypatch.setattr(
        CarRacing, "_render", lambda self, mode: renders.append(mode) or draw(self, mode)
    )
    held_frames, held_rewards, _ = play(held, actions)
    assert len(held_rewards) == 12
    assert renders.count("state_pixels") == 1 + 12  # reset's frame, then one per held step
    # Same physics and rewards, and the frame after every third step, pixel for pixel,
    # although the held environment rendered only one frame in three.
    np.testing.assert_allclose(held_rewards, np.add.reduceat(rewards, range(0, 36, 3)), atol=1e-9)
    for i, frame in enumerate(held_frames):
        np.testing.assert_array_equal(frame, frames[3 * i])


def test_a_held_step_stops_at_the_episode_end():
    registry = get_registry()
    env = make_env(
        EnvConfig(id="wmkit/CarRacing-v3", max_episode_steps=10, action_repeat=4), registry
    )
    _, rewards, ends = play(env, [np.array([0.0, 1.0, 0.0], np.float32)] * 5)
    assert ends == [False, False, True]  # frames 4, 8, then 10 (truncated mid-hold)
    assert len(rewards) == 3
