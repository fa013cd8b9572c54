"""Which stage of a fixed agent's evaluation gives different numbers on different CPUs.

Issue 36: the same zoo weights score differently on different machines. This script plays one
real episode of a zoo entry (or run) and dumps every stage's output per step to ``.npz``:
the model frame the environment returns, V's latent ``z``, M's features ``h`` (what C sees
of M), C's action, and the reward. Given the dump of another configuration (``--reference``)
it also replays each stage alone on the reference's own inputs, so a difference can be pinned
to the stage that makes it instead of to everything downstream of the first changed action:

* env: Box2D and the renderer driven by the reference's actions (frames, rewards);
* V: the reference's frames encoded;
* M: the reference's z and actions stepped through the LSTM;
* C: the reference's [z, h] to actions.

Run it once per configuration (ISA, thread count), then ``compare`` two dumps::

    python scripts/isa_diff.py record zoo/carracing_quick /tmp/native.npz
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python scripts/isa_diff.py record zoo/carracing_quick /tmp/avx2.npz \\
        --reference /tmp/native.npz
    python scripts/isa_diff.py compare /tmp/native.npz /tmp/avx2.npz

To see what an Intel CPU would compute on an AMD one, build the shim and preload it
(``python scripts/isa_diff.py shim /tmp/intel_cpu.so``, then ``LD_PRELOAD=/tmp/intel_cpu.so``
before ``record`` or ``wmkit eval``; add ``MKL_ENABLE_INSTRUCTIONS=AVX2`` for an Intel AVX2
CPU). ``MKL_CBWR=COMPATIBLE`` makes MKL take one code path on every x86-64 CPU.

``wmkit eval`` plays every episode with one torch thread (``wmkit.rollouts.executor``);
``--threads`` sets another count to see what that would change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ISA_VARS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "LD_PRELOAD",
)
# MKL picks its kernels by vendor: on a non-Intel CPU it runs one generic path whatever the
# vector width, and ignores MKL_ENABLE_INSTRUCTIONS. This shim makes it take the path it would
# take on an Intel CPU of the same ISA (LD_PRELOAD; torch links MKL with these symbols public).
SHIM_C = """int mkl_serv_intel_cpu_true(void) { return 1; }
int mkl_serv_intel_cpu(void) { return 1; }
"""
CLOSED = ("frame", "z", "h", "action", "reward")  # the episode as the agent plays it
ALONE = ("env_frame", "env_reward", "v_z", "m_h", "c_action")  # each stage on reference inputs


def _agent_and_env(checkpoint: Path) -> tuple[Any, Any]:
    """The agent and the environment exactly as a ``wmkit eval`` worker builds them."""
    from wmkit.cli.runs import open_run
    from wmkit.core.plugins import get_registry
    from wmkit.core.recipe import load_recipe
    from wmkit.pipelines.runner import make_context
    from wmkit.rollouts.worker import context, init_worker

    run = open_run(checkpoint)
    recipe = load_recipe(run.recipe_path, [])
    ctx = make_context(recipe, get_registry(tuple(recipe.plugins)), run)
    init_worker(recipe.to_dict(), ctx.agent_weights())
    worker = context()
    return worker.agent(), worker.env()


def _play(agent: Any, env: Any, seed: int, steps: int) -> dict[str, np.ndarray]:
    """One episode, step for step as ``Agent.act`` and ``run_episode`` play it, keeping what
    each stage produced."""
    import torch

    frame, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    agent.reset(1)
    out: dict[str, list] = {k: [] for k in CLOSED}
    with torch.no_grad():
        for _ in range(steps):
            z = agent.encode(frame[None])
            h = agent.memory.features(agent.state)
            action = agent.controller.act(torch.cat([z, h], dim=1))
            _, agent.state = agent.memory.step(z, action, agent.state)
            act = action.cpu().numpy()[0]
            out["frame"].append(frame)
            out["z"].append(z[0].numpy())
            out["h"].append(h[0].numpy())
            out["action"].append(act)
            frame, reward, terminated, truncated, _ = env.step(act)
            out["reward"].append(reward)
            if terminated or truncated:
                break
    return {
        k: np.asarray(
            v, dtype=np.uint8 if k == "frame" else np.float32 if k != "reward" else np.float64
        )
        for k, v in out.items()
    }


def _alone(agent: Any, env: Any, seed: int, ref: Any) -> dict[str, np.ndarray]:
    """Each stage on the reference's inputs: what it alone makes of identical data."""
    import torch

    frames, zs, hs, actions = ref["frame"], ref["z"], ref["h"], ref["action"]
    out: dict[str, list] = {k: [] for k in ALONE}
    frame, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for act in actions:
        out["env_frame"].append(frame)
        frame, reward, *_ = env.step(act)
        out["env_reward"].append(reward)
    agent.reset(1)
    with torch.no_grad():
        for t in range(len(actions)):
            out["v_z"].append(agent.encode(frames[t][None])[0].numpy())
            out["m_h"].append(agent.memory.features(agent.state)[0].numpy())
            z = torch.from_numpy(zs[t][None].copy())
            _, agent.state = agent.memory.step(
                z, torch.from_numpy(actions[t][None].copy()), agent.state
            )
            feats = torch.from_numpy(np.concatenate([zs[t], hs[t]])[None])
            out["c_action"].append(agent.controller.act(feats)[0].numpy())
    return {
        k: np.asarray(
            v,
            dtype=np.uint8 if k == "env_frame" else np.float64 if k == "env_reward" else np.float32,
        )
        for k, v in out.items()
    }


