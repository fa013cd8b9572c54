"""The Dreamer line's imagination as a CUDA graph (``dream.graph`` in the online pipeline):
``GraphedFunction`` copies inputs in and outputs out of one recording kept across calls, and
the actor-critic trained on the replayed imagination is the one trained on the eager one.
On a CPU the graph is replaced by a stand-in that replays by running the recorded function
again, which checks everything but the recording itself; the CUDA tests check that too."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import wmkit_actor_critic
from torch import nn
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import resolve_recipe
from wmkit.dreams.memory_world_model import MemoryDream
from wmkit.nn.cuda_graph import GraphedFunction, clone_tensors, leaves, request_graph
from wmkit.rollouts.envs import env_spec, make_env
from wmkit.rollouts.world_model_agent import build_agent_parts

pytestmark = pytest.mark.isa  # make test runs these again with torch held to AVX2

REG = get_registry()
cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a GPU; the CPU path is eager"
)


def run_again(fn, generator):
    """A stand-in for recording: its "replay" runs the recorded function again, eagerly."""
    return fn


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([2.0, 3.0]))

    def forward(self, inputs: dict) -> dict:
        return {"y": inputs["x"] * self.weight, "sum": inputs["x"].sum(-1)}


def test_graphed_function_copies_inputs_in_and_outputs_out():
    module = Scale()
    graphed = GraphedFunction(torch.no_grad()(module), module.parameters, record=run_again)
    for i in range(4):
        x = torch.full((3, 2), float(i))
        out = graphed({"x": x})
        assert torch.equal(out["y"], x * module.weight.detach())
        assert torch.equal(out["sum"], torch.full((3,), 2.0 * i))
    assert graphed.recordings == 1  # warm-up at the first call, recorded at the second


def test_graphed_function_records_again_for_new_shapes_or_replaced_weights():
    module = Scale()
    graphed = GraphedFunction(torch.no_grad()(module), module.parameters, record=run_again)
    for _ in range(3):
        graphed({"x": torch.ones(3, 2)})
    assert graphed.recordings == 1
    for _ in range(2):  # another batch size: a warm-up, then a second recording
        assert graphed({"x": torch.ones(5, 2)})["y"].shape == (5, 2)
    assert graphed.recordings == 2
    with torch.no_grad():  # an in-place update keeps the recording
        module.weight.mul_(10)
    assert torch.equal(graphed({"x": torch.ones(5, 2)})["y"][0], torch.tensor([20.0, 30.0]))
    assert graphed.recordings == 2
    nn.utils.vector_to_parameters(torch.tensor([-1.0, 1.0]), module.parameters())  # new memory
    for _ in range(2):
        out = graphed({"x": torch.ones(5, 2)})
    assert torch.equal(out["y"][0], torch.tensor([-1.0, 1.0]))
    assert graphed.recordings == 3


def agent(kind: str, device: str, graph: bool):
    """An actor and an actor-critic in a small world model, with the same weights whatever
    ``graph``, and start states. ``kind``: ``categorical`` or ``gaussian``, the actor in an
    RSSM on 4-number observations, its start states filtered on random observations; or
    ``memory``, a gaussian actor in an MDN-RNN's dream (pipeline ha's fit_actor), from random
    latents."""
    actor_cls = REG.get("controller", "actor")
    ac_cls = REG.get("optimizer", "actor_critic")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    if kind == "memory":
        memory = MDNRNN(MDNRNNOptions(hidden=16, gaussians=3), 4, 2)
        world_model = MemoryDream(memory, temperature=1.2)
        feature_dim = 4 + memory.feature_dim
    else:
        wm_cls = REG.get("world_model", "rssm")
        options = wm_cls.Options(deter=16, stoch=4, classes=4, units=16, layers=1)
        world_model = wm_cls(options, (4,), 2)
        feature_dim = world_model.feature_dim
    distribution = "categorical" if kind == "categorical" else "gaussian"
    actor = actor_cls(
        actor_cls.Options(distribution=distribution, units=16, layers=1),
        feature_dim,
        np.full(2, -1, np.float32),
        np.ones(2, np.float32),
    )
    options = ac_cls.Options(horizon=5, units=16, layers=1, bins=15)
    optimizer = ac_cls(options, actor, feature_dim, 0)
    optimizer.graph = graph
    for part in (world_model, actor, optimizer):
        part.to(device)
    world_model.eval()
    with torch.no_grad():
        if kind == "memory":
            return (
                world_model,
                actor,
                optimizer,
                world_model.start(torch.randn(24, 4, generator=gen).to(device)),
            )
        start = world_model.observe(
            world_model.initial_state(24),
            torch.zeros(24, 2, device=device),
            torch.randn(24, 4, generator=gen).to(device),
            torch.ones(24, device=device),
        )
    return world_model, actor, optimizer, start


def train(kind: str, device: str, graph: bool, updates: int = 4):
    """The losses of ``updates`` actor-critic updates, each seeded as train_step seeds it, and
    the actor's weights after them."""
    world_model, actor, optimizer, start = agent(kind, device, graph)
    losses = []
    for index in range(updates):
        torch.manual_seed(100 + index)
        rolled = clone_tensors(start)  # new start states each time
        for tensor in leaves(rolled):
            tensor.copy_(tensor.roll(index, 0))
        losses.append(optimizer.update(world_model, rolled))
    return losses, actor.get_params(), optimizer


