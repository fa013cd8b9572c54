"""Where fitness dreams begin, when they begin anywhere (``dream.starts: anywhere``).

A dream from an episode's first frame must roll M open-loop for the whole episode, and
M's error compounds: on CarRacing the late, sharp bends that decide a driver's score are
the part of the dream M gets least right. Starting instead at a random step of a collected
episode puts C where the agent really went, and a short ``dream.horizon`` keeps M close
to what it has seen. M's memory at the start is warmed up on the ``dream.warmup`` real
steps before it (their latents and the actions really taken), so h is what it would have
been, not a blank. This is the idea of branched rollouts (Janner et al. 2019, MBPO) and of
Dreamer's imagination from every replayed state, for a controller trained by evolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import Memory
from wmkit.storage.store import RolloutStore


@dataclass
class Branches:
    """k start points: the latent to dream from, and the real window before it."""

    z0: torch.Tensor  # [k, Z]
    warm_z: torch.Tensor  # [W, k, Z]
    warm_action: torch.Tensor  # [W, k, A]

    def repeat(self, times: int) -> Branches:
        """The same k starts for each of ``times`` candidates (candidate-major, as the
        dream's batch is laid out)."""
        return Branches(
            self.z0.repeat(times, 1),
            self.warm_z.repeat(1, times, 1),
            self.warm_action.repeat(1, times, 1),
        )


class StartPool:
    """Every step of every collected episode that has ``warmup`` steps of the same episode
    before it; sampled uniformly, so episodes weigh by their length."""

    def __init__(self, latents: Path, warmup: int, device: torch.device):
        mus, logvars, actions, valid = [], [], [], []
        offset = 0
        store = RolloutStore(latents)  # reads the manifest once
        for info in store.infos():
            if info.steps <= warmup:
                continue
            ep = store.load(info.episode)
            steps = len(ep["mu"])
            mus.append(ep["mu"])
            logvars.append(ep["logvar"])
            actions.append(np.asarray(ep["action"], dtype=np.float32).reshape(steps, -1))
            valid.append(np.arange(offset + warmup, offset + steps))
            offset += steps
        if not valid:
            raise WmkitError(
                f"dream.warmup: no collected episode is longer than {warmup} steps to start from"
            )
        self.warmup = warmup
        self.mu = torch.as_tensor(np.concatenate(mus), device=device)
        self.logvar = torch.as_tensor(np.concatenate(logvars), device=device)
        self.action = torch.as_tensor(np.concatenate(actions), device=device)
        self.valid = torch.as_tensor(np.concatenate(valid), device=device)

    def __len__(self) -> int:
        return len(self.valid)

    def sample(self, k: int, generator: torch.Generator) -> Branches:
        """k start points, each latent drawn from V's posterior as M was trained on."""
        device = self.mu.device
        pick = torch.randint(len(self.valid), (k,), generator=generator, device=device)
        at = self.valid[pick]
        back = torch.arange(self.warmup, 0, -1, device=device)
        window = at[None, :] - back[:, None]  # [W, k], oldest first
        rows = torch.cat([window, at[None, :]])  # [W + 1, k]
        mu = self.mu[rows]
        eps = torch.randn(mu.shape, generator=generator, device=device)
        z = mu + (self.logvar[rows] / 2).exp() * eps
        return Branches(z[-1], z[:-1], self.action[window])


@torch.no_grad()
def warm_up(memory: Memory, branches: Branches) -> Any:
    """M's state after the real window before each start (teacher-forced: no sampling)."""
    state = memory.initial_state(branches.z0.shape[0])
    for z, action in zip(branches.warm_z, branches.warm_action):
        _, state = memory.step(z, action, state)
    return state
