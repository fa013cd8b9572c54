"""The MDN-RNN ensemble: members train as if alone, the dream mixes them as documented."""

from __future__ import annotations

import copy

import torch
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions
from wmkit_mdnrnn_ensemble import MDNRNNEnsemble, MDNRNNEnsembleOptions

from wmkit.core.protocols import SequenceBatch

Z, A = 4, 1


def ensemble(**fields) -> MDNRNNEnsemble:
    torch.manual_seed(0)
    return MDNRNNEnsemble(MDNRNNEnsembleOptions(hidden=8, gaussians=2, **fields), Z, A)


def batches(n: int = 3) -> list[SequenceBatch]:
    gen = torch.Generator().manual_seed(0)
    done = torch.zeros(2, 5)
    done[:, -1] = 1
    return [
        SequenceBatch(
            z=torch.randn(2, 5, Z, generator=gen),
            action=torch.rand(2, 5, A, generator=gen),
            reward=torch.randn(2, 5, generator=gen),
            done=done,
        )
        for _ in range(n)
    ]


def test_each_member_trains_exactly_as_a_lone_mdn_rnn_would():
    model = ensemble(members=3, grad_clip=0.01)  # a clip that bites: it must be per member
    lone = MDNRNN(MDNRNNOptions(hidden=8, gaussians=2, grad_clip=0.01), Z, A)
    lone.load_state_dict(copy.deepcopy(model.members[1].state_dict()))
    model.fit_epoch(batches())
    lone.fit_epoch(batches())
    for name, value in lone.state_dict().items():
        assert torch.allclose(model.members[1].state_dict()[name], value, atol=1e-6), name
    first, second = (m.state_dict()["head.weight"] for m in model.members[:2])
    assert not torch.allclose(first, second)  # members start from different weights


def test_done_is_the_most_pessimistic_member_or_the_mean():
    for rule, expected in (("max", 0.9), ("mean", (0.9 + 0.1 + 0.1) / 3)):
        model = ensemble(members=3, done_rule=rule)
        with torch.no_grad():
            for member, p in zip(model.members, (0.1, 0.9, 0.1)):
                member.head.weight[-1].zero_()
                member.head.bias[-1] = torch.logit(torch.tensor(p))
        pred, _ = model.step(torch.zeros(2, Z), torch.zeros(2, A), model.initial_state(2))
        assert torch.allclose(pred.done, torch.full((2,), expected), atol=1e-5), rule


def test_reward_is_the_mean_less_the_penalty_times_the_members_spread():
    rewards = torch.tensor([1.0, 2.0, 6.0])
    spread = rewards.std(unbiased=False)
    for penalty in (0.0, 0.5):
        model = ensemble(members=3, reward_penalty=penalty)
        with torch.no_grad():
            for member, r in zip(model.members, rewards):
                member.head.weight[-2].zero_()
                member.head.bias[-2] = r
        pred, _ = model.step(torch.zeros(2, Z), torch.zeros(2, A), model.initial_state(2))
        expected = rewards.mean() - penalty * spread
        assert torch.allclose(pred.reward, expected.expand(2), atol=1e-5), penalty


def test_each_row_samples_one_member_picked_at_random():
    model = ensemble(members=3)
    with torch.no_grad():
        for i, member in enumerate(model.members):
            member.head.weight.zero_()
            k = member.options.gaussians
            bias = member.head.bias[: Z * k * 3].view(Z, 3 * k)
            bias[:, k : 2 * k] = 10.0 * i  # every component's mean: 0, 10 or 20
            bias[:, 2 * k :] = -8.0  # sigma ~ 0.0003
    pred, _ = model.step(torch.zeros(300, Z), torch.zeros(300, A), model.initial_state(300))
    z = model.sample(pred, 1.0, torch.Generator().manual_seed(0))
    member = (z[:, 0] / 10).round()
    assert torch.allclose(z, member[:, None].expand(-1, Z) * 10, atol=0.01)  # one per row
    assert set(member.tolist()) == {0.0, 1.0, 2.0}
    counts = torch.bincount(member.long(), minlength=3)
    assert int(counts.min()) > 60  # about 100 each


def test_controller_sees_the_first_members_memory():
    model = ensemble(members=2, controller_features="hc")
    state = model.initial_state(2)
    _, state = model.step(torch.randn(2, Z), torch.rand(2, A), state)
    assert torch.equal(model.features(state), model.members[0].features(state[0]))
    assert model.feature_dim == 16
