"""V and M training speed: float32 against bf16 autocast (and V's channels_last).

Prints one JSON line per model. Batches are made in NumPy and reach the device as in the
stages (``wmkit.nn.host_to_device``: pinned, one ahead, on CUDA), so the figures include the
copies. Ratios are measured within this one run, on whatever device it finds (CUDA if
present); on a CPU bf16 is emulated and slow, so only ``--quick`` is meant for one.

    .venv/bin/python benchmarks/train.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions
from wmkit_vae import ConvVAE, ConvVAEOptions

from wmkit.core.protocols import SequenceBatch
from wmkit.nn.host_to_device import prefetched, to_device
from wmkit.rollouts.agent import frames_to_tensor

Z, A = 32, 3  # the paper's CarRacing sizes


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def vae_rate(device, batch: int, steps: int, **options) -> tuple[float, float]:
    """Frames per second over ``steps`` Adam steps (after two warm-up steps), final loss."""
    torch.manual_seed(0)
    vae = ConvVAE(ConvVAEOptions(batch_size=batch, **options), (3, 64, 64)).to(device)
    rng = np.random.default_rng(0)
    host = [rng.integers(0, 256, (batch, 64, 64, 3), dtype=np.uint8) for _ in range(4)]

    def batches(n: int):
        return prefetched((frames_to_tensor(host[i % 4], device) for i in range(n)), device)

    vae.fit_epoch(batches(2))
    sync(device)
    t = time.perf_counter()
    loss = vae.fit_epoch(batches(steps))["loss"]
    sync(device)
    return batch * steps / (time.perf_counter() - t), loss


def mdn_rate(device, batch: int, seq_len: int, steps: int, **options) -> tuple[float, float]:
    """Sequences per second over ``steps`` Adam steps (after two warm-up steps), final loss."""
    torch.manual_seed(0)
    mdn = MDNRNN(MDNRNNOptions(batch_size=batch, **options), Z, A).to(device)

    def one(i: int) -> SequenceBatch:
        r = np.random.default_rng(i % 4)
        done = np.zeros((batch, seq_len), np.float32)
        done[:, -1] = 1
        return SequenceBatch(
            to_device(r.standard_normal((batch, seq_len, Z)).astype(np.float32), device),
            to_device(r.uniform(-1, 1, (batch, seq_len, A)).astype(np.float32), device),
            to_device(r.standard_normal((batch, seq_len)).astype(np.float32), device),
            to_device(done, device),
            to_device(np.ones((batch, seq_len), np.float32), device),
        )

    mdn.fit_epoch(prefetched((one(i) for i in range(2)), device))
    sync(device)
    t = time.perf_counter()
    loss = mdn.fit_epoch(prefetched((one(i) for i in range(steps)), device))["loss"]
    sync(device)
    return batch * steps / (time.perf_counter() - t), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(device) if device.type == "cpu" else torch.cuda.get_device_name()
    if args.quick:
        vae_batch, vae_steps, mdn_batch, seq_len, mdn_steps = 4, 3, 8, 32, 3
    else:
        vae_batch, vae_steps, mdn_batch, seq_len, mdn_steps = 256, 40, 100, 100, 40

    v = {
        label: vae_rate(device, vae_batch, vae_steps, **options)
        for label, options in [
            ("fp32", {}),
            ("bf16", {"precision": "bf16"}),
            ("bf16_channels_last", {"precision": "bf16", "channels_last": True}),
        ]
    }
    print(
        json.dumps(
            {
                "benchmark": "train_vision",
                "device": name,
                "batch": vae_batch,
                "steps": vae_steps,
                **{f"{k}_frames_per_s": round(rate, 1) for k, (rate, _) in v.items()},
                **{f"{k}_loss": round(loss, 3) for k, (_, loss) in v.items()},
                "bf16_vs_fp32": round(v["bf16"][0] / v["fp32"][0], 2),
                "bf16_channels_last_vs_fp32": round(v["bf16_channels_last"][0] / v["fp32"][0], 2),
            }
        ),
        flush=True,
    )
    m = {
        label: mdn_rate(device, mdn_batch, seq_len, mdn_steps, **options)
        for label, options in [("fp32", {}), ("bf16", {"precision": "bf16"})]
    }
    print(
        json.dumps(
            {
                "benchmark": "train_memory",
                "device": name,
                "batch": mdn_batch,
                "seq_len": seq_len,
                "steps": mdn_steps,
                **{f"{k}_sequences_per_s": round(rate, 1) for k, (rate, _) in m.items()},
                **{f"{k}_loss": round(loss, 3) for k, (_, loss) in m.items()},
                "bf16_vs_fp32": round(m["bf16"][0] / m["fp32"][0], 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
