"""Stage 2: train V on the collected frames, streaming shards in bounded memory."""

from __future__ import annotations

import math

import numpy as np
import torch

from wmkit.core.seeding import derive_seed
from wmkit.nn.host_to_device import prefetched
from wmkit.pipelines.stages.base import StageContext
from wmkit.pipelines.stages.training import train_epochs
from wmkit.record.plots import image_grid
from wmkit.rollouts.agent import frames_to_tensor
from wmkit.rollouts.components import build_vision
from wmkit.storage.store import RolloutStore, frame_batches


def fit_vision(ctx: StageContext) -> dict:
    store = RolloutStore(ctx.run.rollouts)
    options = ctx.recipe.vision.options
    torch.manual_seed(derive_seed(ctx.recipe.seed, "vision-init"))
    vision = build_vision(ctx.recipe, ctx.registry, ctx.spec).to(ctx.device)

    def batches(epoch: int):
        rng = np.random.default_rng(derive_seed(ctx.recipe.seed, "vision-data", epoch))
        frames = frame_batches(store, options.batch_size, rng)
        yield from prefetched((frames_to_tensor(f, ctx.device) for f in frames), ctx.device)

    per_epoch = math.ceil(store.total_steps() / options.batch_size)
    rows = train_epochs(ctx, "vision", vision, batches, per_epoch)
    plot_reconstructions(ctx, vision, store)
    return {"epochs": len(rows), "final": rows[-1] if rows else {}}


@torch.no_grad()
def plot_reconstructions(ctx: StageContext, vision, store: RolloutStore, n: int = 8) -> None:
    """Real frames above what V makes of them: the quickest check that V learned anything."""
    episode = store.load(store.infos()[0].episode)["frames"]
    real = episode[np.linspace(0, len(episode) - 1, n).astype(int)]
    mu, _ = vision.encode(frames_to_tensor(real, ctx.device))
    decoded = vision.decode(mu).clamp(0, 1).mul(255).byte().permute(0, 2, 3, 1).cpu().numpy()
    image_grid(
        [real, decoded],
        ["real", "decoded"],
        ctx.run.plots / "reconstructions.png",
        "V: real (top) vs decoded (bottom)",
    )
