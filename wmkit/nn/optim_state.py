"""A torch optimizer's per-parameter state as flat named tensors (safetensors can hold
those; it cannot hold the nested dict torch uses), and back; and the training loop the
reference V and M share."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

import torch

log = logging.getLogger("wmkit.precision")


# A tiny forward pass of each kind of layer whose bfloat16 kernels a CPU may lack.
_PROBES = {
    "rnn": lambda: torch.nn.LSTM(2, 2, batch_first=True)(torch.zeros(1, 2, 2)),
    "conv": lambda: torch.nn.Conv2d(1, 1, 3)(torch.zeros(1, 1, 4, 4)),
    "linear": lambda: torch.nn.Linear(2, 2)(torch.zeros(1, 2)),
}


@functools.cache
def cpu_bf16_works(kind: str) -> bool:
    """Whether this CPU runs bfloat16 autocast for one kind of layer (``_PROBES``).

    oneDNN has no bfloat16 LSTM on a CPU without AVX-512 (an AVX2-only x86-64, or torch held
    to AVX2 by ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA``) and fails deep inside the
    forward pass. A tiny forward pass answers for the kernels actually dispatched, which a
    CPU flag cannot. The probe's layer is built under a forked RNG, so asking changes no
    training run's random numbers.
    """
    try:
        with torch.random.fork_rng(devices=[]), torch.autocast("cpu", dtype=torch.bfloat16):
            _PROBES[kind]()
    except RuntimeError:
        return False
    return True


def layer_kinds(module: torch.nn.Module) -> set[str]:
    """The kinds of ``_PROBES`` layer that a module contains."""
    kinds = set()
    for m in module.modules():
        if isinstance(m, torch.nn.RNNBase):
            kinds.add("rnn")
        elif isinstance(m, torch.nn.modules.conv._ConvNd):
            kinds.add("conv")
        elif isinstance(m, torch.nn.Linear):
            kinds.add("linear")
    return kinds


@functools.cache
def _say_bf16_falls_back(name: str, kinds: tuple[str, ...]) -> None:
    log.warning(
        f"{name} precision: bf16 is not supported by this CPU's kernels for its "
        f"{', '.join(kinds)} layers (oneDNN's bfloat16 LSTM needs AVX-512); training in "
        "float32 instead"
    )


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
        so float32 training runs exactly as before. A CPU without bfloat16 kernels trains in
        float32 and says so once (``cpu_bf16_works``)."""
        if getattr(self.options, "precision", "fp32") != "bf16":
            return contextlib.nullcontext()
        device = next(self.parameters()).device.type
        if device == "cpu":
            missing = tuple(sorted(k for k in layer_kinds(self) if not cpu_bf16_works(k)))
            if missing:
                _say_bf16_falls_back(getattr(self, "name", type(self).__name__), missing)
                return contextlib.nullcontext()
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
