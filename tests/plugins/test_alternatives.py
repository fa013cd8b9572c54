"""The alternative components: an MLP controller, OpenAI-ES and a GRU Gaussian memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from wmkit_es import OpenAIES, OpenAIESOptions, centered_ranks
from wmkit_gru import GRUGaussian, GRUGaussianOptions
from wmkit_linear import LinearController, LinearControllerOptions
from wmkit_mlp import MLPController, MLPControllerOptions

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import SequenceBatch
from wmkit.dreams.rollout import batched_act

LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.ones(3, np.float32)


def test_mlp_controller_has_the_paper_hidden_layer_size():
    c = MLPController(MLPControllerOptions(), 32 + 256, LOW, HIGH)
    assert c.num_params == 288 * 40 + 40 + 40 * 3 + 3


@pytest.mark.parametrize(
    "controller",
    [
        LinearController(LinearControllerOptions(), 6, LOW, HIGH),
        MLPController(
            MLPControllerOptions(hidden=5, squash=["clip", "affine", "clip"]), 6, LOW, HIGH
        ),
    ],
    ids=["linear", "mlp"],
)
def test_act_batched_equals_one_candidate_at_a_time(controller):
    rng = np.random.default_rng(1)
    params = rng.standard_normal((4, controller.num_params))
    feats = torch.randn(4, 6)
    fast = batched_act(controller, torch.as_tensor(params, dtype=torch.float32), feats)
    for i in range(4):
        controller.set_params(params[i])
        torch.testing.assert_close(fast[i], controller.act(feats[i : i + 1])[0])


def test_centered_ranks_ignore_the_scale_of_returns():
    np.testing.assert_allclose(centered_ranks(np.array([5.0, -100.0, 1e6])), [0.0, -0.5, 0.5])


def test_openai_es_climbs_a_simple_function():
    opt = OpenAIES(
        OpenAIESOptions(population=20, sigma0=0.1, learning_rate=0.05, weight_decay=0.0),
        np.zeros(5),
        seed=0,
    )

    def ret(x):
        return -float(np.sum((x - 1.0) ** 2))

    for _ in range(150):
        xs = opt.ask()
        opt.tell(xs, [ret(x) for x in xs])
    assert ret(opt.mean) > -0.1 > ret(np.zeros(5))


def test_openai_es_wants_an_even_population():
    with pytest.raises(WmkitError, match="even population"):
        OpenAIES(OpenAIESOptions(population=7), np.zeros(3), seed=0)


def test_gru_gaussian_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    m = GRUGaussian(GRUGaussianOptions(hidden=32, learning_rate=5e-3), 2, 1)
    t = torch.arange(12).float()
    z = torch.stack([torch.sin(t), torch.cos(t)], -1).expand(8, 12, 2)
    batch = SequenceBatch(z, torch.zeros(8, 12, 1), torch.ones(8, 12), torch.zeros(8, 12))
    first = m.fit_epoch([batch])["gaussian_nll"]
    for _ in range(80):
        last = m.fit_epoch([batch])
    assert last["gaussian_nll"] < first - 1.0 and last["reward_mse"] < 0.05


def test_openai_es_forgets_its_best_when_the_fitness_changes_and_resumes_so():
    es = OpenAIES(OpenAIESOptions(population=8), np.zeros(3), seed=0)
    for fitness in (lambda x: 10.0 - float(np.sum(x**2)), lambda x: -float(np.sum(x**2))):
        xs = es.ask()
        es.tell(xs, [fitness(x) for x in xs])
        best = max(fitness(x) for x in xs)
        assert es.result()[1] == best
        es.fitness_changed()
        assert es.result()[1] == -np.inf
    resumed = OpenAIES(OpenAIESOptions(population=8), np.zeros(3), seed=1)
    resumed.load_state_dict(es.state_dict())
    assert resumed.result()[1] == -np.inf
    np.testing.assert_array_equal(resumed.result()[0], es.mean)
