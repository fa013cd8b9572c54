"""The continuous actor and the actor-critic's gradient options: the log-probability is of the
unclipped sample, every estimator gives finite gradients to the actor alone (through the
RSSM's imagination for the dynamics ones), and the entropy falls when one action pays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal

from wmkit.core.plugins import get_registry
from wmkit.core.protocols import Prediction

REG = get_registry()
ACTOR = REG.get("controller", "actor")
AC = REG.get("optimizer", "actor_critic")
ESTIMATORS = ["reinforce", "dynamics", "mix"]


def _gaussian_actor(inputs: int, low, high, seed: int = 0, **options):
    torch.manual_seed(seed)
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return ACTOR(
        ACTOR.Options(distribution="gaussian", units=16, layers=1, **options), inputs, low, high
    )


def test_the_log_prob_is_of_the_unclipped_sample_and_only_the_action_is_clipped():
    actor = _gaussian_actor(3, [-1, 0], [1, 1], std_min=0.9, std_max=1.0)
    dist = actor.distribution(torch.ones(4000, 3))
    torch.manual_seed(1)
    raw = dist.sample_raw()
    action = dist.clip(raw)
    assert (raw[:, 1] > 1).any() and (raw[:, 1] < 0).any()  # wide enough to leave the box
    assert (action[:, 0].abs() <= 1).all() and (action[:, 1] >= 0).all()
    assert (action[:, 1] <= 1).all()
    inside = (raw >= actor.low) & (raw <= actor.high)
    assert torch.equal(action[inside], raw[inside])
    # The plain Normal's density of raw, in [-1, 1] coordinates (gas' [0, 1] doubled).
    unit = torch.stack([raw[:, 0], raw[:, 1] * 2 - 1], -1)
    expect = Normal(dist.normal.mean, dist.std).log_prob(unit).sum(-1)
    torch.testing.assert_close(dist.log_prob(raw), expect)
    # At the clip it would differ wherever the sample left the box.
    outside = ~inside.all(-1)
    assert not torch.allclose(dist.log_prob(action)[outside], expect[outside])
    assert ((dist.sample() >= actor.low) & (dist.sample() <= actor.high)).all()


def test_the_entropy_share_spans_the_actors_range():
    actor = _gaussian_actor(2, [-1], [1], std_min=0.1, std_max=1.0)
    dist = actor.distribution(torch.zeros(2, 2))
    wide = type(dist)(dist.normal.mean, torch.ones(2, 1), actor.low, actor.high, (0.1, 1.0))
    narrow = type(dist)(dist.normal.mean, torch.full((2, 1), 0.1), actor.low, actor.high)
    torch.testing.assert_close(wide.entropy_share(), torch.ones(2))
    torch.testing.assert_close(narrow.entropy_share(), torch.zeros(2))


class PayingDream(nn.Module):
    """A dream with no learning in it and a differentiable reward: the state is fixed and a
    step pays 1 - 4 (a - 0.3)^2 for its (clipped) action a in [-1, 1]. Only a narrow actor
    near 0.3 collects all of it, so a learning actor's entropy must fall."""

    feature_dim = 3

    def features(self, state):
        return state["x"]

    def imagine(self, state, action):
        return {"x": state["x"], "reward": 1 - 4 * (action[:, 0] - 0.3) ** 2}

    def predict(self, state):
        reward = state.get("reward", torch.zeros(len(state["x"])))
        return Prediction(reward=reward, done=torch.zeros(len(state["x"])))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_entropy_falls_when_one_action_pays(estimator):
    actor = _gaussian_actor(3, [-1], [1])
    options = AC.Options(
        horizon=3,
        units=16,
        layers=1,
        bins=31,
        learning_rate=3e-3,
        critic_learning_rate=3e-3,
        actor_grad=estimator,
    )
    optimizer = AC(options, actor, 3, 0)
    start = {"x": torch.ones(64, 3)}
    first = optimizer.update(PayingDream(), start)
    assert first["entropy_share"] > 0.9  # the actor starts wide
    for _ in range(80):
        last = optimizer.update(PayingDream(), start)
    assert last["entropy_share"] < 0.6 * first["entropy_share"], (first, last)
    assert last["action_std_0"] < 0.6 * first["action_std_0"]
    mean = float(actor.act(start["x"][:1])[0, 0])
    assert abs(mean - 0.3) < 0.2, mean


