"""A torch optimizer's per-parameter state as flat named tensors (safetensors can hold
those; it cannot hold the nested dict torch uses), and back; and the training loop the
reference V and M share."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for pid, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]):
    full = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    full["state"] = state
    optimizer.load_state_dict(full)


class AdamTraining:
    """What the reference V and M share: Adam created on first use, one epoch as a plain
    loop over ``self.loss(batch)``, and Adam's state exported for exact resume.

    Mix into a ``torch.nn.Module`` whose ``options`` has ``learning_rate`` (and may have
    ``precision``) and whose ``loss(batch)`` returns a dict of scalar tensors with the total
    under ``"loss"``.
    """

    _optimizer: torch.optim.Optimizer | None = None

    def _adam(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.parameters(), lr=self.options.learning_rate)
        return self._optimizer

    def train_state_dict(self) -> dict[str, torch.Tensor]:
        """Adam's moments, so that training resumed after a crash continues exactly."""
        return optimizer_tensors(self._adam())

    def load_train_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_optimizer_tensors(self._adam(), state)

    def autocast(self) -> Any:
        """Where ``options.precision`` is "bf16": bfloat16 autocast, for the forward pass only
        (each loss is then computed in float32 from its outputs); otherwise nothing at all,
        so float32 training runs exactly as before."""
        if getattr(self.options, "precision", "fp32") != "bf16":
            return contextlib.nullcontext()
        device = next(self.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def clip_gradients(self, grad_clip: float) -> None:
        """Clip the gradient's global norm (a model made of parts may clip each part)."""
        torch.nn.utils.clip_grad_norm_(self.parameters(), grad_clip)

    def fit_batches(self, batches, grad_clip: float | None = None) -> dict[str, float]:
        """One pass of Adam steps; returns the mean of every loss term."""
        optimizer = self._adam()
        totals: dict[str, float] = {}
        n = 0
        for batch in batches:
            losses = self.loss(batch)
            optimizer.zero_grad()
            losses["loss"].backward()
            if grad_clip is not None:
                self.clip_gradients(grad_clip)
            optimizer.step()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v.item()
            n += 1
        return {k: v / max(n, 1) for k, v in totals.items()}
