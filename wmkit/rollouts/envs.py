"""Environments: gymnasium ids (or a plugin's) with frames cropped and resized for V, or state
vectors as they are; a Discrete action space becomes a box of one score per action."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import numpy as np
from gymnasium.spaces import Box, Discrete
from PIL import Image

from wmkit.core.errors import WmkitError
from wmkit.core.recipe import EnvConfig
from wmkit.core.registry import Registry


def preprocess_frame(frame: np.ndarray, crop: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop (top, bottom, left, right) then resize to [size, size, 3] uint8, bilinear."""
    top, bottom, left, right = crop
    h, w = frame.shape[:2]
    frame = frame[top : h - bottom, left : w - right]
    if frame.shape[0] != size or frame.shape[1] != size:
        frame = np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))
    return frame


class FrameWrapper(gymnasium.ObservationWrapper):
    """Observations become the model's frames; the full-size frame stays in ``raw_frame``."""

    def __init__(self, env: gymnasium.Env, crop: tuple[int, int, int, int], size: int):
        super().__init__(env)
        self.crop, self.size = crop, size
        self.raw_frame: np.ndarray | None = None
        self.observation_space = Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.raw_frame = observation
        return preprocess_frame(observation, self.crop, self.size)


class VectorWrapper(gymnasium.ObservationWrapper):
    """State-vector observations (a Box of shape (n,)) as float32, with no frame to show."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        n = int(env.observation_space.shape[0])
        self.observation_space = Box(-np.inf, np.inf, (n,), np.float32)
        self.raw_frame: np.ndarray | None = None

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation, dtype=np.float32)


class OneHotActions(gymnasium.ActionWrapper):
    """A Discrete(n) action space as the box [0, 1]^n: the agent gives a score per action and
    the highest is taken. So every policy, controller and model of the pipeline works on
    action vectors, whatever the environment; ``taken_action`` turns the scores into the
    one-hot vector of the action taken, which is what episodes store."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        n = int(env.action_space.n)
        self.start = int(env.action_space.start)
        self.action_space = Box(0.0, 1.0, (n,), np.float32)

    def action(self, action: np.ndarray) -> int:
        return self.start + int(np.argmax(action))