def _tiny_rssm_parts(distribution: str, estimator: str):
    torch.manual_seed(0)
    wm_cls = REG.get("world_model", "rssm")
    world_model = wm_cls(wm_cls.Options(deter=8, stoch=2, classes=3, units=8, layers=1), (4,), 2)
    # The reward head starts at 0 everywhere (as the critic): give it weights, so that the
    # imagined returns depend on the actions and the dynamics gradient is not trivially 0.
    last = [m for m in world_model.reward_head.modules() if isinstance(m, nn.Linear)][-1]
    nn.init.normal_(last.weight, std=0.5)
    low, high = (np.zeros(2, np.float32), np.ones(2, np.float32))
    actor = ACTOR(ACTOR.Options(distribution=distribution, units=8, layers=1), 14, low, high)
    options = AC.Options(horizon=3, units=8, layers=1, bins=7, entropy=0.0, actor_grad=estimator)
    return world_model.eval(), actor, AC(options, actor, 14, 0)


@pytest.mark.parametrize("distribution", ["gaussian", "categorical"])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_gives_finite_gradients_to_the_actor_alone(distribution, estimator):
    world_model, actor, optimizer = _tiny_rssm_parts(distribution, estimator)
    before = {k: v.clone() for k, v in world_model.state_dict().items()}
    critic_before = [p.clone() for p in optimizer.critic.parameters()]
    start = {k: v.repeat(6, 1) for k, v in world_model.initial_state(1).items()}
    actor_before = actor.get_params()
    out = optimizer.update(world_model, start)
    assert all(math.isfinite(v) for v in out.values()), out
    # With no entropy bonus, a non-zero gradient is the estimator's own: for dynamics it can
    # only have come back through the RSSM's transitions and reward head.
    assert out["actor_grad_norm"] > 0
    assert all(torch.isfinite(p.grad).all() for p in actor.parameters())
    assert not np.allclose(actor.get_params(), actor_before)
    for key, value in world_model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in world_model.parameters())
    # The critic moves by its own loss only: its gradient is written after the actor's step.
    assert all(p.grad is not None for p in optimizer.critic.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(optimizer.critic.parameters(), critic_before))


def test_dynamics_backprop_reaches_the_actor_through_the_rssm_transition():
    """With the reward read from the state only, the actor's dynamics gradient exists only
    if it flows back through ``imagine`` (the GRU and the straight-through latents)."""
    world_model, actor, optimizer = _tiny_rssm_parts("gaussian", "dynamics")
    start = {k: v.repeat(6, 1) for k, v in world_model.initial_state(1).items()}
    traj = optimizer.imagine(world_model, start, grad=True)
    (grad,) = torch.autograd.grad(traj["reward"][:, -1].sum(), [actor.net[-1].weight])
    assert grad.abs().sum() > 0
    frozen = optimizer.imagine(world_model, start)
    assert not frozen["reward"].requires_grad


def test_diagnostics_are_reported_for_each_action_dimension():
    world_model, actor, optimizer = _tiny_rssm_parts("gaussian", "reinforce")
    start = {k: v.repeat(6, 1) for k, v in world_model.initial_state(1).items()}
    out = optimizer.update(world_model, start)
    for key in ("action_std_0", "action_std_1", "entropy_share", "return_scale"):
        assert key in out
    assert {"advantage_abs", "actor_grad_norm"} <= set(out)
    assert 0.1 <= out["action_std_0"] <= 1.0
