"""An actor-critic trained in imagination, in the style of DreamerV3 (Hafner et al. 2023).

From each start state the world model is rolled ``horizon`` steps with actions the actor
samples. With r_t and c_t the predicted reward and continuation of imagined state t and v the
critic, the lambda-returns are

    R_H = v(s_H),    R_t = r_{t+1} + gamma c_{t+1} ((1 - lambda) v(s_{t+1}) + lambda R_{t+1})

The actor's gradient is an option (``actor_grad``), with S = max(1, P95 - P5) the spread of
the returns between their 5th and 95th percentiles, smoothed over updates (so the same
entropy scale works whatever the rewards' size), and w_t the chance (by the continuation
predictions) that the imagined episode is still running:

    reinforce  (DreamerV3)  L = -sg(w_t) [ log pi(a_t | s_t) sg((R_t - v(s_t)) / S) + eta H ]
    dynamics   (DreamerV1)  L = -sg(w_t) [ R_t / sg(S) + eta H ]
    mix        (DreamerV2)  rho x the REINFORCE term + (1 - rho) x the dynamics term + eta H

For ``dynamics`` the dream is rolled with gradients: the actions are reparameterised samples
(straight-through one-hots for a categorical actor), R_t is differentiated through the
predicted rewards, the critic's values and the world model's transitions back to the actor.
REINFORCE needs no gradient through the model and is unbiased but noisy; the dynamics
gradient has far less variance when the model is smooth, which matters at small budgets.
Only the actor's parameters receive the actor loss's gradient (``torch.autograd.grad`` on
them alone), so neither the world model nor the critic is moved by it. The
critic is a two-hot symlog distribution trained towards R_t, and towards the predictions of a
slow copy of itself (an exponential moving average of its weights) to keep it steady.

The world model only serves the dream: no optimizer here holds its parameters and no
gradient is written into them, so its weights are exactly as they were after ``update``.

Every update also reports what shows a stuck actor: each action dimension's standard
deviation (``action_std_i``), the entropy as a share of its range (``entropy_share``), the
return scale S, the mean |advantage| and the actor's gradient norm before clipping.

With ``graph`` set (both pipelines set it from the recipe's ``dream.graph``) and the
tensors on CUDA, the imagination's ``horizon`` steps are recorded once as a CUDA graph and
replayed at each update (``wmkit.nn.cuda_graph``): the same kernels and random numbers, one
launch instead of a few hundred.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from pydantic import Field
from torch import nn

import wmkit
from wmkit.core.protocols import GradientController, GradientOptions, State, WorldModel
from wmkit.nn.cuda_graph import GraphedFunction, module_tensors, on_cuda
from wmkit.nn.distributions import TwoHot
from wmkit.nn.optim_state import load_optimizer_tensors, optimizer_tensors


class ActorCriticOptions(GradientOptions):
    horizon: int = Field(15, ge=1, description="Steps of each imagined trajectory.")
    gamma: float = Field(0.997, gt=0, le=1, description="Discount per step.")
    return_lambda: float = Field(0.95, ge=0, le=1, description="lambda of the lambda-returns.")
    entropy: float = Field(3e-4, ge=0, description="Weight eta of the actor's entropy bonus.")
    critic_learning_rate: float = Field(3e-5, gt=0, description="Adam learning rate of the critic.")
    units: int = Field(256, ge=1, description="Hidden units per layer of the critic.")
    layers: int = Field(2, ge=1, description="Hidden layers of the critic.")
    bins: int = Field(255, ge=2, description="Bins of the two-hot symlog critic.")
    slow_critic_decay: float = Field(
        0.98, ge=0, lt=1, description="Per update, the slow critic keeps this much of itself."
    )
    slow_critic_weight: float = Field(
        1.0, ge=0, description="Weight of the critic's loss towards the slow critic."
    )
    return_decay: float = Field(
        0.99, ge=0, lt=1, description="Smoothing of the return percentiles across updates."
    )
    grad_clip: float = Field(100.0, gt=0, description="Largest gradient norm, actor and critic.")
    actor_grad: Literal["reinforce", "dynamics", "mix"] = Field(
        "reinforce",
        description=(
            "The actor's gradient: reinforce (score function on the normalised advantage, "
            "DreamerV3), dynamics (backpropagation of the lambda-returns through the imagined "
            "model, DreamerV1), or mix (actor_grad_mix of the first, the rest of the second)."
        ),
    )
    actor_grad_mix: float = Field(
        0.5,
        ge=0,
        le=1,
        description="With actor_grad: mix, the share of REINFORCE in the actor's gradient.",
    )


def critic_net(inputs: int, units: int, layers: int, bins: int) -> nn.Module:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(inputs if i == 0 else units, units), nn.LayerNorm(units), nn.SiLU()]
    out = nn.Linear(units, bins)
    nn.init.zeros_(out.weight)  # the critic starts at 0 everywhere
    nn.init.zeros_(out.bias)
    return nn.Sequential(*blocks, out)


def lambda_returns(
    reward: torch.Tensor, cont: torch.Tensor, value: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """R_0..R_{H-1} [B, H] from reward, cont and value [B, H + 1] of states 0..H (reward and
    cont of state 0 are not used: they belong to the step that led there)."""
    H = value.shape[1] - 1
    returns = [value[:, H]]
    for t in reversed(range(H)):
        bootstrap = (1 - lam) * value[:, t + 1] + lam * returns[0]
        returns.insert(0, reward[:, t + 1] + gamma * cont[:, t + 1] * bootstrap)
    return torch.stack(returns[:H], 1)


class ActorCritic:
    name = "actor_critic"
    Options = ActorCriticOptions
    graph = False  # replay the imagination as a CUDA graph, on CUDA (set from dream.graph)

    def __init__(
        self,
        options: ActorCriticOptions,
        controller: GradientController,
        feature_dim: int,
        seed: int,
    ):
        self.options = o = options
        self.actor = controller
        with torch.random.fork_rng():  # the critic's first weights depend on the seed alone
            torch.manual_seed(seed)
            self.critic = critic_net(feature_dim, o.units, o.layers, o.bins)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_adam = torch.optim.Adam(controller.parameters(), lr=o.learning_rate, eps=1e-5)
        self.critic_adam = torch.optim.Adam(
            self.critic.parameters(), lr=o.critic_learning_rate, eps=1e-5
        )
        # Smoothed 5th and 95th percentiles of the returns; NaN until the first update.
        self.percentiles = torch.full((2,), float("nan"))
        self._graphed: tuple[WorldModel, GraphedFunction] | None = None

    def to(self, device: torch.device | str) -> ActorCritic:
        self.critic.to(device)
        self.slow_critic.to(device)
        self.percentiles = self.percentiles.to(device)
        return self

    def imagine(
        self, world_model: WorldModel, start: State, grad: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features, actions, rewards and continuations of ``horizon`` imagined steps: as a
        CUDA graph's replay where ``graph`` is set and the weights are on CUDA, else eagerly.
        With ``grad`` (dynamics backprop) always eagerly, keeping the autograd graph."""
        parts = (world_model, self.actor)
        if grad or not (self.graph and on_cuda(*parts)):
            return self._imagine(world_model, start, grad)
        if self._graphed is None or self._graphed[0] is not world_model:
            graphed = GraphedFunction(
                lambda s: self._imagine(world_model, s), lambda: module_tensors(*parts)
            )
            self._graphed = (world_model, graphed)
        return self._graphed[1](start)

    def _imagine(
        self, world_model: WorldModel, start: State, grad: bool = False
    ) -> dict[str, torch.Tensor]:
        """``action`` holds the actor's own (unclipped) samples, which the log-probabilities
        are of; the world model is fed their clipped form, as the environment would be."""
        with torch.set_grad_enabled(grad):
            state = start
            features = [world_model.features(state)]
            actions = []
            conts = [1 - world_model.predict(state).done]
            rewards = [torch.zeros_like(conts[0])]
            for _ in range(self.options.horizon):
                dist = self.actor.distribution(features[-1])
                raw = dist.sample_raw(grad) if hasattr(dist, "sample_raw") else dist.sample()
                action = dist.clip(raw) if hasattr(dist, "clip") else raw
                state = world_model.imagine(state, action)
                prediction = world_model.predict(state)
                features.append(world_model.features(state))
                actions.append(raw)
                rewards.append(prediction.reward)
                conts.append(1 - prediction.done)
            return {
                "features": torch.stack(features, 1),
                "action": torch.stack(actions, 1),
                "reward": torch.stack(rewards, 1),
                "cont": torch.stack(conts, 1),
            }

    def update(self, world_model: WorldModel, start: State) -> dict[str, float]:
        o = self.options
        reinforce = {"reinforce": 1.0, "dynamics": 0.0, "mix": o.actor_grad_mix}[o.actor_grad]
        dynamics = reinforce < 1.0
        traj = self.imagine(world_model, start, grad=dynamics)
        cont = traj["cont"].detach()
        B, H1 = traj["features"].shape[:2]
        with torch.set_grad_enabled(dynamics):  # the returns carry the dynamics gradient
            live_value = TwoHot(self.critic(traj["features"])).mean()
            live_returns = lambda_returns(
                traj["reward"], cont, live_value, o.gamma, o.return_lambda
            )
        features, value, returns = (
            traj["features"].detach(),
            live_value.detach(),
            live_returns.detach(),
        )
        with torch.no_grad():
            # w_t: the chance the imagined episode is still running at t (1 at the start).
            weight = torch.cumprod(
                torch.cat([torch.ones_like(cont[:, :1]), cont[:, 1:-1] * o.gamma], 1), 1
            )
            low_high = torch.quantile(
                returns.flatten(), torch.tensor([0.05, 0.95], device=returns.device)
            )
            if torch.isnan(self.percentiles).any():
                self.percentiles = low_high
            else:
                d = o.return_decay
                self.percentiles = d * self.percentiles + (1 - d) * low_high
            scale = (self.percentiles[1] - self.percentiles[0]).clamp(min=1.0)
            advantage = (returns - value[:, :-1]) / scale

        # The actor: REINFORCE on the advantage and/or the returns' dynamics gradient, plus
        # entropy. Gradients go to the actor's parameters only, never the model's or critic's.
        dist = self.actor.distribution(features[:, :-1].flatten(0, 1))
        raw = traj["action"].detach().flatten(0, 1)
        entropy = dist.entropy().reshape(B, H1 - 1)
        objective = o.entropy * entropy
        if reinforce > 0:
            log_prob = dist.log_prob(raw).reshape(B, H1 - 1)
            objective = objective + reinforce * log_prob * advantage
        if dynamics:
            objective = objective + (1 - reinforce) * live_returns / scale
        actor_loss = -(weight * objective).mean()
        params = [p for p in self.actor.parameters() if p.requires_grad]
        grads = torch.autograd.grad(actor_loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = torch.zeros_like(p) if g is None else g
        actor_grad_norm = nn.utils.clip_grad_norm_(params, o.grad_clip)
        self.actor_adam.step()
        diagnostics = self._actor_diagnostics(dist)

        # The critic: towards the returns, and towards the slow critic's predictions.
        inputs = features[:, :-1]
        predicted = TwoHot(self.critic(inputs))
        with torch.no_grad():
            slow = TwoHot(self.slow_critic(inputs)).mean()
        critic_loss = -(
            weight * (predicted.log_prob(returns) + o.slow_critic_weight * predicted.log_prob(slow))
        ).mean()
        self.critic_adam.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), o.grad_clip)
        self.critic_adam.step()
        with torch.no_grad():
            for p, q in zip(self.slow_critic.parameters(), self.critic.parameters()):
                p.mul_(o.slow_critic_decay).add_(q, alpha=1 - o.slow_critic_decay)

        return {
            "actor_loss": float(actor_loss.item()),
            "critic_loss": float(critic_loss.item()),
            "entropy": float(entropy.mean().item()),
            "imagined_return": float(returns[:, 0].mean().item()),
            "return_scale": float(scale.item()),
            "advantage_abs": float(advantage.abs().mean().item()),
            "actor_grad_norm": float(actor_grad_norm.item()),
            **diagnostics,
        }

    @staticmethod
    @torch.no_grad()
    def _actor_diagnostics(dist) -> dict[str, float]:
        """What shows a stuck actor: the entropy as a share of its range and, for a
        Gaussian, each action dimension's mean standard deviation (in [-1, 1] units)."""
        out: dict[str, float] = {}
        if hasattr(dist, "entropy_share"):
            out["entropy_share"] = float(dist.entropy_share().mean().item())
        std = getattr(dist, "std", None)
        if isinstance(std, torch.Tensor):
            for i, value in enumerate(std.reshape(-1, std.shape[-1]).mean(0).tolist()):
                out[f"action_std_{i}"] = float(value)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"critic.{k}": v for k, v in self.critic.state_dict().items()}
        state.update({f"slow_critic.{k}": v for k, v in self.slow_critic.state_dict().items()})
        state.update({f"actor_adam.{k}": v for k, v in optimizer_tensors(self.actor_adam).items()})
        state.update(
            {f"critic_adam.{k}": v for k, v in optimizer_tensors(self.critic_adam).items()}
        )
        state["percentiles"] = self.percentiles.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

        self.critic.load_state_dict(part("critic."))
        self.slow_critic.load_state_dict(part("slow_critic."))
        load_optimizer_tensors(self.actor_adam, part("actor_adam."))
        load_optimizer_tensors(self.critic_adam, part("critic_adam."))
        self.percentiles = state["percentiles"].clone()


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_optimizer(ActorCritic)
