"""Executors: what running rollouts through ``local`` processes or ``ray`` costs.

Prints one JSON line, every ratio measured within this one run:

* per-task overhead: milliseconds per no-op task through each executor, all workers busy,
  and the seconds a stage's first tasks take (starting workers, sending recipe and weights);
* real-environment fitness episodes per second with each executor: V + M + C of the paper's
  sizes (``recipes/carracing_ha2018.yaml``, untrained, with CMA-ES-like random controllers)
  on ``wmkit/CarRacing-v3``, ``--steps`` steps per episode; and the same in one process,
  which gives the steps per second per core that docs/cluster.md projects from;
* bytes moved per collected episode: the arrays a collection task returns (one episode of
  the paper's collection policy, ``--collect-steps`` steps), pickled as they travel, against
  the compressed shard the driver writes, and the seconds the driver spends writing it; also
  the bytes of one fitness task and of the weights a stage sends once.

    .venv/bin/python benchmarks/executor.py [--episodes 8] [--steps 300] [--tasks 200]
        [--collect-steps 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.pipelines.stages.collect import collect_one
from wmkit.pipelines.stages.fit_controller import fitness_rollout
from wmkit.rollouts.components import agent_weights, build_controller, build_memory, build_vision
from wmkit.rollouts.envs import env_spec, make_env
from wmkit.rollouts.worker import init_worker
from wmkit.storage.store import RolloutStore

PAPER = Path(__file__).parents[1] / "recipes" / "carracing_ha2018.yaml"


def noop(task: int) -> int:
    return task


def timed_map(executor, fn, tasks) -> float:
    t = time.perf_counter()
    for _ in executor.map(fn, tasks):
        pass
    return time.perf_counter() - t


def median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=8, help="fitness episodes per executor")
    parser.add_argument("--steps", type=int, default=300, help="steps per fitness episode")
    parser.add_argument("--collect-steps", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=200, help="no-op tasks per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    overrides = [
        f"workers={cores}",
        f"optimizer.max_steps={args.steps}",
        f"collect.max_steps={args.collect_steps}",
    ]
    recipe = load_recipe(PAPER, overrides)
    registry = get_registry()
    env = make_env(recipe.env, registry)
    spec = env_spec(env)
    env.close()
    torch.manual_seed(0)
    vision = build_vision(recipe, registry, spec)
    memory = build_memory(recipe, registry, vision.latent_dim, spec)
    controller = build_controller(recipe, registry, vision.latent_dim + memory.feature_dim, spec)
    weights = agent_weights(vision, memory)
    rng = np.random.default_rng(0)
    fitness = [
        (rng.standard_normal(controller.num_params) * 0.1, 1000 + i) for i in range(args.episodes)
    ]
    setup = (recipe.to_dict(), weights)

    # One process: the rate a core gives. CPU seconds as well as wall seconds, because on a
    # shared machine the wall clock also counts other people's work.
    init_worker(*setup)
    fitness_rollout(fitness[0])  # builds the env and the agent
    wall, cpu = time.perf_counter(), time.process_time()
    total_steps = sum(fitness_rollout(task)[1] for task in fitness)
    one_wall = total_steps / (time.perf_counter() - wall)
    one_cpu = total_steps / (time.process_time() - cpu)

    # Bytes moved per collected episode (the paper's collection policy) and its shard.
    arrays = collect_one((0, 7))
    moved = len(pickle.dumps(arrays, protocol=5))
    with tempfile.TemporaryDirectory() as tmp:
        store = RolloutStore(Path(tmp))
        t, cpu = time.perf_counter(), time.process_time()
        info = store.write_episode(0, arrays)
        write_s, write_cpu = time.perf_counter() - t, time.process_time() - cpu

    import ray
    from wmkit_ray import RayExecutor, RayOptions

    from wmkit.rollouts.executor import LocalExecutor

    # Ray starts its workers 15 nice levels down by default; the local workers are not, and
    # on a shared machine that alone would make ray look ~3x slower here.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=cores, log_to_driver=False)
    executors = {
        "local": LocalExecutor(LocalExecutor.Options(), cores, init_worker, setup, 900.0, 2),
        "ray": RayExecutor(RayOptions(), cores, init_worker, setup, 900.0, 2),
    }
    first, noop_s, fitness_s = {}, {k: [] for k in executors}, {k: [] for k in executors}
    for name, executor in executors.items():  # start the workers: once per stage
        first[name] = timed_map(executor, fitness_rollout, fitness[:cores])
    for _ in range(args.rounds):  # then alternate, all workers busy
        for name, executor in executors.items():
            noop_s[name].append(timed_map(executor, noop, list(range(args.tasks))) / args.tasks)
            fitness_s[name].append(timed_map(executor, fitness_rollout, fitness))
    for executor in executors.values():
        executor.close()
    ray.shutdown()

    def per_core(name: str) -> float:
        return total_steps / median(fitness_s[name]) / cores

    eps = {name: args.episodes / median(fitness_s[name]) for name in executors}
    # Episodes per second, ray over local, round by round (seconds, local over ray).
    ratios = [local_s / ray_s for ray_s, local_s in zip(fitness_s["ray"], fitness_s["local"])]
    print(
        json.dumps(
            {
                "benchmark": "executor",
                "cores": cores,
                "torch": torch.__version__,
                "ray": ray.__version__,
                "rounds": args.rounds,
                "fitness_episodes": args.episodes,
                "fitness_steps_per_episode": round(total_steps / args.episodes, 1),
                "one_process_steps_per_s": round(one_wall, 1),
                "one_process_steps_per_cpu_s": round(one_cpu, 1),
                "local_noop_task_ms": round(median(noop_s["local"]) * 1e3, 2),
                "ray_noop_task_ms": round(median(noop_s["ray"]) * 1e3, 2),
                "local_start_s": round(first["local"], 2),
                "ray_start_s": round(first["ray"], 2),
                "local_fitness_episodes_per_s": round(eps["local"], 3),
                "ray_fitness_episodes_per_s": round(eps["ray"], 3),
                "local_steps_per_s_per_core": round(per_core("local"), 1),
                "ray_steps_per_s_per_core": round(per_core("ray"), 1),
                "ray_vs_local_fitness": round(eps["ray"] / eps["local"], 3),
                "ray_vs_local_fitness_rounds": [round(r, 3) for r in ratios],
                "collected_episode_steps": info.steps,
                "collected_episode_bytes_moved": moved,
                "collected_episode_shard_bytes": info.bytes,
                "shard_vs_moved": round(info.bytes / moved, 3),
                "driver_write_s_per_episode": round(write_s, 3),
                "driver_write_cpu_s_per_episode": round(write_cpu, 3),
                "fitness_task_bytes": len(pickle.dumps(fitness[0], protocol=5)),
                "stage_weights_bytes": weights.nbytes,
            }
        )
    )


if __name__ == "__main__":
    main()
