"""What one step of an online (Dreamer-line) recipe costs, and what its whole run will take.

Builds the recipe's world model, actor and actor-critic, fills a replay with a few episodes
of the recipe's random collection policy, then times on the CPU, at 1 thread and at
``--threads`` threads in this same run:

* a training step: the world model on a batch of real sequences (``fit_batch``), then the
  actor-critic in its dream from every state of that batch (``update``), each timed apart;
* an agent step in the real environment: the world model filters the frame, the actor acts,
  the environment steps.

From those it projects the recipe's ``train_online`` (``updates x step + env_steps x agent
step``), which is most of a run; collection and the final evaluation add a few minutes.
Prints one JSON line per variant and a last one with the ratios.

With ``--device cuda`` the two variants are instead the eager imagination and the one
replayed as a CUDA graph (``dream.graph``), at torch's threads: ``graph_speedup`` is the
actor-critic's time eager over graphed (the first two steps, the graph's warm-up and its
recording, are not counted).

    .venv/bin/python benchmarks/online.py [--recipe recipes/doom_takecover_dreamer.yaml]
        [--updates 8] [--episodes 3] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.pipelines.runner import make_context
from wmkit.rollouts.agent import WorldModelPolicy
from wmkit.rollouts.envs import make_env
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import recipe_policy
from wmkit.rollouts.world_model_agent import build_agent_parts
from wmkit.storage.checkpoint import cpu_name
from wmkit.storage.replay import Replay
from wmkit.storage.rundir import RunDir


def timed(
    threads: int,
    recipe,
    registry,
    spec,
    replay: Replay,
    updates: int,
    env,
    device: str,
    graph: bool,
) -> dict:
    """Seconds per training step (world model, actor-critic) and per agent step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    world_model, actor, optimizer = build_agent_parts(recipe, registry, spec)
    optimizer.graph = graph
    for part in (world_model, actor, optimizer):
        part.to(device)
    options = recipe.world_model.options
    rng = np.random.default_rng(0)
    wm_seconds = ac_seconds = 0.0
    for i in range(updates + 2):  # two steps warm up (and record a graph): not counted
        batch = replay.sample(rng, options.batch_size, options.seq_len, device)
        sync(device)
        t0 = time.perf_counter()
        world_model.train()
        _, starts = world_model.fit_batch(batch)
        world_model.eval()
        sync(device)
        t1 = time.perf_counter()
        optimizer.update(world_model, starts)
        sync(device)
        t2 = time.perf_counter()
        if i >= 2:
            wm_seconds += t1 - t0
            ac_seconds += t2 - t1
    policy = WorldModelPolicy(world_model, actor, spec.action_dim, explore=True, device=device)
    t0, steps = time.perf_counter(), 0
    for seed in range(2):
        steps += run_episode(env, policy, 10_000 + seed, None, record=False).steps
    return {
        "threads": threads,
        "graph": graph,
        "world_model_s": wm_seconds / updates,
        "actor_critic_s": ac_seconds / updates,
        "update_s": (wm_seconds + ac_seconds) / updates,
        "agent_step_ms": 1000 * (time.perf_counter() - t0) / steps,
    }


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that a clock reading covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/doom_takecover_dreamer.yaml")
    parser.add_argument("--updates", type=int, default=8, help="Timed training steps.")
    parser.add_argument("--episodes", type=int, default=3, help="Random episodes to replay.")
    parser.add_argument("--threads", type=int, default=2, help="Compared with 1 thread.")
    parser.add_argument(
        "--device", default="cpu", help="cpu: 1 vs --threads threads; cuda: eager vs graphed."
    )
    args = parser.parse_args()
    on_cuda = torch.device(args.device).type == "cuda"
    variants = [(args.threads, False), (args.threads, True)] if on_cuda else [
        (1, False), (args.threads, False)]  # fmt: skip

    registry = get_registry()
    recipe = load_recipe(Path(args.recipe), None, registry)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = make_context(recipe, registry, RunDir(Path(tmp)))
        env = make_env(recipe.env, registry)
        replay = Replay(recipe.pipeline.options.replay_capacity)
        for seed in range(args.episodes):
            random = recipe_policy(recipe.collect.policy, ctx.spec, seed, recipe.collect)
            replay.add(run_episode(env, random, seed, None, record_last=True).arrays())
        options = recipe.pipeline.options
        per_update = recipe.world_model.options.batch_size * recipe.world_model.options.seq_len
        updates = int(options.env_steps * options.train_ratio / per_update)
        rows = []
        for threads, graph in variants:
            row = timed(
                threads, recipe, registry, ctx.spec, replay, args.updates, env, args.device, graph
            )
            row["train_online_min"] = (
                updates * row["update_s"] + options.env_steps * row["agent_step_ms"] / 1000
            ) / 60
            rows.append(row)
            print(json.dumps({"recipe": recipe.name, "device": args.device, **rounded(row)}))
        env.close()
    one, many = rows
    print(
        json.dumps(
            {
                "recipe": recipe.name,
                "updates": updates,
                "env_steps": options.env_steps,
                "update_speedup": round(one["update_s"] / many["update_s"], 3),
                "agent_step_speedup": round(one["agent_step_ms"] / many["agent_step_ms"], 3),
                "actor_critic_share": round(many["actor_critic_s"] / many["update_s"], 3),
                "graph_speedup": (
                    round(one["actor_critic_s"] / many["actor_critic_s"], 3) if on_cuda else None
                ),
                "device": torch.cuda.get_device_name(args.device) if on_cuda else "cpu",
                "cpu": cpu_name(),
                "torch": torch.__version__,
            }
        )
    )


def rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


if __name__ == "__main__":
    main()
