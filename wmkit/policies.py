"""The random policies that collect V's and M's training data."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from wmkit.agent import Agent


class Policy(Protocol):
    """Acts on one environment: ``reset`` at the start of an episode, then ``act`` per step."""

    def reset(self) -> None: ...

    def act(self, frame: np.ndarray) -> np.ndarray: ...


class UniformPolicy:
    """Independent uniform actions: the car mostly jitters in place."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int):
        self.low, self.high = low, high
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


class BrownianPolicy:
    """Actions that drift as clipped Brownian motion, so the agent explores further."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int, dt: float):
        self.low, self.high, self.dt = low, high, dt
        self.rng = np.random.default_rng(seed)
        self.action = self.rng.uniform(low, high)

    def reset(self) -> None:
        self.action = self.rng.uniform(self.low, self.high)

    def act(self, frame: np.ndarray) -> np.ndarray:
        step = np.sqrt(self.dt) * self.rng.standard_normal(self.action.shape)
        self.action = np.clip(self.action + step, self.low, self.high)
        return self.action.astype(np.float32)


class AgentPolicy:
    """A V+M+C agent acting on one environment (random-init for collection, trained for eval)."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self) -> None:
        self.agent.reset(1)

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.agent.act(frame[None])[0]
