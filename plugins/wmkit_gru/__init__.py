"""A memory that is not an MDN: a GRU predicting the next latent as one diagonal Gaussian.

    h' = GRU([z, a], h)         z' ~ N(mu(h'), sigma(h')^2)         r, done from h'

Simpler and cheaper than the MDN-RNN (one mode instead of K per dimension); it cannot
represent a fork in the road, which is what the paper's mixture is for. Temperature scales
the standard deviation by sqrt(tau), as for the MDN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.protocols import MemoryOptions, Prediction, SequenceBatch, masked_mean
from wmkit.nn.optim_state import AdamTraining


class GRUGaussianOptions(MemoryOptions):
    hidden: int = Field(256, ge=1, description="GRU hidden size.")
    reward_weight: float = Field(1.0, ge=0, description="Weight of the reward MSE in the loss.")
    done_weight: float = Field(1.0, ge=0, description="Weight of the done BCE in the loss.")
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clip.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    epochs: int = Field(20, ge=1, description="Passes over the latent sequences.")


class GRUGaussian(AdamTraining, nn.Module):
    name = "gru_gaussian"
    Options = GRUGaussianOptions

    def __init__(self, options: GRUGaussianOptions, latent_dim: int, action_dim: int):
        super().__init__()
        self.options = options
        self.latent_dim = latent_dim
        self.feature_dim = options.hidden
        self.gru = nn.GRU(latent_dim + action_dim, options.hidden, batch_first=True)
        self.head = nn.Linear(options.hidden, 2 * latent_dim + 2)  # mu, log sigma, r, done
        with torch.no_grad():
            self.head.bias[-1] = -5.0  # episodes rarely end

    def forward(self, z, action, state=None):
        h, state = self.gru(torch.cat([z, action.to(z.dtype)], dim=-1), state)
        out = self.head(h)
        mu, log_sigma = out[..., : self.latent_dim], out[..., self.latent_dim : -2]
        return (mu, log_sigma.clamp(-8, 8).exp(), out[..., -2], out[..., -1]), state

    def initial_state(self, batch_size: int):
        p = next(self.parameters())
        return torch.zeros(1, batch_size, self.options.hidden, device=p.device, dtype=p.dtype)

    def step(self, z, action, state):
        (mu, sigma, reward, done_logit), state = self(z.unsqueeze(1), action.unsqueeze(1), state)
        pred = Prediction(
            reward=reward[:, 0],
            done=torch.sigmoid(done_logit[:, 0]),
            params={"mu": mu[:, 0], "sigma": sigma[:, 0]},
        )
        return pred, state

    def features(self, state) -> torch.Tensor:
        return state[0]

    def sample(self, prediction: Prediction, temperature: float = 1.0, generator=None):
        mu, sigma = prediction.params["mu"], prediction.params["sigma"]
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + sigma * math.sqrt(temperature) * eps

    def loss(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        # Every step predicts its reward and done; all but the last also the next latent.
        (mu, sigma, reward, done_logit), _ = self(batch.z, batch.action)
        mu, sigma, target = mu[:, :-1], sigma[:, :-1], batch.z[:, 1:]
        log_normal = 0.5 * ((target - mu) / sigma) ** 2 + sigma.log() + 0.5 * math.log(2 * math.pi)
        nll = masked_mean(log_normal, batch.mask[:, 1:])
        reward_loss = masked_mean((reward - batch.reward) ** 2, batch.mask)
        done_loss = masked_mean(
            F.binary_cross_entropy_with_logits(done_logit, batch.done, reduction="none"),
            batch.mask,
        )
        total = (
            nll + self.options.reward_weight * reward_loss + self.options.done_weight * done_loss
        )
        return {
            "loss": total,
            "gaussian_nll": nll,
            "reward_mse": reward_loss,
            "done_bce": done_loss,
        }

    def fit_epoch(self, batches: Iterable[SequenceBatch]) -> dict[str, float]:
        return self.fit_batches(batches, self.options.grad_clip)


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_memory(GRUGaussian)
