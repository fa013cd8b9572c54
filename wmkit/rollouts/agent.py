"""The agent of the paper: V sees the frame, M remembers, C acts on [z, h]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wmkit.core.protocols import Controller, GradientController, Memory, Vision, WorldModel
from wmkit.nn.host_to_device import to_device


def frames_to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [B, H, W, C] to float [B, C, H, W] in [0, 1]."""
    x = to_device(np.array(frames, dtype=np.uint8, copy=True), device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


class Agent:
    """Steps B copies of the agent at once. Only V's encoder runs: decoding is not needed to
    act, and running it would cost about a third of every step."""

    def __init__(
        self,
        vision: Vision,
        memory: Memory,
        controller: Controller,
        device: torch.device | str = "cpu",
    ):
        self.vision, self.memory, self.controller = vision, memory, controller
        self.device = torch.device(device)
        self.state: Any = None

    def reset(self, batch_size: int = 1) -> None:
        self.state = self.memory.initial_state(batch_size)

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """V's mean latent for frames [B, H, W, C]: the agent acts on mu, never a sample."""
        mu, _ = self.vision.encode(frames_to_tensor(frames, self.device))
        return mu

    @torch.no_grad()
    def act(self, frames: np.ndarray) -> np.ndarray:
        """Actions [B, A] for frames [B, H, W, C]; advances M's state with the chosen action."""
        if self.state is None:
            self.reset(len(frames))
        z = self.encode(frames)
        features = torch.cat([z, self.memory.features(self.state)], dim=1)
        action = self.controller.act(features)
        _, self.state = self.memory.step(z, action, self.state)
        return action.cpu().numpy()


def obs_to_tensor(obs: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Observations [B, ...] as a model reads them: uint8 frames [B, H, W, C] as float
    [B, C, H, W] in [0, 1], state vectors [B, n] as float."""
    if obs.dtype == np.uint8 and obs.ndim == 4:
        return frames_to_tensor(obs, device)
    return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)


class WorldModelPolicy:
    """A world model and an actor on one environment: the world model filters what the agent
    sees into its state, the actor acts on the state's features. ``explore`` samples the
    actor's distribution (collecting data); otherwise it takes the most likely action."""

    def __init__(
        self,
        world_model: WorldModel,
        controller: GradientController,
        action_dim: int,
        explore: bool,
        device: torch.device | str = "cpu",
    ):
        self.world_model, self.controller = world_model, controller
        self.action_dim, self.explore, self.device = action_dim, explore, torch.device(device)

    def reset(self) -> None:
        self.state = self.world_model.initial_state(1)
        self.prev_action = torch.zeros(1, self.action_dim, device=self.device)
        self.first = torch.ones(1, device=self.device)

    @torch.no_grad()
    def act(self, frame: np.ndarray) -> np.ndarray:
        obs = obs_to_tensor(frame[None], self.device)
        self.state = self.world_model.observe(self.state, self.prev_action, obs, self.first)
        features = self.world_model.features(self.state)
        if self.explore:
            action = self.controller.distribution(features).sample()
        else:
            action = self.controller.act(features)
        self.prev_action, self.first = action, torch.zeros_like(self.first)
        return action[0].cpu().numpy()
