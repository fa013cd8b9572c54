"""CarRacing speed: gymnasium's CarRacing-v3 vs wmkit's pixel-identical wmkit/CarRacing-v3.

Prints one JSON line: steps per second of each, in one process and with every core (one
process per core), and the ratios, all measured in this one run. The single-process pair is
measured ``--rounds`` times, alternating, and the median ratio is reported beside each
round's, because one round on a shared 2-core VM can be off by 10%.

    .venv/bin/python benchmarks/env.py [--steps 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np


def steps_per_second(env_id: str, steps: int, seed: int = 0) -> float:
    import gymnasium
    import wmkit_fastcar

    if env_id == wmkit_fastcar.ENV_ID and env_id not in gymnasium.registry:
        gymnasium.register(
            env_id, entry_point="wmkit_fastcar:FastCarRacing", max_episode_steps=1000
        )
    env = gymnasium.make(env_id)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(steps):
        # Mostly throttle with some steering, so the car moves along the track.
        action = np.array([rng.uniform(-0.3, 0.3), 0.6, 0.0], np.float32)
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset(seed=seed)
    rate = steps / (time.perf_counter() - t)
    env.close()
    return rate


def _worker(args: tuple[str, int, int]) -> float:
    return steps_per_second(*args)


def parallel_rate(env_id: str, steps: int, workers: int) -> float:
    with mp.get_context("spawn").Pool(workers) as pool:
        t = time.perf_counter()
        pool.map(_worker, [(env_id, steps, i) for i in range(workers)])
        return workers * steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rounds = []
    for _ in range(args.rounds):
        gym = steps_per_second("CarRacing-v3", args.steps)
        fast = steps_per_second("wmkit/CarRacing-v3", args.steps)
        rounds.append((gym, fast))
    ratios = [fast / gym for gym, fast in rounds]
    # The round with the median ratio gives the single-process figures.
    gym1, fast1 = rounds[int(np.argsort(ratios)[len(ratios) // 2])]
    gymn = parallel_rate("CarRacing-v3", args.steps, cores)
    fastn = parallel_rate("wmkit/CarRacing-v3", args.steps, cores)
    print(
        json.dumps(
            {
                "benchmark": "env",
                "cores": cores,
                "steps": args.steps,
                "gymnasium_steps_per_s": round(gym1, 1),
                "fast_steps_per_s": round(fast1, 1),
                "gymnasium_all_cores_steps_per_s": round(gymn, 1),
                "fast_all_cores_steps_per_s": round(fastn, 1),
                "fast_vs_gymnasium": round(fast1 / gym1, 2),
                "fast_vs_gymnasium_rounds": [round(r, 2) for r in ratios],
                "fast_all_cores_vs_gymnasium_single": round(fastn / gym1, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
