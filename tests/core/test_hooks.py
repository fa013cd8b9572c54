"""Every hook is documented in docs/hooks.md and has a test of its own (test_hook_NAME)."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import numpy as np

import wmkit
from wmkit.core import hookspecs
from wmkit.core.plugins import load_plugins
from wmkit.core.recipe import EnvConfig
from wmkit.rollouts.envs import make_env

ROOT = Path(__file__).parents[2]
HOOKS = [
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("wmkit_")
]


def test_there_are_hooks():
    assert "wmkit_register" in HOOKS


def test_every_hook_is_documented():
    page = (ROOT / "docs" / "hooks.md").read_text()
    headings = set(re.findall(r"^## (\w+)", page, flags=re.M))
    assert set(HOOKS) <= headings, f"undocumented hooks: {set(HOOKS) - headings}"


def test_every_hook_has_a_test_of_its_own():
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [h for h in HOOKS if f"def test_hook_{h}" not in sources]
    assert not missing, f"hooks without a test_hook_NAME test: {missing}"


def test_hook_wmkit_register():
    """A plugin's wmkit_register receives the registry, and what it adds is usable."""
    seen = {}

    def register(registry):
        seen["registry"] = registry
        registry.add_env(
            "wmkit-test/BlobHook-v0", "tests.fixtures.blob_env:BlobEnv", max_episode_steps=7
        )

    plugin = types.ModuleType("blob_plugin")
    plugin.wmkit_register = wmkit.hookimpl(register)
    registry = load_plugins(extra=[plugin]).registry
    assert seen["registry"] is registry
    assert registry.envs["wmkit-test/BlobHook-v0"].plugin == "blob_plugin"
    # The reference plugins register through this same hook.
    assert registry.origins[("vision", "conv_vae")] == "conv_vae"
    assert registry.origins[("optimizer", "cmaes")] == "cmaes"

    env = make_env(EnvConfig(id="wmkit-test/BlobHook-v0"), registry)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.max() == 255
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert steps == 7  # the plugin's max_episode_steps
