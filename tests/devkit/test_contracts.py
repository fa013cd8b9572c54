"""Every registered component of every role, ours or a third party's, passes the
wmkit.devkit.testing checks. A role of the table without a check here fails the last test."""

from __future__ import annotations

import numpy as np
import pytest

from wmkit.core.plugins import get_registry
from wmkit.core.protocols import ROLES, GradientOptions
from wmkit.core.recipe import resolve_recipe
from wmkit.devkit.testing import (
    check_controller,
    check_gradient_optimizer,
    check_memory,
    check_optimizer,
    check_pipeline,
    check_vision,
    check_world_model,
)

REG = get_registry()
LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.ones(3, np.float32)
# Small sizes for whichever of these options a component has, to keep tests fast.
SMALL = {
    "z_dim": 4,
    "hidden": 8,
    "gaussians": 2,
    "population": 6,
    "deter": 8,
    "stoch": 2,
    "classes": 3,
    "units": 8,
    "layers": 1,
    "cnn_depth": 2,
    "horizon": 3,
    "bins": 5,
    "reward_bins": 5,
}


def small(cls, **fields):
    """The component's default options, shrunk where the option exists."""
    fields = {**SMALL, **fields}
    known = {k: v for k, v in fields.items() if k in cls.Options.model_fields}
    return cls.Options(**known)


def test_vision_contract(name):
    cls = REG.get("vision", name)
    check_vision(cls(small(cls), (3, 64, 64)), batch=2)


def test_memory_contract(name):
    cls = REG.get("memory", name)
    check_memory(cls(small(cls), 4, 3), 4, 3)


def test_world_model_contract(name, obs_shape):
    cls = REG.get("world_model", name)
    check_world_model(cls(small(cls), obs_shape, 3), obs_shape, 3)


def test_controller_contract(name):
    cls = REG.get("controller", name)
    check_controller(cls(cls.Options(), 12, LOW, HIGH), 12, LOW, HIGH)


def test_optimizer_contract(name):
    cls = REG.get("optimizer", name)
    options = small(cls)
    if not isinstance(options, GradientOptions):
        check_optimizer(cls(options, np.zeros(5), 1), cls(options, np.zeros(5), 2))
        return
    # A gradient optimizer trains the reference actor in the reference world model's dream.
    world_model_cls, actor_cls = REG.get("world_model", "rssm"), REG.get("controller", "actor")
    world_model = world_model_cls(small(world_model_cls), (4,), 3)
    world_model.eval()

    def actor():
        return actor_cls(small(actor_cls), world_model.feature_dim, LOW, HIGH)

    controller = actor()
    check_gradient_optimizer(
        cls(options, controller, world_model.feature_dim, 1),
        world_model,
        controller,
        cls(options, actor(), world_model.feature_dim, 1),
    )


def test_pipeline_contract(name):
    cls = REG.get("pipeline", name)
    check_pipeline(cls(cls.Options()), resolve_recipe({"pipeline": name}, REG))


def test_executor_contract(name):
    from wmkit.rollouts.worker import init_worker

    cls = REG.get("executor", name)
    if name != "local":
        pytest.skip("executors other than local are tested in their own files (test_ray.py)")
    executor = cls(cls.Options(), 0, init_worker, ({"pipeline": "ha"},), None, 0)
    try:
        assert sorted(executor.map(abs, [-1, -2])) == [(0, 1), (1, 2)]
    finally:
        executor.close()


def pytest_generate_tests(metafunc):
    """``test_ROLE_contract`` runs once per registered component of ROLE."""
    role = metafunc.function.__name__.removeprefix("test_").removesuffix("_contract")
    if role in ROLES and "name" in metafunc.fixturenames:
        metafunc.parametrize("name", REG.names(role))
    if "obs_shape" in metafunc.fixturenames:
        metafunc.parametrize("obs_shape", [(4,), (3, 64, 64)], ids=["vector", "frames"])


def test_every_role_has_a_contract_test():
    assert [role for role in ROLES if f"test_{role}_contract" not in globals()] == []
