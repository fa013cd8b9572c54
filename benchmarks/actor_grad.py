"""Which actor gradient (``actor_critic.actor_grad``) suits a recipe, measured on one run's
world model rather than assumed.

Loads an online run's latest resume checkpoint (world model, actor, critic, optimizer
moments) and its episodes, then for each estimator (reinforce, dynamics, mix), from that
same starting point and on the same replayed batches:

* ``grad_snr``: the actor's gradient on ``--batches`` independent batches, with no entropy
  bonus (its gradient is nearly the same on every batch and would flatter an estimator with
  a small gradient of its own): the norm of their mean over the root mean square of their
  spread. A noisier estimator needs smaller or more steps for the same progress;
* ``--steps`` successive actor-critic updates (the world model held fixed), then the
  imagined return and entropy share on one held-out batch with the same random numbers,
  before and after (``before``, ``after``), and the seconds per update.

Prints one JSON line per estimator.

    .venv/bin/python benchmarks/actor_grad.py --run runs/carracing_dreamer [--batches 6]
        [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.pipelines.runner import make_context
from wmkit.rollouts.world_model_agent import RESUME, build_agent_parts, load_agent, prefixed
from wmkit.storage import checkpoint
from wmkit.storage.checkpoint import cpu_name
from wmkit.storage.replay import Replay
from wmkit.storage.rundir import RunDir
from wmkit.storage.store import RolloutStore


def parts(recipe, registry, spec, tensors, estimator: str, entropy: float):
    """The run's world model, actor and actor-critic as last saved, with ``estimator``."""
    recipe.optimizer.options.actor_grad = estimator
    recipe.optimizer.options.entropy = entropy
    world_model, actor, optimizer = build_agent_parts(recipe, registry, spec)
    load_agent(tensors, world_model, actor)
    optimizer.load_state_dict(prefixed(tensors, "optimizer."))
    return world_model.eval(), actor, optimizer


def starts(world_model, replay: Replay, recipe, seed: int):
    """Filtered states of one replayed batch: where the actor-critic imagines from."""
    options = recipe.world_model.options
    batch = replay.sample(np.random.default_rng(seed), options.batch_size, options.seq_len, "cpu")
    with torch.no_grad():
        return world_model.loss(batch)[1]


def held_out(world_model, optimizer, start) -> dict[str, float]:
    """The actor's imagined return and entropy share from ``start``, same random numbers."""
    torch.manual_seed(12345)
    with torch.no_grad():
        traj = optimizer.imagine(world_model, start)
        dist = optimizer.actor.distribution(traj["features"][:, :-1].flatten(0, 1))
    discount = optimizer.options.gamma ** torch.arange(traj["reward"].shape[1] - 1)
    return {
        "imagined_reward": round(float((traj["reward"][:, 1:] * discount).sum(1).mean()), 4),
        "entropy_share": round(float(dist.entropy_share().mean()), 4),
    }


def measure(recipe, registry, spec, tensors, replay, estimator: str, batches: int, steps: int):
    entropy = recipe.optimizer.options.entropy
    grads = []
    for b in range(batches):
        world_model, actor, optimizer = parts(recipe, registry, spec, tensors, estimator, 0.0)
        start = starts(world_model, replay, recipe, 1000 + b)
        torch.manual_seed(b)
        optimizer.update(world_model, start)  # leaves the actor's gradient in .grad
        grads.append(torch.cat([p.grad.flatten() for p in actor.parameters()]))
    g = torch.stack(grads)
    spread = (g - g.mean(0)).pow(2).sum(1).mean().sqrt()
    world_model, actor, optimizer = parts(recipe, registry, spec, tensors, estimator, entropy)
    evaluation = starts(world_model, replay, recipe, 999)
    before = held_out(world_model, optimizer, evaluation)
    seconds = []
    for s in range(steps):
        start = starts(world_model, replay, recipe, 2000 + s)
        torch.manual_seed(100 + s)
        t0 = time.perf_counter()
        optimizer.update(world_model, start)
        seconds.append(time.perf_counter() - t0)
    return {
        "estimator": estimator,
        "grad_snr": round(float(g.mean(0).norm() / spread), 4),
        "grad_norm": round(float(g.norm(dim=1).mean()), 5),
        "before": before,
        "after": held_out(world_model, optimizer, evaluation),
        "update_s": round(float(np.median(seconds)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="An online run with a resume checkpoint.")
    parser.add_argument("--batches", type=int, default=6, help="Batches for the gradient SNR.")
    parser.add_argument("--steps", type=int, default=20, help="Successive updates per estimator.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = get_registry()
    run = RunDir(Path(args.run))
    recipe = load_recipe(run.recipe_path, None, registry)
    ctx = make_context(recipe, registry, run)
    tensors, meta = checkpoint.load_tensors(run.checkpoints / RESUME)
    store = RolloutStore(run.rollouts)
    replay = Replay(recipe.pipeline.options.replay_capacity)
    for info in store.infos():
        replay.add(store.load(info.episode))
    for estimator in ("reinforce", "dynamics", "mix"):
        row = measure(
            recipe, registry, ctx.spec, tensors, replay, estimator, args.batches, args.steps
        )
        row.update(run=str(run.root), updates=int(meta["updates"]), cpu=cpu_name())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
