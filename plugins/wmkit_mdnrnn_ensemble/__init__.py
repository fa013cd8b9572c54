"""An ensemble of MDN-RNNs, so that a dream cannot be exploited where M knows least.

A controller trained in one M's dream finds the states where that M is wrong in its favour
(on Doom: places where it forgets to predict fireballs) and scores far higher there than in
the real game. Members trained from different initial weights agree where the data taught
them and disagree where it did not, so the dream is made from all of them at once:

* each step's next latent comes from one member picked at random per episode and step
  (a blind spot of one member lasts only while it keeps being picked);
* the episode ends when the most pessimistic member (``done_rule: max``) or the average
  member (``mean``) says so;
* the reward is the members' mean, less ``reward_penalty`` times their standard deviation:
  where the members disagree about the reward, the data did not teach it, and a search
  that heads there pays for the doubt (the penalty of model-based offline RL, e.g. MOPO).

The controller sees the first member's memory, the same in the dream and in reality.
Training costs ``members`` times one MDN-RNN's: each member takes the same batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

import wmkit
from wmkit.core.protocols import Prediction, SequenceBatch
from wmkit.nn.optim_state import AdamTraining


class MDNRNNEnsembleOptions(MDNRNNOptions):
    members: int = Field(3, ge=2, description="How many MDN-RNNs, each from its own init.")
    done_rule: Literal["max", "mean"] = Field(
        "max",
        description="How members' done probabilities combine: the most pessimistic one (max) "
        "or their mean.",
    )
    reward_penalty: float = Field(
        0.0,
        ge=0,
        description="Dream reward = members' mean reward - this x their standard deviation.",
    )


class MDNRNNEnsemble(AdamTraining, nn.Module):
    name = "mdn_rnn_ensemble"
    Options = MDNRNNEnsembleOptions

    def __init__(self, options: MDNRNNEnsembleOptions, latent_dim: int, action_dim: int):
        super().__init__()
        self.options = options
        self.members = nn.ModuleList(
            MDNRNN(options, latent_dim, action_dim) for _ in range(options.members)
        )
        self.feature_dim = self.members[0].feature_dim

    def initial_state(self, batch_size: int) -> list:
        return [m.initial_state(batch_size) for m in self.members]

    def step(self, z: torch.Tensor, action: torch.Tensor, state: list):
        preds, states = zip(*(m.step(z, action, s) for m, s in zip(self.members, state)))
        done = torch.stack([p.done for p in preds])
        rewards = torch.stack([p.reward for p in preds])
        reward = rewards.mean(0)
        if self.options.reward_penalty > 0:
            reward = reward - self.options.reward_penalty * rewards.std(0, unbiased=False)
        pred = Prediction(
            reward=reward,
            done=done.amax(0) if self.options.done_rule == "max" else done.mean(0),
            # Every member's mixture, stacked on a leading axis: sample picks one per row.
            params={k: torch.stack([p.params[k] for p in preds]) for k in preds[0].params},
        )
        return pred, list(states)

    def features(self, state: list) -> torch.Tensor:
        return self.members[0].features(state[0])

    def sample(self, prediction: Prediction, temperature: float = 1.0, generator=None):
        """One member's mixture per row, picked at random, then the MDN's own sampling."""
        logpi = prediction.params["logpi"]
        count, batch = logpi.shape[:2]
        pick = torch.randint(count, (batch,), generator=generator, device=logpi.device)
        rows = torch.arange(batch, device=logpi.device)
        chosen = Prediction(
            reward=prediction.reward,
            done=prediction.done,
            params={k: v[pick, rows] for k, v in prediction.params.items()},
        )
        return self.members[0].sample(chosen, temperature, generator)

    def loss(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        """The members' losses summed, as ``loss`` (their weights are disjoint, so each
        trains as if alone); every other term is the members' mean."""
        losses = [m.loss(batch) for m in self.members]
        out = {k: torch.stack([loss[k] for loss in losses]).mean() for k in losses[0]}
        out["loss"] = torch.stack([loss["loss"] for loss in losses]).sum()
        return out

    def clip_gradients(self, grad_clip: float) -> None:
        """Each member's gradient clipped on its own, as a lone MDN-RNN's would be."""
        for member in self.members:
            nn.utils.clip_grad_norm_(member.parameters(), grad_clip)

    def fit_epoch(self, batches: Iterable[SequenceBatch]) -> dict[str, float]:
        return self.fit_batches(batches, self.options.grad_clip)


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_memory(MDNRNNEnsemble)
