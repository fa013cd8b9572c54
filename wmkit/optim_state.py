"""A torch optimizer's per-parameter state as flat named tensors (safetensors can hold
those; it cannot hold the nested dict torch uses), and back."""

from __future__ import annotations

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
