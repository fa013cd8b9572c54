"""The DeepMind Control Suite (``dm-control``, MuJoCo) as wmkit environments: ``dmc/walker-walk``.

Every task of ``dm_control.suite`` is registered as ``dmc/<domain>-<task>``. The observation is
either the task's proprioceptive state, its observation dict flattened in the suite's own key
order to one float32 vector, or (``env.kwargs: {obs: pixels}``) a 64x64 RGB frame from the
camera DreamerV3 renders (camera 2 for quadruped, camera 0 otherwise). Actions are the task's
box, [-1, 1] per actuator. An episode is the suite's own: 1,000 control steps for every task
DreamerV3 reports, ended by the time limit (a truncation, never a termination).

Action repeat is wmkit's (``env.action_repeat``); DreamerV3 repeats each action twice in the
configuration that produced its published DMC scores. Frames held in between are not rendered.

Pixels need a headless OpenGL. Unless ``MUJOCO_GL`` is set, the first pixel environment of a
process tries ``egl``, then ``osmesa``, each in a throw-away subprocess (a failed GL backend
cannot be unloaded from this one), and keeps the first that renders.

    pip install -e '.[dmc]'
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Literal

import gymnasium
import numpy as np
from gymnasium.spaces import Box

import wmkit
from wmkit.core.errors import WmkitError

# dm_control.suite.ALL_TASKS of dm-control 1.0.x, written out so that registering the ids
# needs neither dm-control nor its import time; tests/rollouts/test_dmc.py keeps it equal to
# the suite's.
SUITE_TASKS: tuple[tuple[str, str], ...] = (
    ("acrobot", "swingup"),
    ("acrobot", "swingup_sparse"),
    ("ball_in_cup", "catch"),
    ("cartpole", "balance"),
    ("cartpole", "balance_sparse"),
    ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"),
    ("cartpole", "two_poles"),
    ("cartpole", "three_poles"),
    ("cheetah", "run"),
    ("dog", "stand"),
    ("dog", "walk"),
    ("dog", "trot"),
    ("dog", "run"),
    ("dog", "fetch"),
    ("finger", "spin"),
    ("finger", "turn_easy"),
    ("finger", "turn_hard"),
    ("fish", "upright"),
    ("fish", "swim"),
    ("hopper", "stand"),
    ("hopper", "hop"),
    ("humanoid", "stand"),
    ("humanoid", "walk"),
    ("humanoid", "run"),
    ("humanoid", "run_pure_state"),
    ("humanoid_CMU", "stand"),
    ("humanoid_CMU", "walk"),
    ("humanoid_CMU", "run"),
    ("lqr", "lqr_2_1"),
    ("lqr", "lqr_6_2"),
    ("manipulator", "bring_ball"),
    ("manipulator", "bring_peg"),
    ("manipulator", "insert_ball"),
    ("manipulator", "insert_peg"),
    ("pendulum", "swingup"),
    ("point_mass", "easy"),
    ("point_mass", "hard"),
    ("quadruped", "walk"),
    ("quadruped", "run"),
    ("quadruped", "escape"),
    ("quadruped", "fetch"),
    ("reacher", "easy"),
    ("reacher", "hard"),
    ("stacker", "stack_2"),
    ("stacker", "stack_4"),
    ("swimmer", "swimmer6"),
    ("swimmer", "swimmer15"),
    ("walker", "stand"),
    ("walker", "walk"),
    ("walker", "run"),
)

# DreamerV3's camera per domain (embodied/envs/dmc.py, DEFAULT_CAMERAS); 0 for the rest.
CAMERAS = {"quadruped": 2}
# Headless OpenGL backends, in the order they are tried.
GL_BACKENDS = ("egl", "osmesa")
# MUJOCO_GL values by which dm-control means "render nothing".
NO_RENDERER = ("off", "disable", "disabled", "false", "0")
GL_HELP = (
    "dmc pixels need a headless OpenGL and neither MUJOCO_GL=egl nor MUJOCO_GL=osmesa renders "
    "here; install one (Debian: apt-get install -y libegl1, or libosmesa6) or set MUJOCO_GL"
)
# Renders one frame with the backend named in argv[1], in a fresh interpreter.
_PROBE = (
    "import os, sys; os.environ['MUJOCO_GL'] = sys.argv[1]; import mujoco; "
    'm = mujoco.MjModel.from_xml_string(\'<mujoco><worldbody><geom size="1"/></worldbody>'
    "</mujoco>'); r = mujoco.Renderer(m, 8, 8); r.update_scene(mujoco.MjData(m)); r.render()"
)


def gl_help() -> str:
    """Why pixels cannot be rendered here, in one line."""
    chosen = os.environ.get("MUJOCO_GL", "")
    if chosen.lower() in NO_RENDERER and chosen:
        return f"dmc pixels need a headless OpenGL, and MUJOCO_GL={chosen} renders nothing"
    return GL_HELP


def env_id(domain: str, task: str) -> str:
    return f"dmc/{domain}-{task}"


def gl_works(backend: str) -> bool:
    """Whether MuJoCo renders with ``backend`` here, tried in a subprocess."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, backend], capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_gl() -> str | None:
    """``MUJOCO_GL`` if set, else the first of egl and osmesa that renders, set in the
    environment (so dm-control and any worker process use it); None when neither does, or
    when ``MUJOCO_GL`` says to render nothing."""
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return None if chosen.lower() in NO_RENDERER else chosen
    for backend in GL_BACKENDS:
        if gl_works(backend):
            os.environ["MUJOCO_GL"] = backend
            return backend
    return None


