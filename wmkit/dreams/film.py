"""Dream films, for the ``wmkit dream`` command: roll M forward from a real frame and decode
every latent to a video frame.

With ``side_by_side``, the real environment and the dream start from the same real frame and
receive the same actions (chosen by the agent on the real observations), so each video frame
shows real | reconstructed by V | imagined by M next to each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from wmkit.core.protocols import Controller, Memory, Vision
from wmkit.rollouts.agent import Agent, frames_to_tensor
from wmkit.rollouts.envs import FrameWrapper
from wmkit.rollouts.policies import Policy, UniformPolicy


@dataclass
class Imagination:
    """Frames of one dream (and of reality, when side by side), uint8 [T, H, W, 3]."""

    imagined: list[np.ndarray] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    reconstructed: list[np.ndarray] = field(default_factory=list)
    dream_reward: float = 0.0
    real_reward: float = 0.0
    ended_by: str = "steps"


def _to_image(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).byte().permute(0, 2, 3, 1).cpu().numpy()[0]


@torch.no_grad()
def imagine(
    env: FrameWrapper,
    vision: Vision,
    memory: Memory,
    controller: Controller | None,
    steps: int,
    temperature: float,
    seed: int,
    side_by_side: bool = False,
    random: Policy | None = None,
    done_threshold: float = 0.5,
    device: str = "cpu",
) -> Imagination:
    """Dream ``steps`` steps from the first frame of the episode with ``seed``.
    ``controller`` None means the actions are ``random``'s (default: uniform, seeded by
    ``seed``)."""
    out = Imagination()
    gen = torch.Generator(device=device).manual_seed(seed)
    frame, _ = env.reset(seed=seed)
    if random is None:
        random = UniformPolicy(env.action_space.low, env.action_space.high, seed)
    agent = Agent(vision, memory, controller, device) if controller is not None else None
    z_dream = vision.encode(frames_to_tensor(frame[None], device))[0]
    dream_state = memory.initial_state(1)
    if agent is not None:
        agent.reset(1)
    for _ in range(steps):
        if side_by_side:
            real_z = vision.encode(frames_to_tensor(frame[None], device))[0]
            out.real.append(frame)
            out.reconstructed.append(_to_image(vision.decode(real_z)))
            action = agent.act(frame[None])[0] if agent is not None else random.act(frame)
        elif controller is not None:
            feats = torch.cat([z_dream, memory.features(dream_state)], dim=1)
            action = controller.act(feats)[0].cpu().numpy()
        else:
            action = random.act(frame)
        # Frame t of the dream is what M believes frame t looks like (t = 0: V's encoding).
        out.imagined.append(_to_image(vision.decode(z_dream)))
        a = torch.as_tensor(np.asarray(action, dtype=np.float32)[None], device=device)
        prediction, dream_state = memory.step(z_dream, a, dream_state)
        z_dream = memory.sample(prediction, temperature, gen)
        out.dream_reward += float(prediction.reward[0])
        if side_by_side:
            frame, reward, terminated, truncated, _ = env.step(action)
            out.real_reward += float(reward)
            if terminated or truncated:
                out.ended_by = "real episode ended"
                break
        if float(prediction.done[0]) >= done_threshold:
            out.ended_by = "dream predicted done"
            break
    return out


def compose(imagination: Imagination, scale: int = 3) -> np.ndarray:
    """Video frames [T, H, W, 3]: one panel per stream, each labelled, upscaled ``scale``x."""
    streams = [("imagined", imagination.imagined)]
    if imagination.real:
        streams = [
            ("real", imagination.real),
            ("V reconstruction", imagination.reconstructed),
            ("M imagination", imagination.imagined),
        ]
    frames = []
    for t in range(len(imagination.imagined)):
        panels = []
        for label, stream in streams:
            img = Image.fromarray(stream[t]).resize(
                (stream[t].shape[1] * scale, stream[t].shape[0] * scale), Image.NEAREST
            )
            canvas = Image.new("RGB", (img.width, img.height + 14), "black")
            canvas.paste(img, (0, 14))
            ImageDraw.Draw(canvas).text((3, 1), label, fill="white")
            panels.append(np.asarray(canvas))
        sep = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [sep, p]
        frames.append(np.concatenate(row, axis=1))
    return np.stack(frames)
