"""The Dreamer line's small pieces, checked against what they must equal: two-hot symlog
targets decode to the value encoded, the categorical KL is torch's, and lambda-returns are
the n-step and one-step returns at lambda 1 and 0."""

from __future__ import annotations

import pytest
import torch
from wmkit_actor_critic import lambda_returns

from wmkit.nn.distributions import TwoHot, categorical_kl, symexp, symlog


def test_symlog_inverts_and_squashes():
    x = torch.tensor([-1e4, -3.0, 0.0, 0.25, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(1e4)) < 10


@pytest.mark.parametrize("target", [-300.0, -1.0, 0.0, 0.5, 7.0, 1000.0])
def test_two_hot_weights_of_a_target_decode_to_that_target(target):
    # d log_prob / d logits = weights - softmax(logits); at logits 0 the softmax is uniform.
    logits = torch.zeros(255, requires_grad=True)
    TwoHot(logits).log_prob(torch.tensor(target)).backward()
    weights = logits.grad + 1 / 255
    assert weights.min() >= -1e-6 and (weights > 1e-6).sum() <= 2
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-5)
    decoded = TwoHot(torch.log(weights.clamp_min(1e-12))).mean()
    assert decoded.item() == pytest.approx(target, rel=1e-3, abs=1e-3)


def test_categorical_kl_is_torchs_summed_over_latents():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(3, 4, 5), -1)
    q = torch.softmax(torch.randn(3, 4, 5), -1)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(probs=p), torch.distributions.Categorical(probs=q)
    ).sum(-1)
    torch.testing.assert_close(categorical_kl(p, q), expected)
    assert categorical_kl(p, p).abs().max() < 1e-6


def test_lambda_returns_at_lambda_one_and_zero():
    torch.manual_seed(0)
    reward, value = torch.randn(2, 5), torch.randn(2, 5)
    cont, gamma, H = torch.ones(2, 5), 0.9, 4
    # lambda 1: the discounted rewards of steps 1..H plus the discounted last value.
    mc = lambda_returns(reward, cont, value, gamma, 1.0)
    expected = sum(gamma**t * reward[:, t + 1] for t in range(H)) + gamma**H * value[:, H]
    torch.testing.assert_close(mc[:, 0], expected)
    # lambda 0: one step, then the critic.
    td = lambda_returns(reward, cont, value, gamma, 0.0)
    torch.testing.assert_close(td, reward[:, 1:] + gamma * value[:, 1:])
    # An episode's end (cont 0 at step 2) stops everything after it from counting.
    cont[:, 2] = 0
    cut = lambda_returns(reward, cont, value, gamma, 1.0)
    torch.testing.assert_close(cut[:, 0], reward[:, 1] + gamma * reward[:, 2])