def record(args: argparse.Namespace) -> None:
    """Dump one episode (and, with ``--reference``, every stage alone) to ``args.out``."""
    import torch

    torch.set_num_threads(args.threads)
    agent, env = _agent_and_env(Path(args.checkpoint))
    start = time.perf_counter()
    data = _play(agent, env, args.seed, args.steps)
    if args.reference:
        with np.load(args.reference) as ref:
            data.update(_alone(agent, env, args.seed, ref))
    info = {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "env": {k: os.environ[k] for k in ISA_VARS if k in os.environ},
        "seed": args.seed,
        "steps": len(data["action"]),
        "return": float(data["reward"].sum()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    np.savez_compressed(args.out, info=json.dumps(info), **data)
    print(json.dumps(info))


def _first_difference(a: np.ndarray, b: np.ndarray) -> tuple[int | None, float]:
    """First step whose values are not bit-identical, and the largest difference anywhere."""
    n = min(len(a), len(b))
    a, b = a[:n].reshape(n, -1), b[:n].reshape(n, -1)
    differs = np.flatnonzero((a != b).any(axis=1))
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return (int(differs[0]) if len(differs) else None), float(diff.max(initial=0.0))


def compare(args: argparse.Namespace) -> None:
    """For each stage: the first step that differs and the largest difference."""
    with np.load(args.a) as a, np.load(args.b) as b:
        info_a, info_b = json.loads(str(a["info"])), json.loads(str(b["info"]))
        print(f"A: {args.a} {json.dumps(info_a)}\nB: {args.b} {json.dumps(info_b)}")
        rows = []
        for key in CLOSED + ALONE:
            # A stage run alone in B is compared with the same stage of A's closed episode.
            ref_key = {
                "env_frame": "frame",
                "env_reward": "reward",
                "v_z": "z",
                "m_h": "h",
                "c_action": "action",
            }.get(key, key)
            if key not in b or ref_key not in a:
                continue
            first, biggest = _first_difference(a[ref_key], b[key])
            rows.append(
                {
                    "stage": key,
                    "first_diff_step": first,
                    "max_abs_diff": biggest,
                    "steps": int(min(len(a[ref_key]), len(b[key]))),
                }
            )
    for row in rows:
        print(json.dumps(row))


def shim(args: argparse.Namespace) -> None:
    """Compile the shim that makes MKL dispatch as on an Intel CPU (needs a C compiler)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "intel_cpu.c"
        src.write_text(SHIM_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", args.out, str(src)], check=True)
    print(f"LD_PRELOAD={Path(args.out).resolve()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="dump one episode's stages to .npz")
    rec.add_argument("checkpoint", help="zoo entry or run directory")
    rec.add_argument("out", help=".npz to write")
    rec.add_argument("--seed", type=int, default=1_000_000, help="episode seed (eval's first)")
    rec.add_argument("--steps", type=int, default=1000)
    rec.add_argument("--threads", type=int, default=1, help="torch threads (eval uses 1)")
    rec.add_argument("--reference", help="another dump: also run each stage on its inputs")
    cmp_ = sub.add_parser("compare", help="first differing step and max diff per stage")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    shim_ = sub.add_parser("shim", help="build an LD_PRELOAD library: MKL dispatches as on Intel")
    shim_.add_argument("out", help=".so to write")
    args = parser.parse_args(argv)
    {"record": record, "compare": compare, "shim": shim}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
