"""Stage 3: encode every rollout to latent mean and log-variance, one shard per episode."""

from __future__ import annotations

import numpy as np
import torch

from wmkit.pipelines.stages.base import StageContext
from wmkit.rollouts.agent import frames_to_tensor
from wmkit.rollouts.components import build_vision, load_component
from wmkit.storage.store import RolloutStore


@torch.no_grad()
def encode_dataset(ctx: StageContext, chunk: int = 1000) -> dict:
    rollouts = RolloutStore(ctx.run.rollouts)
    latents = RolloutStore(ctx.run.latents)
    vision = build_vision(ctx.recipe, ctx.registry, ctx.spec)
    load_component(ctx.run.checkpoints / "vision", vision, "vision")
    vision.to(ctx.device).eval()
    todo = [info for info in rollouts.infos() if not latents.has(info.episode)]
    task = ctx.progress.add_task(
        "encode", total=len(rollouts), completed=len(rollouts) - len(todo), info=""
    )
    for info in todo:
        ep = rollouts.load(info.episode)
        mus, logvars = [], []
        for start in range(0, len(ep["frames"]), chunk):
            mu, logvar = vision.encode(
                frames_to_tensor(ep["frames"][start : start + chunk], ctx.device)
            )
            mus.append(mu.cpu().numpy())
            logvars.append(logvar.cpu().numpy())
        arrays = {
            "mu": np.concatenate(mus).astype(np.float32),
            "logvar": np.concatenate(logvars).astype(np.float32),
            "action": ep["action"],
            "reward": ep["reward"],
            "done": ep["done"],
        }
        latents.add(latents.write_episode(info.episode, arrays))
        ctx.progress.advance(task)
    return {"episodes": len(latents)}
