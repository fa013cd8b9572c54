"""A trained Memory (the paper's M) as the dream a gradient optimizer imagines in.

The actor-critic of the Dreamer line trains on trajectories it imagines with a
``WorldModel``: ``imagine(state, action)`` steps the dynamics, ``predict(state)`` gives the
reward received on reaching a state and the chance that it ends the episode, and
``features(state)`` is what the actor sees. ``MemoryDream`` gives M that face, so the same
actor-critic trains C in M's dream as CMA-ES does: a gradient-versus-evolution comparison in
one dream.

The state holds the latent ``z``, M's own recurrent state as M made it (``memory``), and the
reward and done M predicted on the step that led there. ``imagine`` samples the next ``z``
from M's mixture at the dream's temperature: the component is drawn, then ``mu + sigma *
eps``, so the draw is reparameterized and carries gradients to M's outputs (the component
pick does not). M's weights are never trained here: the dream only serves C.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wmkit.core.protocols import Memory, Prediction


class MemoryDream(nn.Module):
    """``Memory`` M, seen as a ``WorldModel`` for imagination only (no ``observe``/``fit``).
    A torch module holding M, so that M's weights are its own (``dream.graph`` records the
    imagination only where it knows every weight the imagination reads)."""

    def __init__(self, memory: Memory, temperature: float):
        super().__init__()
        self.memory = memory
        self.temperature = temperature

    def start(self, z: torch.Tensor, memory_state: Any = None) -> dict[str, Any]:
        """The state at a real moment: latent ``z`` [B, Z] with M's state there (fresh if
        None); nothing has been received yet and the episode is running."""
        batch = z.shape[0]
        zeros = torch.zeros(batch, device=z.device, dtype=z.dtype)
        state = self.memory.initial_state(batch) if memory_state is None else memory_state
        return {"z": z, "memory": state, "reward": zeros, "done": zeros}

    def features(self, state: dict[str, Any]) -> torch.Tensor:
        """[z, M's features], as the paper's C sees them."""
        return torch.cat([state["z"], self.memory.features(state["memory"])], dim=1)

    def imagine(self, state: dict[str, Any], action: torch.Tensor) -> dict[str, Any]:
        """One step of M with no observation; the next z is drawn from torch's global
        generator (the caller seeds it)."""
        prediction, memory_state = self.memory.step(state["z"], action, state["memory"])
        z = self.memory.sample(prediction, self.temperature)
        return {
            "z": z,
            "memory": memory_state,
            "reward": prediction.reward,
            "done": prediction.done,
        }

    def predict(self, state: dict[str, Any]) -> Prediction:
        return Prediction(reward=state["reward"], done=state["done"])
