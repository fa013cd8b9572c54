"""Doom Take Cover (VizDoom) with the paper's interface, registered as ``wmkit/DoomTakeCover-v0``.

The agent sees the screen (resized to 64x64 by wmkit like any frame) and outputs one number
in [-1, 1]: below -1/3 it moves left, above 1/3 it moves right, otherwise it stands still,
as in the paper's Doom controller. Every frame alive is worth +1 and an episode is capped
at 2,100 steps (a perfect score, the paper's cap). No display is needed.

With ``discrete=True`` (``env.kwargs``) the action space is VizDoom's own Discrete(3) instead,
for policies that choose an action rather than threshold a number, such as a categorical
actor: a Gaussian on one number finds the narrow "stand still" band in the middle hard to hit.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.spaces import Box, Discrete

import wmkit

ENV_ID = "wmkit/DoomTakeCover-v0"
MAX_STEPS = 2100
# VizDoom's Discrete(3) for Take Cover's two buttons, one pressed at most: see button_map.
NO_OP, RIGHT, LEFT = 0, 1, 2


def discrete_action(value: float) -> int:
    """The paper's thresholds on the controller's single output."""
    if value < -1 / 3:
        return LEFT
    if value > 1 / 3:
        return RIGHT
    return NO_OP


class TakeCoverEnv(gymnasium.Env):
    """VizDoom's ``VizdoomTakeCover-v1`` with screen observations and one continuous action
    (the paper's interface), or VizDoom's three discrete ones."""

    metadata = {"render_modes": []}

    def __init__(self, frame_skip: int = 1, discrete: bool = False):
        from vizdoom import gymnasium_wrapper  # noqa: F401  (registers the Vizdoom ids)

        self.env = gymnasium.make("VizdoomTakeCover-v1", frame_skip=frame_skip)
        self.observation_space = self.env.observation_space["screen"]
        self.discrete = discrete
        self.action_space = Discrete(3) if discrete else Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return obs["screen"], info

    def step(self, action):
        value = np.asarray(action).reshape(-1)[0]
        button = int(value) if self.discrete else discrete_action(float(value))
        obs, reward, terminated, truncated, info = self.env.step(button)
        return obs["screen"], float(reward), terminated, truncated, info

    def close(self) -> None:
        self.env.close()


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_env(ENV_ID, "wmkit_doom:TakeCoverEnv", max_episode_steps=MAX_STEPS)
