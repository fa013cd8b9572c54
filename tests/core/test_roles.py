"""The one table of roles drives the registry, the recipe's blocks and the CLI's kinds."""

from __future__ import annotations

import pytest

from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ROLES, Options
from wmkit.core.recipe import Recipe
from wmkit.core.registry import Registry
from wmkit.devkit.scaffold import KINDS


def _component(role: str):
    class Thing:
        name = "thing"
        Options = ROLES[role].options

    return Thing


@pytest.mark.parametrize("role", list(ROLES))
def test_every_role_has_an_add_method_and_a_recipe_block(role):
    registry = Registry()
    getattr(registry, f"add_{role}")(_component(role))
    assert registry.names(role) == ["thing"]
    other = Registry()
    other.add(role, _component(role))
    assert other.get(role, "thing") is not None
    assert role in Recipe.model_fields


def test_an_unknown_role_or_a_wrong_options_base_is_refused():
    registry = Registry()
    with pytest.raises(WmkitError, match="unknown role 'critic'"):
        registry.add("critic", _component("vision"))
    with pytest.raises(AttributeError):
        registry.add_critic  # noqa: B018 - not a role of the table

    class Bare:
        name = "bare"
        Options = Options

    with pytest.raises(WmkitError, match="VisionOptions"):
        registry.add_vision(Bare)


def test_the_scaffold_kinds_are_roles_or_env():
    assert set(KINDS) <= set(ROLES) | {"env"}
