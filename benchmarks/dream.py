"""Dream throughput vs a per-rollout loop, the real environment and the matmul roofline.

Prints one JSON line. Every ratio is measured within this one run, on whatever device it
finds (CUDA if present), because absolute speeds on shared machines are noisy. On CUDA the
dream is timed twice, eager and graphed (``dream.graph``: steps replayed as CUDA graphs, the
capture included in the time); on a CPU the graphed figures are null, with the reason.

    .venv/bin/python benchmarks/dream.py [--batch 1024] [--steps 50] [--no-real]
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium
import numpy as np
import torch
from wmkit_linear import LinearController, LinearControllerOptions
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

from wmkit.dreams.rollout import dream_rollout
from wmkit.storage.checkpoint import cpu_name

Z, H, K, A = 32, 256, 5, 3  # the paper's CarRacing sizes
LOW, HIGH = np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_step() -> int:
    """Multiply-adds x 2 of one agent's dream step: LSTM gates, MDN head, controller."""
    lstm = 2 * (Z + A + H) * 4 * H
    head = 2 * H * (Z * K * 3 + 2)
    controller = 2 * (Z + H) * A
    return lstm + head + controller


def matmul_rate(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def dream_rate(memory, controller, device, batch: int, steps: int, graph: bool = False) -> float:
    params = torch.randn(batch, controller.num_params, device=device) * 0.1
    z0 = torch.randn(batch, Z, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    dream_rollout(memory, controller, z0, params, 1.0, 40, 1.01, gen, graph=graph)  # warm-up
    sync(device)
    t = time.perf_counter()
    # done_threshold above 1: no episode ends, so exactly batch x steps steps are taken.
    result = dream_rollout(memory, controller, z0, params, 1.0, steps, 1.01, gen, graph=graph)
    sync(device)
    assert int(result.steps.sum()) == batch * steps
    return batch * steps / (time.perf_counter() - t)


@torch.no_grad()
def loop_rate(memory, controller, device, rollouts: int, steps: int) -> float:
    """The same work one rollout at a time: set each candidate, step it alone."""
    gen = torch.Generator(device=device).manual_seed(0)
    t = time.perf_counter()
    for _ in range(rollouts):
        controller.set_params(np.random.randn(controller.num_params) * 0.1)
        z, state = torch.randn(1, Z, device=device), memory.initial_state(1)
        for _ in range(steps):
            action = controller.act(torch.cat([z, memory.features(state)], dim=1))
            pred, state = memory.step(z, action, state)
            z = memory.sample(pred, 1.0, gen)
    sync(device)
    return rollouts * steps / (time.perf_counter() - t)


def real_rate(steps: int) -> float:
    env = gymnasium.make("CarRacing-v3")
    env.reset(seed=0)
    env.action_space.seed(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--loop-rollouts", type=int, default=8)
    parser.add_argument("--real-steps", type=int, default=300)
    parser.add_argument("--no-real", action="store_true", help="skip the CarRacing timing")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    memory = MDNRNN(MDNRNNOptions(hidden=H, gaussians=K), Z, A).to(device).eval()
    controller = LinearController(LinearControllerOptions(), Z + H, LOW, HIGH).to(device)

    matmul = matmul_rate(device)
    dream = dream_rate(memory, controller, device, args.batch, args.steps)
    graphed = None
    if device.type == "cuda":
        graphed = dream_rate(memory, controller, device, args.batch, args.steps, graph=True)
    loop = loop_rate(memory, controller, device, args.loop_rollouts, args.steps)
    real = None if args.no_real else real_rate(args.real_steps)
    roofline = matmul / flops_per_step()
    print(
        json.dumps(
            {
                "benchmark": "dream",
                "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
                "cpu": cpu_name(),
                "torch_threads": torch.get_num_threads(),
                "batch": args.batch,
                "dream_steps_per_s": round(dream),
                "loop_steps_per_s": round(loop, 1),
                "graphed_steps_per_s": None if graphed is None else round(graphed),
                "graphed_skipped": None if graphed else "no CUDA: CUDA graphs need a GPU",
                "real_env_steps_per_s": None if real is None else round(real, 1),
                "matmul_gflops": round(matmul / 1e9, 1),
                "flops_per_dream_step": flops_per_step(),
                "roofline_steps_per_s": round(roofline),
                "dream_vs_loop": round(dream / loop, 1),
                "dream_vs_real_env": None if real is None else round(dream / real, 1),
                "roofline_fraction": round(dream / roofline, 4),
                "graphed_roofline_fraction": None
                if graphed is None
                else round(graphed / roofline, 4),
                "graphed_vs_eager": None if graphed is None else round(graphed / dream, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
