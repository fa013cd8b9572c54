"""Imagination with a WorldModel (the online pipeline's), for ``wmkit dream`` and ``wmkit gap``.

The paper's pipeline dreams with M from V's latent of a real frame (``wmkit.dreams.rollout``,
``wmkit.dreams.film``). A world model trained as one piece starts instead from its state
after observing a real first observation, then ``imagine``s step by step; ``predict`` gives
each reached state's reward and the chance that it ends the episode, and ``decode`` what the
world model believes the observation looks like. The run's own episodes provide the real
first observations, so gap's dreams start where the agent's real episodes did; a zoo entry
ships the first observations of the run's first episodes instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import GradientController, State, WorldModel
from wmkit.dreams.film import Imagination
from wmkit.dreams.rollout import DreamResult
from wmkit.rollouts.agent import obs_to_tensor
from wmkit.storage.rundir import RunDir
from wmkit.storage.store import RolloutStore
from wmkit.storage.zoo import start_observations_of

# Actions for a batch of imagined states: features [B, F] -> actions [B, A].
Actor = Callable[[torch.Tensor], torch.Tensor]


def first_observations(run: RunDir, limit: int = 4096) -> np.ndarray:
    """The first observation of each of the run's first ``limit`` stored episodes; for a zoo
    entry, which ships no episodes, the first observations it ships."""
    shipped = start_observations_of(run)
    if shipped is not None:
        return shipped[:limit]
    store = RolloutStore(run.rollouts)
    infos = store.infos()[:limit]
    if not infos:
        raise WmkitError(f"{run.rollouts}: no stored episode to start imagining from")
    return np.stack([store.load(info.episode)["frames"][0] for info in infos])


@torch.no_grad()
def start_states(
    world_model: WorldModel,
    observations: np.ndarray,
    action_dim: int,
    count: int,
    generator: torch.Generator,
    device: torch.device | str,
) -> State:
    """``count`` states, each after observing one of ``observations`` (drawn with
    ``generator``) as an episode's first step."""
    pick = torch.randint(len(observations), (count,), generator=generator).numpy()
    return world_model.observe(
        world_model.initial_state(count),
        torch.zeros(count, action_dim, device=device),
        obs_to_tensor(observations[pick], device),
        torch.ones(count, device=device),
    )


def dream_ended(
    done: torch.Tensor, done_threshold: float, sample_ends: bool = False
) -> torch.Tensor:
    """Which dreams end at this step: done past the threshold, or drawn with probability
    done (``sample_ends``, from torch's global generator)."""
    if sample_ends:
        return torch.rand_like(done) < done
    return done >= done_threshold


@torch.no_grad()
def imagine_episodes(
    world_model: WorldModel,
    actor: Actor,
    state: State,
    max_steps: int,
    done_threshold: float,
    sample_ends: bool = False,
) -> DreamResult:
    """Roll every state of the batch forward with ``actor``'s actions until the world model
    predicts the end (done >= ``done_threshold``; with ``sample_ends``, with probability
    done at each step) or ``max_steps``; the draws come from torch's global generator (the
    caller seeds it)."""
    features = world_model.features(state)
    batch, device = features.shape[0], features.device
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    returns = torch.zeros(batch, device=device)
    steps = torch.zeros(batch, dtype=torch.long, device=device)
    for _ in range(max_steps):
        state = world_model.imagine(state, actor(world_model.features(state)))
        prediction = world_model.predict(state)
        returns += torch.where(alive, prediction.reward.float(), torch.zeros_like(returns))
        steps += alive.long()
        alive &= ~dream_ended(prediction.done, done_threshold, sample_ends)
        if not bool(alive.any()):
            break
    return DreamResult(returns, steps)


@torch.no_grad()
def imagine_video(
    env,
    world_model: WorldModel,
    actor: GradientController | None,
    action_dim: int,
    steps: int,
    seed: int,
    side_by_side: bool,
    random,
    done_threshold: float,
    device: str,
    sample_ends: bool = False,
) -> Imagination:
    """``wmkit dream`` for a world model: from the real first frame of the episode with
    ``seed``, what it imagines (``decode``); with ``side_by_side`` also the real episode and
    the world model's reading of it (its state filtered on each real frame, decoded), the
    actions chosen on the real frames and given to both."""
    decode = getattr(world_model, "decode", None)
    if decode is None:
        raise WmkitError(f"world model {type(world_model).__name__}: has no decode to film")
    out = Imagination()
    frame, _ = env.reset(seed=seed)
    first = torch.ones(1, device=device)
    state = world_model.observe(
        world_model.initial_state(1),
        torch.zeros(1, action_dim, device=device),
        obs_to_tensor(frame[None], device),
        first,
    )
    seen = state  # filtered on the real frames (side by side)
    for _ in range(steps):
        if side_by_side:
            out.real.append(frame)
            out.reconstructed.append(_image(decode(seen)))
        if actor is not None:
            acting_on = seen if side_by_side else state
            action = actor.act(world_model.features(acting_on))[0].cpu().numpy()
        else:
            action = random.act(frame)
        out.imagined.append(_image(decode(state)))
        a = torch.as_tensor(np.asarray(action, dtype=np.float32)[None], device=device)
        state = world_model.imagine(state, a)
        prediction = world_model.predict(state)
        out.dream_reward += float(prediction.reward[0])
        if side_by_side:
            frame, reward, terminated, truncated, _ = env.step(action)
            out.real_reward += float(reward)
            seen = world_model.observe(
                seen, a, obs_to_tensor(frame[None], device), torch.zeros(1, device=device)
            )
            if terminated or truncated:
                out.ended_by = "real episode ended"
                break
        if bool(dream_ended(prediction.done[:1], done_threshold, sample_ends)):
            out.ended_by = "dream predicted done"
            break
    return out


def _image(frames: torch.Tensor) -> np.ndarray:
    """The first of decoded frames [B, C, H, W] in [0, 1] as uint8 [H, W, C]."""
    return frames.clamp(0, 1).mul(255).byte().permute(0, 2, 3, 1).cpu().numpy()[0]
