"""An RSSM world model in the style of DreamerV3 (Hafner et al. 2023): V and M as one piece.

State s_t = (h_t, z_t): h the GRU's deterministic state, z the sampled latent, ``stoch``
categoricals of ``classes`` classes each (32 x 32 in the paper), one-hot.

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])        recurrence: z feeds it, not a decoded frame
    z_t ~ q(z | h_t, embed(o_t))                  posterior, when there is an observation
    z_t ~ p(z | h_t)                              prior, the dream
    o_t, r_t, c_t  <-  [h_t, z_t]                 decoder, two-hot reward, continuation
                                                  (c_t from h_t alone: continuation_input)

Latents are sampled with straight-through gradients from probabilities mixed with 1% of the
uniform (unimix). Training loss, on real sequences:

    L = L_obs + L_reward + L_cont + 0.5 max(1, KL[sg(q) || p]) + 0.1 max(1, KL[q || sg(p)])

the KL balanced between learning the prior (dynamics) and regularising the posterior
(representation), each clipped below at ``free_bits`` nats. State vectors are read and
reconstructed in symlog space by MLPs; 64x64 frames by a CNN.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ObservationBatch, Prediction, State, WorldModelOptions
from wmkit.nn.distributions import (
    TwoHot,
    categorical_kl,
    sample_one_hot,
    symexp,
    symlog,
    unimix_probs,
)
from wmkit.nn.optim_state import load_optimizer_tensors, optimizer_tensors


class RSSMOptions(WorldModelOptions):
    deter: int = Field(512, ge=1, description="Size of the GRU's deterministic state h.")
    stoch: int = Field(32, ge=1, description="Categorical variables in the latent z.")
    classes: int = Field(32, ge=2, description="Classes of each categorical variable.")
    units: int = Field(512, ge=1, description="Hidden units of every MLP.")
    layers: int = Field(2, ge=1, description="Hidden layers of the encoder, decoder and heads.")
    cnn_depth: int = Field(32, ge=1, description="Channels of the first conv layer (frames).")
    unimix: float = Field(
        0.01, ge=0, lt=1, description="Share of the uniform mixed into every categorical."
    )
    free_bits: float = Field(
        1.0, ge=0, description="KL terms below this many nats are not pushed lower."
    )
    kl_dynamics: float = Field(0.5, ge=0, description="Weight of KL[sg(posterior) || prior].")
    kl_representation: float = Field(0.1, ge=0, description="Weight of KL[posterior || sg(prior)].")
    reward_bins: int = Field(255, ge=2, description="Bins of the two-hot symlog reward head.")
    grad_clip: float = Field(1000.0, gt=0, description="Largest global gradient norm.")
    temperature: float = Field(
        1.0,
        gt=0,
        description=(
            "Temperature of the prior in the dream: its logits are divided by this when "
            "imagining (never when observing or training). Above 1 the dream is more uncertain "
            "and harder for the actor to exploit, as the paper's tau of 1.15 on Doom."
        ),
    )
    continuation_input: Literal["state", "deter"] = Field(
        "state",
        description=(
            "What the continuation head reads. state (DreamerV3's): h and z, so it can read an "
            "episode's end off the posterior latent of the frame that shows it; the dream then "
            "ends only if the prior happens to draw that latent. deter: h alone, before the "
            "frame is seen, as the paper's M predicts done from its memory: the head must "
            "foresee the end, and the dream gets the chance of it at every step."
        ),
    )
    end_weight: float = Field(
        1.0,
        gt=0,
        description=(
            "Weight of the continuation loss on steps that end an episode. Deaths are rare "
            "(one step in hundreds on Doom), so an unweighted head can learn never to predict "
            "one; the paper's M weights them 10x (mdn_rnn's done_pos_weight). 1 is DreamerV3's."
        ),
    )


def mlp(inputs: int, units: int, layers: int, outputs: int, zero_last: bool = False) -> nn.Module:
    """Linear -> LayerNorm -> SiLU blocks, then a linear output (zeroed: a head that starts
    predicting nothing, as DreamerV3's reward and value heads do)."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(inputs if i == 0 else units, units), nn.LayerNorm(units), nn.SiLU()]
    out = nn.Linear(units if layers else inputs, outputs)
    if zero_last:
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
    return nn.Sequential(*blocks, out)


class FrameEncoder(nn.Module):
    """64x64 RGB frames to a vector: four stride-2 convolutions (64 -> 4), then flatten."""

    def __init__(self, depth: int):
        super().__init__()
        chans = [3, depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.GroupNorm(1, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = 8 * depth * 4 * 4

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames - 0.5)


class FrameDecoder(nn.Module):
    """Features to 64x64 RGB frames (centred on 0.5): the encoder mirrored."""

    def __init__(self, feature_dim: int, depth: int):
        super().__init__()
        self.depth = depth
        self.project = nn.Linear(feature_dim, 8 * depth * 4 * 4)
        chans = [8 * depth, 4 * depth, 2 * depth, depth]
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.GroupNorm(1, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.ConvTranspose2d(depth, 3, 4, 2, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.project(features).reshape(-1, 8 * self.depth, 4, 4)
        return self.net(x) + 0.5


class RSSM(nn.Module):
    name = "rssm"
    Options = RSSMOptions

    def __init__(self, options: RSSMOptions, obs_shape: tuple[int, ...], action_dim: int):
        super().__init__()
        self.options = o = options
        self.vector = len(obs_shape) == 1
        if not self.vector and tuple(obs_shape) != (3, 64, 64):
            raise WmkitError(
                f"world_model: rssm reads state vectors or 64x64 RGB frames, got {obs_shape}; "
                "set env.frame_size: 64"
            )
        self.obs_shape = tuple(obs_shape)
        self.latent_dim = o.stoch * o.classes
        self.feature_dim = o.deter + self.latent_dim
        if self.vector:
            self.encoder: nn.Module = mlp(obs_shape[0], o.units, o.layers, o.units)
            self.decoder: nn.Module = mlp(self.feature_dim, o.units, o.layers, obs_shape[0])
            embed_dim = o.units
        else:
            self.encoder = FrameEncoder(o.cnn_depth)
            self.decoder = FrameDecoder(self.feature_dim, o.cnn_depth)
            embed_dim = self.encoder.out_dim
        self.img_in = nn.Sequential(
            nn.Linear(self.latent_dim + action_dim, o.units), nn.LayerNorm(o.units), nn.SiLU()
        )
        self.gru = nn.GRUCell(o.units, o.deter)
        self.prior_net = mlp(o.deter, o.units, 1, self.latent_dim)
        self.post_net = mlp(o.deter + embed_dim, o.units, 1, self.latent_dim)
        self.reward_head = mlp(self.feature_dim, o.units, o.layers, o.reward_bins, zero_last=True)
        cont_inputs = o.deter if o.continuation_input == "deter" else self.feature_dim
        self.cont_head = mlp(cont_inputs, o.units, o.layers, 1)
        self._optimizer: torch.optim.Optimizer | None = None

    # -- the state ------------------------------------------------------------------------

    def initial_state(self, batch_size: int) -> State:
        device = self.gru.weight_hh.device
        return {
            "deter": torch.zeros(batch_size, self.options.deter, device=device),
            "stoch": torch.zeros(batch_size, self.latent_dim, device=device),
        }

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state["deter"], state["stoch"]], -1)

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        """[B, stoch * classes] logits to [B, stoch, classes] probabilities, with unimix."""
        shaped = logits.reshape(*logits.shape[:-1], self.options.stoch, self.options.classes)
        return unimix_probs(shaped, self.options.unimix)

    def _sample(self, probs: torch.Tensor) -> torch.Tensor:
        return sample_one_hot(probs).flatten(-2)

    def _recur(self, state: State, action: torch.Tensor) -> torch.Tensor:
        """h_t from h_{t-1}, z_{t-1} and a_{t-1}."""
        return self.gru(self.img_in(torch.cat([state["stoch"], action], -1)), state["deter"])

    def _embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(symlog(obs) if self.vector else obs)

    # -- acting and dreaming ----------------------------------------------------------------

    def observe(
        self, state: State, prev_action: torch.Tensor, obs: torch.Tensor, first: torch.Tensor
    ) -> State:
        keep = (1 - first.float())[:, None]
        state = {k: v * keep for k, v in state.items()}
        deter = self._recur(state, prev_action * keep)
        logits = self.post_net(torch.cat([deter, self._embed(obs)], -1))
        return {"deter": deter, "stoch": self._sample(self._probs(logits))}

    def imagine(self, state: State, action: torch.Tensor) -> State:
        deter = self._recur(state, action)
        logits = self.prior_net(deter) / self.options.temperature
        return {"deter": deter, "stoch": self._sample(self._probs(logits))}

    def predict(self, state: State) -> Prediction:
        features = self.features(state)
        reward = TwoHot(self.reward_head(features)).mean()
        done = 1 - torch.sigmoid(self._cont_logit(state["deter"], features))
        return Prediction(reward=reward, done=done)

    def _cont_logit(self, deter: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        head_input = deter if self.options.continuation_input == "deter" else features
        return self.cont_head(head_input).squeeze(-1)

    def decode(self, state: State) -> torch.Tensor:
        """What the model believes the observation looks like: frames [B, 3, 64, 64] in
        [0, 1], or state vectors [B, n] (the decoder works in symlog space)."""
        out = self.decoder(self.features(state))
        return symexp(out) if self.vector else out.clamp(0, 1)

    # -- training ---------------------------------------------------------------------------

    def loss(self, batch: ObservationBatch) -> tuple[dict[str, torch.Tensor], State]:
        """The loss on real sequences, and the filtered state of every step."""
        o = self.options
        B, T = batch.obs.shape[:2]
        embed = self._embed(batch.obs.flatten(0, 1)).reshape(B, T, -1)
        state = self.initial_state(B)
        deters, stochs, posts, priors = [], [], [], []
        for t in range(T):
            keep = (1 - batch.first[:, t])[:, None]
            state = {k: v * keep for k, v in state.items()}
            deter = self._recur(state, batch.prev_action[:, t] * keep)
            prior = self._probs(self.prior_net(deter))
            post = self._probs(self.post_net(torch.cat([deter, embed[:, t]], -1)))
            state = {"deter": deter, "stoch": self._sample(post)}
            deters.append(deter)
            stochs.append(state["stoch"])
            posts.append(post)
            priors.append(prior)
        deter, stoch = torch.stack(deters, 1), torch.stack(stochs, 1)
        post, prior = torch.stack(posts, 1), torch.stack(priors, 1)
        features = torch.cat([deter, stoch], -1)
        mask = batch.mask

        def masked(x: torch.Tensor) -> torch.Tensor:
            return (x * mask).sum() / mask.sum().clamp(min=1)

        if self.vector:
            recon = self.decoder(features)
            obs_loss = ((recon - symlog(batch.obs)) ** 2).sum(-1)
        else:
            recon = self.decoder(features.flatten(0, 1)).reshape(batch.obs.shape)
            obs_loss = ((recon - batch.obs) ** 2).sum((-3, -2, -1))
        reward_loss = -TwoHot(self.reward_head(features)).log_prob(batch.reward)
        cont_loss = F.binary_cross_entropy_with_logits(
            self._cont_logit(deter, features), batch.cont, reduction="none"
        )
        if o.end_weight != 1.0:
            cont_loss = cont_loss * torch.where(batch.cont < 0.5, o.end_weight, 1.0)
        dyn = categorical_kl(post.detach(), prior).clamp(min=o.free_bits)
        rep = categorical_kl(post, prior.detach()).clamp(min=o.free_bits)
        losses = {
            "obs": masked(obs_loss),
            "reward": masked(reward_loss),
            "cont": masked(cont_loss),
            "kl_dynamics": masked(dyn),
            "kl_representation": masked(rep),
        }
        losses["loss"] = (
            losses["obs"]
            + losses["reward"]
            + losses["cont"]
            + o.kl_dynamics * losses["kl_dynamics"]
            + o.kl_representation * losses["kl_representation"]
        )
        starts = {"deter": deter.detach().flatten(0, 1), "stoch": stoch.detach().flatten(0, 1)}
        return losses, starts

    def _adam(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(
                self.parameters(), lr=self.options.learning_rate, eps=1e-8
            )
        return self._optimizer

    def fit_batch(self, batch: ObservationBatch) -> tuple[dict[str, float], State]:
        losses, starts = self.loss(batch)
        optimizer = self._adam()
        optimizer.zero_grad()
        losses["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), self.options.grad_clip)
        optimizer.step()
        values = {k: float(v.item()) for k, v in losses.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise WmkitError(f"world_model: rssm's loss is not finite ({values}); lower the rate")
        return values, starts

    def train_state_dict(self) -> dict[str, torch.Tensor]:
        """Adam's moments, so that training resumed after a crash continues exactly."""
        return optimizer_tensors(self._adam())

    def load_train_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_optimizer_tensors(self._adam(), state)


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_world_model(RSSM)
