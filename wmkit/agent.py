"""The agent of the paper: V sees the frame, M remembers, C acts on [z, h]."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from wmkit.protocols import Controller, Memory, Vision


def frames_to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [B, H, W, C] to float [B, C, H, W] in [0, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True)).to(device)
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