@pytest.mark.parametrize("kind", ["categorical", "gaussian", "memory"])
def test_actor_critic_on_the_replayed_imagination_is_the_eager_one(monkeypatch, kind):
    """The plugin's graphed path on a CPU, with the stand-in for the recording."""
    eager_losses, eager_params, _ = train(kind, "cpu", graph=False)
    monkeypatch.setattr(wmkit_actor_critic, "on_cuda", lambda *parts: True)
    monkeypatch.setattr(
        wmkit_actor_critic, "GraphedFunction", functools.partial(GraphedFunction, record=run_again)
    )
    losses, params, optimizer = train(kind, "cpu", graph=True)
    assert losses == eager_losses
    np.testing.assert_array_equal(params, eager_params)
    assert optimizer._graphed[1].recordings == 1  # kept across updates


def test_graph_off_cuda_trains_eagerly():
    eager_losses, eager_params, _ = train("categorical", "cpu", graph=False)
    losses, params, optimizer = train("categorical", "cpu", graph=True)
    assert losses == eager_losses
    np.testing.assert_array_equal(params, eager_params)
    assert optimizer._graphed is None


def test_request_graph_reaches_only_optimizers_that_can_record():
    class CanRecord:
        graph = False

    class CannotRecord:
        pass

    asked, unasked, other = CanRecord(), CanRecord(), CannotRecord()
    request_graph(asked, True)
    request_graph(unasked, False)
    request_graph(other, True)
    assert (asked.graph, unasked.graph, hasattr(other, "graph")) == (True, False, False)


@pytest.mark.parametrize("graph", [False, True])
def test_dream_graph_reaches_the_online_optimizer(graph):
    recipe = resolve_recipe(
        {
            "pipeline": {"name": "online"},
            "env": {"id": "CartPole-v1"},
            "collect": {"policy": "uniform"},
            "world_model": {"name": "rssm", "deter": 8, "stoch": 2, "classes": 2, "units": 8},
            "controller": {"name": "actor", "distribution": "categorical", "units": 8},
            "optimizer": {"name": "actor_critic", "units": 8, "bins": 7},
            "dream": {"graph": graph},
        },
        REG,
    )
    _, _, optimizer = build_agent_parts(recipe, REG, env_spec(make_env(recipe.env, REG)))
    assert optimizer.graph is graph


@cuda
@pytest.mark.parametrize("kind", ["categorical", "gaussian", "memory"])
def test_graphed_imagination_matches_eager_on_cuda(kind):
    eager_losses, eager_params, _ = train(kind, "cuda", graph=False)
    losses, params, optimizer = train(kind, "cuda", graph=True)
    assert optimizer._graphed[1].recordings == 1
    for got, want in zip(losses, eager_losses, strict=True):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), key
    np.testing.assert_allclose(params, eager_params, rtol=1e-4, atol=1e-5)
    again_losses, again_params, _ = train(kind, "cuda", graph=True)
    assert again_losses == losses  # seeded: the same replays give the same numbers
    np.testing.assert_array_equal(again_params, params)
