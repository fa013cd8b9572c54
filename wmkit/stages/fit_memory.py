"""Stage 4: train M on latent sequences (z sampled afresh from V's posterior every epoch)."""

from __future__ import annotations

import math

import numpy as np
import torch

from wmkit.components import build_memory
from wmkit.protocols import SequenceBatch
from wmkit.seeding import derive_seed
from wmkit.stages.base import StageContext
from wmkit.stages.training import train_epochs
from wmkit.store import RolloutStore, sequence_chunks


def collate(chunks: list[dict[str, np.ndarray]], device: torch.device) -> SequenceBatch:
    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([c[key] for c in chunks])).to(device)

    return SequenceBatch(
        stack("z"),
        stack("action"),
        stack("reward").float(),
        stack("done").float(),
        stack("mask").float(),
    )


def fit_memory(ctx: StageContext) -> dict:
    latents = RolloutStore(ctx.run.latents)
    options = ctx.recipe.memory.options
    latent_dim = int(latents.load(latents.infos()[0].episode)["mu"].shape[1])
    torch.manual_seed(derive_seed(ctx.recipe.seed, "memory-init"))
    memory = build_memory(ctx.recipe, ctx.registry, latent_dim, ctx.spec).to(ctx.device)

    def batches(epoch: int):
        rng = np.random.default_rng(derive_seed(ctx.recipe.seed, "memory-data", epoch))
        buffer: list[dict[str, np.ndarray]] = []
        for chunk in sequence_chunks(latents, options.seq_len, rng):
            buffer.append(chunk)
            if len(buffer) == options.batch_size:
                yield collate(buffer, ctx.device)
                buffer = []
        if buffer:
            yield collate(buffer, ctx.device)

    # About how many chunks an epoch has (the padding is random), for the progress bar.
    chunks = sum(
        max(round((info.steps + options.seq_len / 2) / options.seq_len), 1)
        for info in latents.infos()
    )
    rows = train_epochs(ctx, "memory", memory, batches, math.ceil(chunks / options.batch_size))
    return {"epochs": len(rows), "final": rows[-1] if rows else {}}
