"""Every registered component, ours or a third party's, passes the wmkit.testing checks."""

from __future__ import annotations

import numpy as np
import pytest

from wmkit.plugins import get_registry
from wmkit.testing import check_controller, check_memory, check_optimizer, check_vision

REG = get_registry()
LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.ones(3, np.float32)


def small(cls, **fields):
    """The component's default options, shrunk where the option exists, to keep tests fast."""
    known = {k: v for k, v in fields.items() if k in cls.Options.model_fields}
    return cls.Options(**known)


@pytest.mark.parametrize("name", REG.names("vision"))
def test_vision_contract(name):
    cls = REG.get("vision", name)
    check_vision(cls(small(cls, z_dim=4), (3, 64, 64)), batch=2)


@pytest.mark.parametrize("name", REG.names("memory"))
def test_memory_contract(name):
    cls = REG.get("memory", name)
    check_memory(cls(small(cls, hidden=8, gaussians=2), 4, 3), 4, 3)


@pytest.mark.parametrize("name", REG.names("controller"))
def test_controller_contract(name):
    cls = REG.get("controller", name)
    check_controller(cls(cls.Options(), 12, LOW, HIGH), 12, LOW, HIGH)


@pytest.mark.parametrize("name", REG.names("optimizer"))
def test_optimizer_contract(name):
    cls = REG.get("optimizer", name)
    options = small(cls, population=6)
    check_optimizer(cls(options, np.zeros(5), 1), cls(options, np.zeros(5), 2))
