"""env.merge_actions: two [0, high] action dimensions as one signed axis, chosen in the recipe
(CarRacing's gas and brake), and its bad input named by field."""

from __future__ import annotations

import numpy as np
import pytest

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import EnvConfig
from wmkit.rollouts.envs import env_spec, make_env

REG = get_registry()


def _taken(env, action):
    """The action the wrapped environment receives for the agent's ``action``, in float64
    so the comparisons below read as decimals."""
    wrapper = env
    while type(wrapper).__name__ != "MergedActions":
        wrapper = wrapper.env
    return wrapper.action(np.asarray(action, np.float32)).astype(np.float64)


def test_gas_and_brake_become_one_axis():
    env = make_env(EnvConfig(id="wmkit/CarRacing-v3", merge_actions=[(1, 2)]), REG)
    spec = env_spec(env)
    np.testing.assert_array_equal(spec.action_low, [-1, -1])
    np.testing.assert_array_equal(spec.action_high, [1, 1])
    f = np.float32  # the wrapper copies float32 values, so equality is exact in float32
    np.testing.assert_array_equal(_taken(env, [0.3, 0.0]), [f(0.3), 0, 0])  # neither
    np.testing.assert_array_equal(_taken(env, [-0.2, 0.7]), [f(-0.2), f(0.7), 0])  # gas
    np.testing.assert_array_equal(_taken(env, [0.1, -0.4]), [f(0.1), 0, f(0.4)])  # brake
    env.reset(seed=0)
    env.step(np.array([0.0, 1.0], np.float32))
    env.close()


def test_without_the_option_the_action_box_is_the_environments():
    env = make_env(EnvConfig(id="wmkit/CarRacing-v3"), REG)
    assert env_spec(env).action_dim == 3
    env.close()


@pytest.mark.parametrize(
    ("env_id", "pairs", "message"),
    [
        (
            "wmkit/CarRacing-v3",
            [(1, 3)],
            r"env.merge_actions: \[1, 3\] must be two different action dimensions",
        ),
        ("wmkit/CarRacing-v3", [(2, 2)], r"must be two different action dimensions"),
        ("wmkit/CarRacing-v3", [(0, 1)], r"both dimensions must start at 0"),
        ("wmkit/CarRacing-v3", [(1, 2), (2, 1)], r"a dimension is in two pairs"),
        ("CartPole-v1", [(0, 1)], r"env.merge_actions: 'CartPole-v1' has Discrete actions"),
    ],
)
def test_bad_pairs_are_named(env_id, pairs, message):
    with pytest.raises(WmkitError, match=message):
        make_env(EnvConfig(id=env_id, merge_actions=pairs), REG)
