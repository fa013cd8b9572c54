import math

import torch
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions, mdn_log_prob

from wmkit.core.protocols import Prediction


def test_mixture_log_likelihood_matches_a_hand_computation():
    pi = [0.6, 0.3, 0.1]
    mu = [2.0, -1.5, 0.0]
    sigma = [0.3, 0.4, 0.8]
    x = 0.5
    expected = math.log(
        sum(
            p * math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
            for p, m, s in zip(pi, mu, sigma)
        )
    )
    got = mdn_log_prob(
        torch.tensor(pi).log(), torch.tensor(mu), torch.tensor(sigma), torch.tensor(x)
    )
    assert abs(got.item() - expected) < 1e-5
    # Per latent dimension: a batch of two dimensions evaluated independently.
    both = mdn_log_prob(
        torch.tensor([pi, pi]).log(),
        torch.tensor([mu, mu]),
        torch.tensor([sigma, sigma]),
        torch.tensor([x, 2.0]),
    )
    assert abs(both[0].item() - expected) < 1e-5 and both[1] > both[0]


def test_paper_sizes_and_step_shapes():
    m = MDNRNN(MDNRNNOptions(), latent_dim=32, action_dim=3)
    assert m.lstm.hidden_size == 256 and m.options.gaussians == 5
    assert m.head.out_features == 32 * 5 * 3 + 2
    state = m.initial_state(4)
    pred, state = m.step(torch.randn(4, 32), torch.rand(4, 3), state)
    assert pred.params["mu"].shape == (4, 32, 5)
    assert torch.allclose(pred.params["logpi"].exp().sum(-1), torch.ones(4, 32))
    assert m.features(state).shape == (4, 256)


def _two_gaussians(n: int, sigma: float) -> Prediction:
    """One latent dimension: N(1, sigma) with logit 0, N(-5, sigma) with logit -30."""
    return Prediction(
        reward=torch.zeros(n),
        done=torch.zeros(n),
        params={
            "logpi": torch.tensor([[[0.0, -30.0]]]).expand(n, 1, 2),
            "mu": torch.tensor([[[1.0, -5.0]]]).expand(n, 1, 2),
            "sigma": torch.tensor([[[sigma, sigma]]]).expand(n, 1, 2),
        },
    )


def test_temperature_scales_the_spread_of_samples():
    """The paper's tau: mixture logits divided by tau, each std multiplied by sqrt(tau)."""
    m = MDNRNN(MDNRNNOptions(gaussians=2), latent_dim=1, action_dim=1)
    n, tau = 40000, 4.0
    gen = torch.Generator().manual_seed(0)
    cold = m.sample(_two_gaussians(n, 0.5), 1.0, gen)
    assert abs(cold.mean().item() - 1.0) < 0.02 and abs(cold.std().item() - 0.5) < 0.02
    # The unlikely component's weight goes from e^-30 to about e^-7.5 = 5.5e-4.
    weight = torch.softmax(torch.tensor([0.0, -30.0]) / tau, dim=0)[1].item()
    # With narrow components the picks can be counted: it is picked at that rate.
    picks = (m.sample(_two_gaussians(n, 0.01), tau, gen) < -2).float().mean().item()
    assert 0.5 * weight < picks < 2 * weight
    # Each std doubles (sqrt(4)), so the samples spread as the mixture N(1, 1), N(-5, 1).
    hot = m.sample(_two_gaussians(n, 0.5), tau, gen)
    w, mu, var = torch.tensor([1 - weight, weight]), torch.tensor([1.0, -5.0]), 0.5**2 * tau
    mixture_std = ((w * (var + mu**2)).sum() - (w * mu).sum() ** 2).sqrt().item()
    assert abs(hot.std().item() - mixture_std) < 0.02


def test_training_learns_a_deterministic_sequence():
    torch.manual_seed(0)
    from wmkit.core.protocols import SequenceBatch

    m = MDNRNN(MDNRNNOptions(hidden=32, gaussians=2, learning_rate=1e-2), 2, 1)
    t = torch.arange(12).float()
    z = torch.stack([torch.sin(t), torch.cos(t)], -1).expand(8, 12, 2)
    batch = SequenceBatch(z, torch.zeros(8, 12, 1), torch.ones(8, 12), torch.zeros(8, 12))
    first = m.fit_epoch([batch])["mdn_nll"]
    for _ in range(80):
        last = m.fit_epoch([batch])
    assert last["mdn_nll"] < first - 1.0
    assert last["reward_mse"] < 0.05
