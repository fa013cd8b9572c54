"""Dreams: rolling a Memory forward as if it were the environment.

A whole batch of imagined episodes is stepped at once on M's device: the only Python loop
is over time. Each step, the controller acts on [z, h], M predicts the next latent, the
reward and the probability that the episode ends, and the next z is sampled from M at
temperature tau (higher tau: a more uncertain, harder dream).

On a GPU a step is a few small matmuls, so issuing its ~40 kernels from Python costs more
than running them. ``graph=True`` records ``GRAPH_CHUNK`` steps once as a CUDA graph and
replays it: one launch per chunk, and one host sync per chunk (to stop once every episode has
ended) instead of one per step. The graphed steps are the eager ones, recorded: the same
kernels and the same random numbers (the generator is registered with the graph), so the
returns and lengths match the eager loop's. On a CPU the eager loop runs, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from wmkit.core.protocols import Controller, Memory
from wmkit.nn.cuda_graph import (
    Recorder,
    clone_tensors,
    copy_tensors,
    record_cuda_graph,
    side_stream,
)

# Steps recorded in one CUDA graph: a dream runs at most GRAPH_CHUNK - 1 steps past the end
# of its last episode (masked out, so they change nothing but the time taken).
GRAPH_CHUNK = 16


@dataclass
class DreamResult:
    """Per-episode returns and lengths of a batch of dreams."""

    returns: torch.Tensor
    steps: torch.Tensor


def batched_act(controller: Controller, params: torch.Tensor | None, features: torch.Tensor):
    """Actions for B agents that may each have their own parameter vector (params [B, P]).

    Controllers that implement ``act_batched`` do it in one batched call; for others, each
    row's parameters are set in turn (correct, but a Python loop over the batch).
    """
    if params is None:
        return controller.act(features)
    fast = getattr(controller, "act_batched", None)
    if fast is not None:
        return fast(params, features)
    out = []
    for i in range(len(params)):
        controller.set_params(params[i].cpu().numpy())
        out.append(controller.act(features[i : i + 1]))
    return torch.cat(out)


def dream_step(
    memory: Memory,
    controller: Controller,
    params: torch.Tensor | None,
    z: torch.Tensor,
    state: Any,
    alive: torch.Tensor,
    returns: torch.Tensor,
    steps: torch.Tensor,
    done_threshold: float,
):
    """One step of every dream: act on [z, h], step M, and count the reward and the step of
    each episode still running (``alive``, ``returns`` and ``steps`` are updated in place).
    Returns M's prediction, from which the next z is sampled, and M's new state."""
    features = torch.cat([z, memory.features(state)], dim=1)
    action = batched_act(controller, params, features)
    prediction, state = memory.step(z, action, state)
    returns += torch.where(alive, prediction.reward.float(), torch.zeros_like(returns))
    steps += alive.long()
    alive &= prediction.done < done_threshold
    return prediction, state


@torch.no_grad()
def dream_rollout(
    memory: Memory,
    controller: Controller,
    z0: torch.Tensor,
    params: torch.Tensor | None = None,
    temperature: float = 1.0,
    max_steps: int = 1000,
    done_threshold: float = 0.5,
    generator: torch.Generator | None = None,
    state: Any = None,
    graph: bool = False,
) -> DreamResult:
    """Dream B episodes from start latents ``z0`` [B, Z]; ``params`` [B, P] gives each its
    own controller parameters (one CMA-ES generation as one batch), or None for as-is.
    ``state`` is M's memory at the start (a fresh one unless given: wmkit.dreams.starts
    warms it up on the real steps before a start in mid-episode).

    An episode ends when M's done probability passes ``done_threshold`` or at ``max_steps``;
    rewards after the end are not counted. ``graph``: replay the steps as CUDA graphs when
    the tensors are on CUDA (see the module's docstring); ignored elsewhere.
    """
    batch = z0.shape[0]
    device = z0.device
    if state is None:
        state = memory.initial_state(batch)
    z = z0
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    returns = torch.zeros(batch, device=device)
    steps = torch.zeros(batch, dtype=torch.long, device=device)
    if graph and can_graph(controller, params, device):
        with torch.cuda.device(device):
            graphed_dream(
                memory,
                controller,
                params,
                z,
                state,
                alive,
                returns,
                steps,
                temperature,
                max_steps,
                done_threshold,
                generator,
            )
        return DreamResult(returns, steps)
    for _ in range(max_steps):
        prediction, state = dream_step(
            memory, controller, params, z, state, alive, returns, steps, done_threshold
        )
        if not bool(alive.any()):
            break
        z = memory.sample(prediction, temperature, generator)
    return DreamResult(returns, steps)


def can_graph(controller: Controller, params: torch.Tensor | None, device: torch.device) -> bool:
    """CUDA graphs need CUDA, and a step with no trip to the host: a controller without
    ``act_batched`` sets each row's parameters from the CPU, which cannot be recorded."""
    batched = params is None or getattr(controller, "act_batched", None) is not None
    return device.type == "cuda" and batched


def graphed_dream(
    memory: Memory,
    controller: Controller,
    params: torch.Tensor | None,
    z0: torch.Tensor,
    state0: Any,
    alive: torch.Tensor,
    returns: torch.Tensor,
    steps: torch.Tensor,
    temperature: float,
    max_steps: int,
    done_threshold: float,
    generator: torch.Generator | None,
    record: Recorder | None = None,
) -> None:
    """The eager loop's steps in chunks of ``GRAPH_CHUNK``: the first chunk eagerly (a CUDA
    graph needs a warm-up run, and it is real work), then one recorded chunk replayed while
    any episode runs, then what is left of ``max_steps`` eagerly. Every chunk reads and
    writes the same tensors (z, M's state, alive, returns, steps), as a graph requires;
    ``alive``, ``returns`` and ``steps`` are filled in place. ``record`` turns a chunk into
    its replay (``record_cuda_graph`` unless given: tests pass one that just runs it)."""
    record = record or record_cuda_graph
    z, state = z0.clone(), clone_tensors(state0)

    def run(n: int) -> None:
        nz, nstate = z, state
        for _ in range(n):
            prediction, nstate = dream_step(
                memory, controller, params, nz, nstate, alive, returns, steps, done_threshold
            )
            nz = memory.sample(prediction, temperature, generator)
        z.copy_(nz)
        copy_tensors(state, nstate)

    chunk = min(GRAPH_CHUNK, max_steps)
    with side_stream(z.device):
        run(chunk)
    done = chunk
    if max_steps - done >= chunk and bool(alive.any()):
        replay = record(lambda: run(chunk), generator)
        while max_steps - done >= chunk and bool(alive.any()):
            replay()
            done += chunk
    if done < max_steps and bool(alive.any()):
        run(max_steps - done)
