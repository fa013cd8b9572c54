"""MDN-RNN, the paper's M: an LSTM whose output parameterises, for every latent dimension,
a mixture of K Gaussians over that dimension's next value, plus reward and done heads so
that M can be stepped like an environment (a "dream").

    p(z'_i | z, a, h) = sum_k pi_ik N(z'_i; mu_ik, sigma_ik)     for i = 1..Z

``precision: bf16`` trains the LSTM and the head in bfloat16 autocast; the mixture's
log-likelihood and the other losses stay in float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.protocols import MemoryOptions, Prediction, SequenceBatch, masked_mean
from wmkit.nn.optim_state import AdamTraining

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class MDNRNNOptions(MemoryOptions):
    hidden: int = Field(256, ge=1, description="LSTM hidden size (256 for CarRacing).")
    gaussians: int = Field(5, ge=1, description="Mixture components per latent dimension.")
    reward_weight: float = Field(1.0, ge=0, description="Weight of the reward MSE in the loss.")
    done_weight: float = Field(1.0, ge=0, description="Weight of the done BCE in the loss.")
    done_pos_weight: float = Field(
        1.0, gt=0, description="Extra weight of 'done' examples, which are rare."
    )
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clip.")
    controller_features: Literal["h", "hc"] = Field(
        "h",
        description="What C sees of the memory: h, or h and the LSTM cell c (paper's Doom).",
    )
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    batch_size: int = Field(100, ge=1, description="Sequences per training step.")
    epochs: int = Field(20, ge=1, description="Passes over the latent sequences.")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description=(
            "Training forward pass (LSTM and head) in float32, or in bfloat16 autocast "
            "(faster on GPUs with bf16 tensor cores); the losses are computed in float32."
        ),
    )


def mdn_log_prob(
    logpi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """log sum_k pi_k N(x; mu_k, sigma_k) for mixtures on the last axis; x has no K axis."""
    x = x.unsqueeze(-1)
    log_normal = -0.5 * ((x - mu) / sigma) ** 2 - sigma.log() - LOG_SQRT_2PI
    return torch.logsumexp(logpi + log_normal, dim=-1)


class MDNRNN(AdamTraining, nn.Module):
    name = "mdn_rnn"
    Options = MDNRNNOptions

    def __init__(self, options: MDNRNNOptions, latent_dim: int, action_dim: int):
        super().__init__()
        self.options = options
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.feature_dim = options.hidden * (2 if options.controller_features == "hc" else 1)
        k = options.gaussians
        self.lstm = nn.LSTM(latent_dim + action_dim, options.hidden, batch_first=True)
        # Per latent dim and component: a mixture logit, a mean and a log std; then r and done.
        self.head = nn.Linear(options.hidden, latent_dim * k * 3 + 2)
        # Episodes rarely end: start the done head at p(done) ~ 0.7% rather than 50%, so
        # that a dream from a barely trained M does not stop at every other step.
        with torch.no_grad():
            self.head.bias[-1] = -5.0

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        k, z = self.options.gaussians, self.latent_dim
        mix = out[..., : z * k * 3].reshape(*out.shape[:-1], z, 3 * k)
        logpi = F.log_softmax(mix[..., :k], dim=-1)
        mu = mix[..., k : 2 * k]
        sigma = mix[..., 2 * k :].clamp(-8, 8).exp()
        return logpi, mu, sigma, out[..., -2], out[..., -1]

    def _outputs(self, z: torch.Tensor, action: torch.Tensor, state=None):
        """The LSTM and the head: the part that may run in bfloat16 (``precision``)."""
        h, state = self.lstm(torch.cat([z, action], dim=-1), state)
        return self.head(h), state

    def forward(self, z: torch.Tensor, action: torch.Tensor, state=None):
        """Whole sequences [B, T, .]: mixture params and reward/done logits per step."""
        out, state = self._outputs(z, action, state)
        return self._split(out), state

    def initial_state(self, batch_size: int):
        p = next(self.parameters())
        zeros = torch.zeros(1, batch_size, self.options.hidden, device=p.device, dtype=p.dtype)
        return (zeros, zeros.clone())

    def step(self, z: torch.Tensor, action: torch.Tensor, state):
        (logpi, mu, sigma, reward, done_logit), state = self(
            z.unsqueeze(1), action.to(z.dtype).unsqueeze(1), state
        )
        pred = Prediction(
            reward=reward[:, 0],
            done=torch.sigmoid(done_logit[:, 0]),
            params={"logpi": logpi[:, 0], "mu": mu[:, 0], "sigma": sigma[:, 0]},
        )
        return pred, state

    def features(self, state) -> torch.Tensor:
        h, c = state
        return torch.cat([h[0], c[0]], dim=1) if self.options.controller_features == "hc" else h[0]

    def sample(self, prediction: Prediction, temperature: float = 1.0, generator=None):
        """The paper's temperature: mixture logits divided by tau, std scaled by sqrt(tau)."""
        logpi, mu, sigma = (prediction.params[k] for k in ("logpi", "mu", "sigma"))
        probs = F.softmax(logpi / temperature, dim=-1)
        # Inverse-CDF pick of one component per latent dimension (cheaper than multinomial).
        u = torch.rand(
            probs.shape[:-1] + (1,), generator=generator, device=probs.device, dtype=probs.dtype
        )
        pick = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp(max=probs.shape[-1] - 1)
        mu_k = mu.gather(-1, pick).squeeze(-1)
        sigma_k = sigma.gather(-1, pick).squeeze(-1)
        eps = torch.randn(mu_k.shape, generator=generator, device=mu_k.device, dtype=mu_k.dtype)
        return mu_k + sigma_k * math.sqrt(temperature) * eps

    def loss(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        # Every step predicts its reward and done; all but the last also the next latent.
        with self.autocast():
            out, _ = self._outputs(batch.z, batch.action)
        logpi, mu, sigma, reward, done_logit = self._split(out.float())  # .float(): no-op in fp32
        log_prob = mdn_log_prob(logpi[:, :-1], mu[:, :-1], sigma[:, :-1], batch.z[:, 1:])
        nll = -masked_mean(log_prob, batch.mask[:, 1:])
        reward_loss = masked_mean((reward - batch.reward) ** 2, batch.mask)
        pos_weight = torch.tensor(self.options.done_pos_weight, device=done_logit.device)
        done_loss = masked_mean(
            F.binary_cross_entropy_with_logits(
                done_logit, batch.done, pos_weight=pos_weight, reduction="none"
            ),
            batch.mask,
        )
        total = (
            nll + self.options.reward_weight * reward_loss + self.options.done_weight * done_loss
        )
        return {"loss": total, "mdn_nll": nll, "reward_mse": reward_loss, "done_bce": done_loss}

    def fit_epoch(self, batches: Iterable[SequenceBatch]) -> dict[str, float]:
        return self.fit_batches(batches, self.options.grad_clip)


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_memory(MDNRNN)
