"""The replay of the online pipeline: the newest episodes of the shard store, as the steps an
agent meets them, sampled as fixed-length sequences for a world model.

It holds at most ``capacity`` steps (the oldest episodes leave first), so memory stays flat
however long the run; every episode stays on disk in the store.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from wmkit.core.protocols import ObservationBatch
from wmkit.nn.host_to_device import to_device


def agent_steps(shard: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A stored episode (``frames[t]`` seen before ``action[t]``, which got ``reward[t]`` and
    ``done[t]``; ``last_frame`` after the last action) as the steps an agent meets: at step t
    it has taken ``prev_action``, received ``reward`` and sees ``obs``."""
    obs = np.concatenate([shard["frames"], shard["last_frame"]])
    action = shard["action"].astype(np.float32)
    return {
        "obs": obs,
        "prev_action": np.concatenate([np.zeros_like(action[:1]), action]),
        "reward": np.concatenate([[0.0], shard["reward"]]).astype(np.float32),
        "cont": np.concatenate([[1.0], 1.0 - shard["done"].astype(np.float32)]).astype(np.float32),
        "first": np.eye(1, len(obs), dtype=np.float32)[0],
    }


class Replay:
    """The newest episodes, up to ``capacity`` steps in all."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.episodes: deque[dict[str, np.ndarray]] = deque()
        self.steps = 0

    def add(self, shard: dict[str, np.ndarray]) -> None:
        episode = agent_steps(shard)
        self.episodes.append(episode)
        self.steps += len(episode["obs"])
        while self.steps > self.capacity and len(self.episodes) > 1:
            self.steps -= len(self.episodes.popleft()["obs"])

    def sample(
        self, rng: np.random.Generator, batch_size: int, seq_len: int, device: torch.device
    ) -> ObservationBatch:
        """``batch_size`` sequences of ``seq_len`` steps: each starts at a uniformly chosen
        step and runs on into further random episodes when its own ends, so there is no
        padding; a sequence always starts afresh (``first`` 1 at its first step)."""
        lengths = np.array([len(ep["obs"]) for ep in self.episodes])
        weights = lengths / lengths.sum()
        rows = []
        for _ in range(batch_size):
            parts: list[dict[str, np.ndarray]] = []
            need = seq_len
            while need > 0:
                ep = self.episodes[int(rng.choice(len(lengths), p=weights))]
                n = len(ep["obs"])
                start = int(rng.integers(0, n)) if not parts else 0
                take = min(need, n - start)
                parts.append({k: v[start : start + take] for k, v in ep.items()})
                need -= take
            row = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            row["first"] = row["first"].copy()
            row["first"][0] = 1.0
            rows.append(row)
        batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
        obs = to_device(batch["obs"], device)
        if obs.dtype == torch.uint8:  # frames [B, T, H, W, C] -> [B, T, C, H, W] in [0, 1]
            obs = obs.permute(0, 1, 4, 2, 3).float().div_(255.0)
        tensors = {k: to_device(v, device) for k, v in batch.items() if k != "obs"}
        return ObservationBatch(
            obs=obs.float(),
            prev_action=tensors["prev_action"],
            reward=tensors["reward"],
            cont=tensors["cont"],
            first=tensors["first"],
            mask=torch.ones(batch_size, seq_len, device=device),
        )
