"""The epoch loop shared by V and M: resumable, logged, checkpointed after every epoch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from wmkit.core.errors import WmkitError
from wmkit.core.seeding import derive_seed
from wmkit.pipelines.stages.base import StageContext
from wmkit.record.metrics import MetricsLogger, read_metrics
from wmkit.record.plots import plot_curves
from wmkit.rollouts.components import load_component, save_component
from wmkit.storage import checkpoint


def _counted(batches: Iterable[Any], progress: Any, task: Any) -> Iterator[Any]:
    for batch in batches:
        yield batch
        progress.advance(task)


def _prefixed(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def train_epochs(
    ctx: StageContext,
    role: str,
    component: Any,
    make_batches: Callable[[int], Iterable[Any]],
    batches_per_epoch: int,
    epochs: int | None = None,
) -> list[dict[str, Any]]:
    """Train ``component`` until it has seen ``epochs`` epochs in all (``options.epochs``
    unless given), resuming after the last checkpointed epoch. Returns the metric rows."""
    epochs = epochs or getattr(ctx.recipe, role).options.epochs
    stem = ctx.run.checkpoints / role
    # Weights and optimizer state in one file, so that they always belong to the same epoch.
    resume_stem = ctx.run.checkpoints / f"{role}_resume"
    has_train_state = hasattr(component, "train_state_dict")
    start = 0
    if checkpoint.exists(resume_stem):
        tensors, meta = checkpoint.load_tensors(resume_stem)
        component.load_state_dict(_prefixed(tensors, "model."))
        if has_train_state:
            component.load_train_state_dict(_prefixed(tensors, "optim."))
        start = int(meta["epoch"])
    elif checkpoint.exists(stem):
        start = int(load_component(stem, component, role).get("epoch", 0))
    logger = MetricsLogger(
        ctx.run.metrics, ctx.run.tensorboard, f"fit_{role}", keep_until=start - 1
    )
    task = ctx.progress.add_task(
        f"fit {role}",
        total=epochs * batches_per_epoch,
        completed=start * batches_per_epoch,
        info="",
    )
    for epoch in range(start, epochs):
        torch.manual_seed(derive_seed(ctx.recipe.seed, f"{role}-epoch", epoch))
        t0 = time.time()
        if isinstance(component, torch.nn.Module):
            component.train()
        try:
            losses = component.fit_epoch(_counted(make_batches(epoch), ctx.progress, task))
        except RuntimeError as exc:  # torch: "value cannot be converted ... without overflow"
            if "overflow" not in str(exc):
                raise
            raise WmkitError(
                f"fit_{role}: {exc} at step {epoch}; training diverged (try a lower learning rate)"
            ) from None
        # An epoch may yield a few more or fewer batches than estimated; keep the bar honest.
        ctx.progress.update(task, completed=(epoch + 1) * batches_per_epoch)
        logger.log(epoch, **losses, seconds=round(time.time() - t0, 3))
        state = {f"model.{k}": v for k, v in component.state_dict().items()}
        if has_train_state:
            state.update({f"optim.{k}": v for k, v in component.train_state_dict().items()})
        checkpoint.save_tensors(resume_stem, state, {"role": role, "epoch": epoch + 1})
        save_component(stem, component, ctx.recipe, role, epoch=epoch + 1)
        shown = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        ctx.progress.update(task, info=f"epoch {epoch + 1}/{epochs} {shown}")
    logger.close()
    # Also when every epoch was already done (a repaired run): the final weights exist.
    save_component(stem, component, ctx.recipe, role, epoch=epochs)
    rows = read_metrics(logger.path)
    if rows:
        keys = [k for k in rows[-1] if k not in ("step", "seconds")]
        plot_curves(rows, keys, ctx.run.plots / f"{role}_loss.png", f"{role} training loss")
    if isinstance(component, torch.nn.Module):
        component.eval()
    return rows