class MergedActions(gymnasium.ActionWrapper):
    """Pairs (i, j) of action dimensions in [0, high] as one signed axis each (at i's place):
    a > 0 drives i with a, a < 0 drives j with -a, and j's own dimension goes away.

    Why: with a Gaussian actor whose mean starts at the box's centre, CarRacing's gas and
    brake both start at half, and the car barely moves; on one gas/brake axis the centre is
    neither, and half the samples accelerate. The agent's actions (what episodes store and
    the world model sees) are the merged ones."""

    def __init__(self, env: gymnasium.Env, pairs: list[tuple[int, int]]):
        super().__init__(env)
        low = np.asarray(env.action_space.low, np.float32)
        high = np.asarray(env.action_space.high, np.float32)
        self.pairs, self.size = list(pairs), len(low)
        self.kept = [d for d in range(len(low)) if d not in {j for _, j in pairs}]
        merged_low, merged_high = low.copy(), high.copy()
        for i, j in pairs:
            merged_low[i] = -high[j]
        self.action_space = Box(merged_low[self.kept], merged_high[self.kept], dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        full = np.zeros(self.size, np.float32)
        full[self.kept] = action
        for i, j in self.pairs:
            signed = full[i]
            full[i], full[j] = (signed, 0.0) if signed > 0 else (0.0, -signed)
        return full


def check_merge(config: EnvConfig, space: gymnasium.Space) -> None:
    """Each pair names two distinct dimensions of a Box whose lower bounds are 0, and no
    dimension is in two pairs."""
    pairs = config.merge_actions
    if not pairs:
        return
    if not isinstance(space, Box):
        raise WmkitError(f"env.merge_actions: {config.id!r} has Discrete actions; leave it empty")
    n, seen = int(space.shape[0]), [d for pair in pairs for d in pair]
    for i, j in pairs:
        if not (0 <= i < n and 0 <= j < n) or i == j:
            raise WmkitError(
                f"env.merge_actions: [{i}, {j}] must be two different action dimensions "
                f"of {config.id!r}, 0 to {n - 1}"
            )
        if space.low[i] != 0 or space.low[j] != 0:
            raise WmkitError(
                f"env.merge_actions: [{i}, {j}]: both dimensions must start at 0 (their "
                f"lower bounds are {space.low[i]:g} and {space.low[j]:g})"
            )
    if len(set(seen)) != len(seen):
        raise WmkitError(f"env.merge_actions: a dimension is in two pairs ({pairs})")


def one_hot(action: np.ndarray) -> np.ndarray:
    """The one-hot vector of the highest score in ``action``."""
    out = np.zeros(np.shape(action), np.float32)
    out[int(np.argmax(action))] = 1.0
    return out


class ActionRepeat(gymnasium.Wrapper):
    """Hold each action for ``repeat`` frames and sum their rewards (Dreamer's action repeat).

    At 50 frames a second one CarRacing frame barely moves the view, so M's one-step
    predictions are near copies and its errors compound over hundreds of steps; an agent
    step of several frames shows M the consequence of an action. Frames in between are
    never seen: an environment with a ``skip_observation`` attribute is told to skip
    rendering them (wmkit/CarRacing-v3 does), which makes a held step nearly as cheap as one.
    """

    def __init__(self, env: gymnasium.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat
        self._skippable = hasattr(env.unwrapped, "skip_observation")

    def step(self, action):
        total = 0.0
        for i in range(self.repeat):
            if self._skippable:
                self.env.unwrapped.skip_observation = i < self.repeat - 1
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        if self._skippable:
            self.env.unwrapped.skip_observation = False
        return obs, total, terminated, truncated, info


@dataclass
class EnvSpec:
    """What the components need to know about an environment to be built. ``obs_shape`` is
    (channels, height, width) for frames or (n,) for state vectors; ``discrete`` says the
    action box stands for a Discrete space (``OneHotActions``)."""

    obs_shape: tuple[int, ...]
    action_low: np.ndarray
    action_high: np.ndarray
    discrete: bool = False

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """What V is built with: the shape of one observation."""
        return self.obs_shape

    @property
    def vector_obs(self) -> bool:
        return len(self.obs_shape) == 1

    @property
    def action_dim(self) -> int:
        return int(self.action_low.shape[0])


# A real environment as the agent meets it: frames prepared for V, or state vectors.
WrappedEnv = FrameWrapper | VectorWrapper
# The 0.1 name, kept for one release; it read as "a learned model" to an RL reader.
ModelEnv = WrappedEnv


def make_env(config: EnvConfig, registry: Registry | None = None) -> WrappedEnv:
    """Build the recipe's environment, registering a plugin's id with gymnasium on first use."""
    if registry is not None and ("env", config.id) in registry.clashes:
        raise registry.clash_error("env", config.id)
    if registry is not None and config.id in registry.envs and config.id not in gymnasium.registry:
        entry = registry.envs[config.id]
        gymnasium.register(
            id=entry.id,
            entry_point=entry.entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=entry.kwargs,
        )
    kwargs = dict(config.kwargs)
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    try:
        env = gymnasium.make(config.id, **kwargs)
    except gymnasium.error.Error as exc:
        raise WmkitError(f"env.id: cannot make {config.id!r}: {exc}") from None
    except ImportError as exc:  # an optional dependency, such as vizdoom for Doom
        raise WmkitError(
            f"env.id: cannot make {config.id!r}: {exc}; install what it needs (for "
            "Doom: pip install -e '.[doom]')"
        ) from None
    try:
        check_spaces(config, env)
        check_crop(config, env.observation_space)
        check_merge(config, env.action_space)
    except WmkitError:
        env.close()
        raise
    discrete = isinstance(env.action_space, Discrete)
    if discrete:
        env = OneHotActions(env)
    if config.merge_actions:
        env = MergedActions(env, config.merge_actions)
    if config.action_repeat > 1:
        env = ActionRepeat(env, config.action_repeat)
    shape = env.observation_space.shape
    wrapped = (
        VectorWrapper(env) if len(shape) == 1 else FrameWrapper(env, config.crop, config.frame_size)
    )
    wrapped.discrete = discrete
    return wrapped


def check_spaces(config: EnvConfig, env: gymnasium.Env) -> None:
    """Actions must be a Box or Discrete, observations RGB frames or a state vector."""
    if not isinstance(env.action_space, (Box, Discrete)):
        raise WmkitError(
            f"env.id: {config.id!r} has a {type(env.action_space).__name__} action space; "
            "only continuous (Box) and Discrete actions are supported"
        )
    shape = getattr(env.observation_space, "shape", None)
    if not isinstance(env.observation_space, Box) or not shape or len(shape) not in (1, 3):
        raise WmkitError(
            f"env.id: {config.id!r} observes {env.observation_space}; only RGB frames "
            "(height, width, 3) and state vectors (n,) are supported"
        )


def check_crop(config: EnvConfig, space: gymnasium.Space) -> None:
    """A crop must leave at least one pixel of the environment's frames: cutting all of it
    stores black frames, and cutting more wraps around through negative slicing."""
    shape = getattr(space, "shape", None)
    if not shape or len(shape) < 2:
        return
    top, bottom, left, right = config.crop
    height, width = shape[:2]
    if top + bottom >= height or left + right >= width:
        raise WmkitError(
            f"env.crop: cuts {top} + {bottom} of {height} rows and {left} + {right} of {width} "
            f"columns of {config.id!r}'s frames; leave at least one of each "
            f"(got {list(config.crop)})"
        )


def env_spec(env: WrappedEnv) -> EnvSpec:
    space = env.action_space
    if isinstance(env, FrameWrapper):
        shape: tuple[int, ...] = (3, env.size, env.size)
    else:
        shape = tuple(env.observation_space.shape)
    return EnvSpec(
        shape,
        np.asarray(space.low, dtype=np.float32),
        np.asarray(space.high, dtype=np.float32),
        getattr(env, "discrete", False),
    )
