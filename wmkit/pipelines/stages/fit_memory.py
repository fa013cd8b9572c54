"""Stage 4: train M on latent sequences (z sampled afresh from V's posterior every epoch)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from wmkit.core.protocols import SequenceBatch
from wmkit.core.seeding import derive_seed
from wmkit.nn.host_to_device import prefetched, to_device
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.training import train_epochs
from wmkit.rollouts.components import build_memory
from wmkit.storage.store import RolloutStore, sequence_chunks


def collate(chunks: list[dict[str, np.ndarray]], device: torch.device) -> SequenceBatch:
    """Stack chunks into a batch, cut after its longest row's last real step: a Memory reads
    time forwards and masks padding out of every loss, so the steps cut change nothing."""
    steps = max(int(np.flatnonzero(c["mask"])[-1]) + 1 for c in chunks)

    def stack(key: str) -> torch.Tensor:
        return to_device(np.stack([c[key][:steps] for c in chunks]), device)

    return SequenceBatch(
        stack("z"),
        stack("action"),
        stack("reward").float(),
        stack("done").float(),
        stack("mask").float(),
    )


def similar_lengths(
    chunks: Iterable[dict[str, np.ndarray]],
    batch_size: int,
    rng: np.random.Generator,
    pool_batches: int = 16,
) -> Iterator[list[dict[str, np.ndarray]]]:
    """Batches of chunks of similar real length, in random order (``batch_by_length``). Short
    episodes padded to a long ``seq_len`` (Doom: 500 steps for episodes of ~300) then cost
    little more than their own steps once ``collate`` cuts the padding every row has. The
    price: the chunks holding episode ends are short, so they are batched together."""
    pool: list[dict[str, np.ndarray]] = []

    def drain() -> Iterator[list[dict[str, np.ndarray]]]:
        pool.sort(key=lambda c: int(c["mask"].sum()))
        groups = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
        for i in rng.permutation(len(groups)):
            yield groups[i]
        pool.clear()

    for chunk in chunks:
        pool.append(chunk)
        if len(pool) == batch_size * pool_batches:
            yield from drain()
    if pool:
        yield from drain()


def in_order(
    chunks: Iterable[dict[str, np.ndarray]], batch_size: int
) -> Iterator[list[dict[str, np.ndarray]]]:
    """Batches of chunks as they come (``sequence_chunks`` shuffles them)."""
    batch: list[dict[str, np.ndarray]] = []
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def fit_memory(ctx: StageContext, epochs: int | None = None) -> dict:
    """Train M on every latent sequence until it has seen ``epochs`` epochs in all
    (``memory.epochs`` unless given; later rounds of ``iterate`` give more)."""
    latents = RolloutStore(ctx.run.latents)
    options = ctx.recipe.memory.options
    latent_dim = int(latents.load(latents.infos()[0].episode)["mu"].shape[1])
    torch.manual_seed(derive_seed(ctx.recipe.seed, "memory-init"))
    memory = build_memory(ctx.recipe, ctx.registry, latent_dim, ctx.spec).to(ctx.device)

    def batches(epoch: int):
        rng = np.random.default_rng(derive_seed(ctx.recipe.seed, "memory-data", epoch))
        chunks = sequence_chunks(latents, options.seq_len, rng)
        if options.batch_by_length:
            groups = similar_lengths(chunks, options.batch_size, rng)
        else:
            groups = in_order(chunks, options.batch_size)
        yield from prefetched((collate(group, ctx.device) for group in groups), ctx.device)

    # About how many chunks an epoch has (the padding is random), for the progress bar.
    chunks = sum(
        1 if info.steps <= options.seq_len else math.ceil(info.steps / options.seq_len + 0.5)
        for info in latents.infos()
    )
    per_epoch = math.ceil(chunks / options.batch_size)
    rows = train_epochs(ctx, "memory", memory, batches, per_epoch, epochs)
    return {"epochs": len(rows), "final": rows[-1] if rows else {}}
