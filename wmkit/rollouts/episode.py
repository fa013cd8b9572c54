"""Running one episode of a policy in a real environment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmkit.rollouts.envs import WrappedEnv, one_hot
from wmkit.rollouts.policies import Policy


@dataclass
class Episode:
    """An episode; ``frames[t]`` is what the agent saw before taking ``action[t]``."""

    frames: np.ndarray | None
    action: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    total_return: float
    steps: int
    raw_frames: list[np.ndarray] | None = None
    last_frame: np.ndarray | None = None

    def arrays(self, skip: int = 0) -> dict[str, np.ndarray]:
        """The arrays a shard stores, without the first ``skip`` steps. ``frames`` holds
        the observations, frames or state vectors; ``last_frame`` (when recorded) the one
        after the last action, which a world model trained on whole transitions needs."""
        assert self.frames is not None
        arrays = {
            "frames": self.frames[skip:],
            "action": self.action[skip:],
            "reward": self.reward[skip:],
            "done": self.done[skip:],
        }
        if self.last_frame is not None:
            arrays["last_frame"] = self.last_frame[None]
        return arrays


def run_episode(
    env: WrappedEnv,
    policy: Policy,
    seed: int,
    max_steps: int | None = None,
    record: bool = True,
    record_raw: bool = False,
    stop_without_reward: int | None = None,
    record_last: bool = False,
) -> Episode:
    """Play one episode; ``record`` keeps the model frames, ``record_raw`` the full ones,
    ``record_last`` the frame after the last action too. ``stop_without_reward`` ends it
    after that many steps in a row with no positive reward. With a Discrete action space the
    episode stores the one-hot vector of each action taken (``OneHotActions``)."""
    discrete = getattr(env, "discrete", False)
    frame, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    policy.reset()
    frames, raws, actions, rewards, dones = [], [], [], [], []
    total, steps, dry = 0.0, 0, 0
    while max_steps is None or steps < max_steps:
        action = policy.act(frame)
        if record:
            frames.append(frame)
        if record_raw:
            raws.append(env.raw_frame)
        frame, reward, terminated, truncated, _ = env.step(action)
        actions.append(one_hot(action) if discrete else action)
        rewards.append(reward)
        dones.append(terminated)
        total += float(reward)
        steps += 1
        dry = 0 if reward > 0 else dry + 1
        if terminated or truncated or (stop_without_reward and dry >= stop_without_reward):
            break
    if record_raw:
        raws.append(env.raw_frame)
    return Episode(
        np.stack(frames) if record else None,
        np.asarray(actions, dtype=np.float32),
        np.asarray(rewards, dtype=np.float32),
        np.asarray(dones, dtype=bool),
        total,
        steps,
        raws if record_raw else None,
        frame if record_last else None,
    )
