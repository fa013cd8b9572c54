"""Environments: gymnasium ids (or a plugin's) with frames cropped and resized for V."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import numpy as np
from gymnasium.spaces import Box
from PIL import Image

from wmkit.errors import WmkitError
from wmkit.recipe import EnvConfig
from wmkit.registry import Registry


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
    """What the components need to know about an environment to be built."""

    frame_shape: tuple[int, int, int]
    action_low: np.ndarray
    action_high: np.ndarray

    @property
    def action_dim(self) -> int:
        return int(self.action_low.shape[0])


def make_env(config: EnvConfig, registry: Registry | None = None) -> FrameWrapper:
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
    if not isinstance(env.action_space, Box):
        raise WmkitError(
            f"env.id: {config.id!r} has a {type(env.action_space).__name__} action space; "
            "only continuous (Box) actions are supported so far"
        )
    try:
        check_crop(config, env.observation_space)
    except WmkitError:
        env.close()
        raise
    if config.action_repeat > 1:
        env = ActionRepeat(env, config.action_repeat)
    return FrameWrapper(env, config.crop, config.frame_size)


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


def env_spec(env: FrameWrapper) -> EnvSpec:
    space = env.action_space
    size = env.size
    return EnvSpec(
        (3, size, size),
        np.asarray(space.low, dtype=np.float32),
        np.asarray(space.high, dtype=np.float32),
    )
