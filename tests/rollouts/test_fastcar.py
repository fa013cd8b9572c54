"""wmkit/CarRacing-v3 is gymnasium's CarRacing-v3, frame for frame, only faster."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from wmkit_fastcar import ENV_ID, FastCarRacing, rotate

from wmkit.core.plugins import get_registry
from wmkit.core.recipe import EnvConfig
from wmkit.rollouts.envs import make_env

if ENV_ID not in gymnasium.registry:  # wmkit's make_env does this on first use
    gymnasium.register(ENV_ID, entry_point="wmkit_fastcar:FastCarRacing", max_episode_steps=1000)


def test_rotation_matches_pygame_bit_for_bit():
    from pygame.math import Vector2

    rng = np.random.default_rng(0)
    points = rng.uniform(-300, 300, (50, 2))
    angles = [0.0, np.pi / 2, -np.pi, 3 * np.pi / 2 + 1e-9, 2 * np.pi, *rng.uniform(-20, 20, 30)]
    for angle in angles:
        want = np.array([tuple(Vector2(tuple(p)).rotate_rad(angle)) for p in points])
        np.testing.assert_array_equal(rotate(points, float(angle)), want)


# One whole episode (CarRacing's 1,000-step limit, then a reset); two more policies for a
# quarter of one, to keep the suite's time (each step renders in both environments).
@pytest.mark.parametrize(
    ("seed", "policy", "steps"),
    [(0, "random", 1000), (7, "fixed", 250), (123, "steering", 250)],
)
def test_identical_to_gymnasium(seed, policy, steps):
    ours, theirs = gymnasium.make(ENV_ID), gymnasium.make("CarRacing-v3")
    a, _ = ours.reset(seed=seed)
    b, _ = theirs.reset(seed=seed)
    assert np.array_equal(a, b)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        if policy == "random":
            action = rng.uniform([-1, 0, 0], [1, 1, 1]).astype(np.float32)
        elif policy == "fixed":
            action = np.array([0.0, 0.4, 0.0], np.float32)
        else:
            action = np.array([np.sin(step / 30), 0.5, 0.0], np.float32)
        x, y = ours.step(action), theirs.step(action)
        assert np.array_equal(x[0], y[0]), f"frame differs at step {step}"
        assert x[1:4] == y[1:4], f"reward or termination differs at step {step}"
        if x[2] or x[3]:
            a, _ = ours.reset(seed=seed + step)
            b, _ = theirs.reset(seed=seed + step)
            assert np.array_equal(a, b)
    ours.close()
    theirs.close()


def test_direct_observation_mode_renders_the_view_above_the_dashboard():
    env = FastCarRacing(render_mode="state_pixels", observation_size=64)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (64, 64, 3) and env.observation_space.shape == (64, 64, 3)
    for _ in range(60):
        frame, *_ = env.step(np.array([0.0, 0.5, 0.0], np.float32))
    # The bottom rows are road and grass, not the black dashboard of the 96x96 frame.
    assert frame[-4:].mean() > 60
    env.close()


def test_the_plugin_registers_it_for_recipes():
    env = make_env(EnvConfig(id=ENV_ID, crop=(0, 12, 0, 0)), get_registry())
    frame, _ = env.reset(seed=1)
    assert frame.shape == (64, 64, 3) and env.spec.max_episode_steps == 1000
    env.close()


def test_filling_the_surface_is_what_filled_polygon_draws_when_the_field_covers_it():
    import pygame
    from pygame import gfxdraw
    from wmkit_fastcar import covers_surface

    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(60):
        centre = rng.uniform(-400, 1400, 2)
        half = rng.uniform(300, 3000)
        angle = rng.uniform(0, 2 * np.pi)
        square = np.array([(half, half), (half, -half), (-half, -half), (-half, half)])
        poly = rotate(square, angle) + centre
        if not covers_surface(poly, 100, 80):
            continue
        covered += 1
        drawn, filled = pygame.Surface((100, 80)), pygame.Surface((100, 80))
        points = [tuple(v) for v in poly.tolist()]
        gfxdraw.aapolygon(drawn, points, (102, 204, 102))
        gfxdraw.filled_polygon(drawn, points, (102, 204, 102))
        filled.fill((102, 204, 102))
        assert pygame.image.tobytes(drawn, "RGB") == pygame.image.tobytes(filled, "RGB")
    assert covered > 10
    # A square that leaves a corner of the surface bare is drawn, not filled.
    assert not covers_surface(np.array([(0.0, 0), (200, 0), (200, 200), (0, 200)]), 100, 80)
    assert covers_surface(np.array([(-9.0, -9), (109, -9), (109, 89), (-9, 89)]), 100, 80)
