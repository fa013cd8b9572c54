"""Policies without a world model: the random ones that collect V's and M's data, and the
fixed baselines that ``wmkit gap`` plays in the dream and in reality."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from wmkit.core.errors import WmkitError
from wmkit.rollouts.agent import Agent

if TYPE_CHECKING:
    from wmkit.core.recipe import CollectConfig
    from wmkit.rollouts.envs import EnvSpec


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


class HeldPolicy:
    """A uniform random action kept for a random 1 to ``hold_max`` steps, then a new one: the
    paper's Doom collection policy ("more diverse random policy, works slightly better")."""

    def __init__(self, low: np.ndarray, high: np.ndarray, seed: int, hold_max: int):
        self.low, self.high, self.hold_max = low, high, hold_max
        self.rng = np.random.default_rng(seed)
        self.left = 0

    def reset(self) -> None:
        self.left = 0

    def act(self, frame: np.ndarray) -> np.ndarray:
        if self.left == 0:
            self.action = self.rng.uniform(self.low, self.high).astype(np.float32)
            self.left = int(self.rng.integers(1, self.hold_max + 1))
        self.left -= 1
        return self.action.copy()


class ConstantPolicy:
    """The same action every step: the simplest behaviour a dream must rank as the game does."""

    def __init__(self, action: np.ndarray):
        self.action = np.asarray(action, dtype=np.float32)

    def reset(self) -> None:
        pass

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.action.copy()


def parse_constant(name: str, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``constant:a,b,...`` to an action, checked against the action space's size and bounds."""
    try:
        action = np.array([float(v) for v in name.split(":", 1)[1].split(",")], dtype=np.float32)
    except ValueError:
        raise WmkitError(f"{name}: constant actions are numbers, e.g. constant:-1") from None
    if action.shape != low.shape:
        raise WmkitError(f"{name}: the action space has {low.shape[0]} dimensions")
    if np.any(action < low) or np.any(action > high):
        raise WmkitError(f"{name}: outside the action space [{low.tolist()}, {high.tolist()}]")
    return action


def fixed_policy(
    name: str,
    low: np.ndarray,
    high: np.ndarray,
    seed: int,
    brownian_dt: float = 1 / 50,
    hold_max: int = 10,
) -> Policy:
    """A policy by name: ``uniform``, ``brownian``, ``held`` or ``constant:a,b,...``."""
    if name == "uniform":
        return UniformPolicy(low, high, seed)
    if name == "brownian":
        return BrownianPolicy(low, high, seed, brownian_dt)
    if name == "held":
        return HeldPolicy(low, high, seed, hold_max)
    if name.startswith("constant:"):
        return ConstantPolicy(parse_constant(name, low, high))
    raise WmkitError(
        f"{name}: unknown policy (uniform, brownian, held, constant:a,b,... or controller)"
    )


def recipe_policy(name: str, spec: EnvSpec, seed: int, collect: CollectConfig) -> Policy:
    """``fixed_policy`` for an environment, with the recipe's ``brownian_dt`` and ``hold_max``."""
    low, high = spec.action_low, spec.action_high
    return fixed_policy(name, low, high, seed, collect.brownian_dt, collect.hold_max)


class AgentPolicy:
    """A V+M+C agent acting on one environment (random-init for collection, trained for eval)."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self) -> None:
        self.agent.reset(1)

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.agent.act(frame[None])[0]
