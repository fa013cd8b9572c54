"""The graphed dream (``dream.graph``): the eager steps recorded as CUDA graphs give the eager
returns and lengths, from the same random numbers; on a CPU the switch changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from wmkit_linear import LinearController, LinearControllerOptions
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

from wmkit.core.recipe import Recipe
from wmkit.dreams.rollout import GRAPH_CHUNK, DreamResult, dream_rollout, graphed_dream

pytestmark = pytest.mark.isa  # make test runs these again with torch held to AVX2

Z, A = 4, 3
LOW, HIGH = np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)
cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a GPU; the CPU path is eager"
)


def mdn_dream(device: str, hidden: int = 16, done_bias: float = 0.0):
    """A small MDN-RNN whose done head is near 0.5, so episodes end at scattered steps."""
    torch.manual_seed(0)
    memory = MDNRNN(MDNRNNOptions(hidden=hidden, gaussians=3), Z, A).to(device).eval()
    with torch.no_grad():
        memory.head.bias[-1] = done_bias
    controller = LinearController(LinearControllerOptions(), Z + hidden, LOW, HIGH).to(device)
    return memory, controller


def starts(controller, device: str, batch: int, seed: int):
    gen = torch.Generator(device=device).manual_seed(seed)
    z0 = torch.randn(batch, Z, device=device, generator=gen)
    params = torch.randn(batch, controller.num_params, device=device, generator=gen) * 0.5
    return gen, z0, params


def rollout(memory, controller, device, batch=32, max_steps=40, seed=1, graph=False):
    gen, z0, params = starts(controller, device, batch, seed)
    return dream_rollout(memory, controller, z0, params, 1.2, max_steps, 0.5, gen, graph=graph)


def run_again(fn, generator):
    """A stand-in for recording a chunk: its "replay" runs the chunk's steps again, eagerly."""
    return fn


@torch.no_grad()
def chunked(memory, controller, batch=32, max_steps=40, seed=1) -> DreamResult:
    """graphed_dream's chunking on a CPU, each chunk run eagerly, under no_grad as
    ``dream_rollout`` runs it: with autograd on, the LSTM takes another CPU kernel whose
    sums come in another order on some ISAs (AVX2), so the comparison would not be exact."""
    gen, z0, params = starts(controller, "cpu", batch, seed)
    alive = torch.ones(batch, dtype=torch.bool)
    returns, steps = torch.zeros(batch), torch.zeros(batch, dtype=torch.long)
    state = memory.initial_state(batch)
    graphed_dream(
        memory, controller, params, z0, state, alive, returns, steps,
        1.2, max_steps, 0.5, gen, record=run_again,
    )  # fmt: skip
    return DreamResult(returns, steps)


def test_graph_on_cpu_runs_the_eager_loop_bit_for_bit():
    memory, controller = mdn_dream("cpu")
    eager = rollout(memory, controller, "cpu")
    asked = rollout(memory, controller, "cpu", graph=True)
    assert torch.equal(eager.returns, asked.returns)
    assert torch.equal(eager.steps, asked.steps)


@pytest.mark.parametrize("max_steps", [1, GRAPH_CHUNK - 1, GRAPH_CHUNK, 2 * GRAPH_CHUNK + 5])
@pytest.mark.parametrize("done_bias", [0.0, -5.0])  # episodes end at scattered steps / rarely
def test_chunked_steps_give_the_eager_returns_and_lengths(max_steps, done_bias):
    """Steps past an episode's end (up to a chunk past the last one) change nothing."""
    memory, controller = mdn_dream("cpu", done_bias=done_bias)
    eager = rollout(memory, controller, "cpu", max_steps=max_steps)
    graphed = chunked(memory, controller, max_steps=max_steps)
    assert torch.equal(eager.returns, graphed.returns)
    assert torch.equal(eager.steps, graphed.steps)
    if done_bias == 0.0 and max_steps > GRAPH_CHUNK:
        assert int(eager.steps.min()) < int(eager.steps.max())  # the case is not trivial


def test_dream_graph_changes_speed_not_the_run():
    plain = Recipe.model_validate({})
    graphed = Recipe.model_validate({"dream": {"graph": True}})
    assert plain.digest() == graphed.digest()


@cuda
@pytest.mark.parametrize("max_steps", [GRAPH_CHUNK - 1, 3 * GRAPH_CHUNK + 7])
@pytest.mark.parametrize("done_bias", [0.0, -5.0])
def test_graphed_dream_matches_eager_on_cuda(max_steps, done_bias):
    memory, controller = mdn_dream("cuda", done_bias=done_bias)
    eager = rollout(memory, controller, "cuda", max_steps=max_steps)
    graphed = rollout(memory, controller, "cuda", max_steps=max_steps, graph=True)
    torch.testing.assert_close(graphed.returns, eager.returns)
    torch.testing.assert_close(graphed.steps, eager.steps)


@cuda
def test_graphed_dream_is_reproducible_and_follows_the_seed():
    memory, controller = mdn_dream("cuda")
    first = rollout(memory, controller, "cuda", max_steps=50, graph=True)
    again = rollout(memory, controller, "cuda", max_steps=50, graph=True)
    other = rollout(memory, controller, "cuda", max_steps=50, seed=2, graph=True)
    assert torch.equal(first.returns, again.returns)
    assert torch.equal(first.steps, again.steps)
    assert not torch.equal(first.returns, other.returns)


@cuda
def test_graphed_dream_from_a_given_state_with_one_controller():
    """No per-row params (the score dreams), and M's memory warmed up before the start."""
    memory, controller = mdn_dream("cuda", done_bias=-5.0)
    gen = torch.Generator(device="cuda").manual_seed(3)
    z0 = torch.randn(8, Z, device="cuda", generator=gen)
    state = tuple(torch.randn(1, 8, 16, device="cuda", generator=gen) for _ in range(2))
    results = []
    for graph in (False, True):
        gen.manual_seed(4)
        results.append(
            dream_rollout(memory, controller, z0, None, 1.0, 40, 0.5, gen, state, graph=graph)
        )
    torch.testing.assert_close(results[1].returns, results[0].returns)
    torch.testing.assert_close(results[1].steps, results[0].steps)