def import_suite():
    """``dm_control.suite``, imported after the GL is chosen: dm-control binds its backend on
    first import, so a pixel task made later in this process renders with that one. With no
    GL, "disable" keeps it from trying glfw, which needs a display; state vectors need none."""
    if choose_gl() is None:
        os.environ["MUJOCO_GL"] = os.environ.get("MUJOCO_GL") or "disable"
    from dm_control import suite

    return suite


def flatten_observation(observation: dict[str, Any]) -> np.ndarray:
    """The suite's observation dict as one float32 vector, keys in the suite's order."""
    return np.concatenate(
        [np.asarray(v, dtype=np.float32).reshape(-1) for v in observation.values()]
    )


class DMCEnv(gymnasium.Env):
    """One ``dm_control.suite`` task behind gymnasium's interface: proprioceptive state
    vectors or 64x64 RGB frames, the task's action box, the suite's own episode length."""

    metadata = {"render_modes": []}

    # Set by wmkit's ActionRepeat for the steps an agent never sees: not rendered.
    skip_observation = False

    def __init__(
        self,
        domain: str,
        task: str,
        obs: Literal["proprio", "pixels"] = "proprio",
        size: int = 64,
        camera: int = -1,
    ):
        if obs not in ("proprio", "pixels"):
            raise WmkitError(
                f"env.kwargs.obs: {env_id(domain, task)!r} observes 'proprio' or 'pixels', "
                f"got {obs!r}"
            )
        if obs == "pixels" and choose_gl() is None:
            raise WmkitError(f"env.id: cannot make {env_id(domain, task)!r}: {gl_help()}")
        try:
            suite = import_suite()
        except ImportError as exc:
            raise WmkitError(
                f"env.id: cannot make {env_id(domain, task)!r}: {exc}; install dm-control "
                "(pip install -e '.[dmc]')"
            ) from None
        self.domain, self.task, self.obs, self.size = domain, task, obs, size
        self.camera = CAMERAS.get(domain, 0) if camera == -1 else camera
        self._env = suite.load(domain, task)
        spec = self._env.action_spec()
        self.action_space = Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), dtype=np.float32
        )
        if obs == "pixels":
            self.observation_space = Box(0, 255, (size, size, 3), np.uint8)
        else:
            n = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            self.observation_space = Box(-np.inf, np.inf, (n,), np.float32)
        self._frame: np.ndarray | None = None

    def _observe(self, time_step) -> np.ndarray:
        if self.obs == "proprio":
            return flatten_observation(time_step.observation)
        if not self.skip_observation or self._frame is None:
            self._frame = self._env.physics.render(self.size, self.size, camera_id=self.camera)
        return self._frame.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # The suite draws its initial state from the task's own RandomState.
            self._env.task.random.seed(seed)
        self._frame = None
        return self._observe(self._env.reset()), {}

    def step(self, action):
        low, high = self.action_space.low, self.action_space.high
        action = np.clip(np.asarray(action, np.float64), low, high)
        time_step = self._env.step(action)
        last = time_step.last()
        # The suite ends an episode at its time limit with discount 1 (a truncation); a
        # discount of 0 would be a true end, which none of the benchmark tasks has.
        terminated = bool(last and time_step.discount == 0.0)
        return (
            self._observe(time_step),
            float(time_step.reward or 0.0),
            terminated,
            bool(last and not terminated),
            {},
        )

    def close(self) -> None:
        self._env.close()


@wmkit.hookimpl
def wmkit_register(registry) -> None:
    for domain, task in SUITE_TASKS:
        registry.add_env(env_id(domain, task), "wmkit_dmc:DMCEnv", domain=domain, task=task)
