"""The module paths of wmkit 0.1, before the package was split into rooms, kept importable for
one release: ``import wmkit.protocols`` or ``from wmkit.errors import WmkitError`` in a plugin
written against them still works.

Why a finder rather than a file per old name: a file would be a module at the top level of
``wmkit/``, which is meant to hold only the package's face. The finder hands back the very module
object of the new path, so a class has one identity (``isinstance`` works across both names) and
a ``monkeypatch`` through either name patches the one module. Importing an old path warns with a
``DeprecationWarning`` that names the new one (shown by pytest, hidden from end users).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# Old path -> new path. Every module that stood at the top level of wmkit 0.1, and its stages.
MOVED: dict[str, str] = {
    "wmkit.protocols": "wmkit.core.protocols",
    "wmkit.hookspecs": "wmkit.core.hookspecs",
    "wmkit.registry": "wmkit.core.registry",
    "wmkit.plugins": "wmkit.core.plugins",
    "wmkit.recipe": "wmkit.core.recipe",
    "wmkit.resources": "wmkit.core.resources",
    "wmkit.errors": "wmkit.core.errors",
    "wmkit.seeding": "wmkit.core.seeding",
    "wmkit.distributions": "wmkit.nn.distributions",
    "wmkit.optim_state": "wmkit.nn.optim_state",
    "wmkit.cuda_graph": "wmkit.nn.cuda_graph",
    "wmkit.host_to_device": "wmkit.nn.host_to_device",
    "wmkit.fileio": "wmkit.storage.fileio",
    "wmkit.spans": "wmkit.storage.spans",
    "wmkit.checkpoint": "wmkit.storage.checkpoint",
    "wmkit.store": "wmkit.storage.store",
    "wmkit.rundir": "wmkit.storage.rundir",
    "wmkit.replay": "wmkit.storage.replay",
    "wmkit.scores": "wmkit.storage.scores",
    "wmkit.zoo": "wmkit.storage.zoo",
    "wmkit.envs": "wmkit.rollouts.envs",
    "wmkit.agent": "wmkit.rollouts.agent",
    "wmkit.policies": "wmkit.rollouts.policies",
    "wmkit.components": "wmkit.rollouts.components",
    "wmkit.rollout": "wmkit.rollouts.episode",
    "wmkit.worker": "wmkit.rollouts.worker",
    "wmkit.executor": "wmkit.rollouts.executor",
    "wmkit.dream": "wmkit.dreams.rollout",
    "wmkit.dream_starts": "wmkit.dreams.starts",
    "wmkit.memory_dream": "wmkit.dreams.memory_world_model",
    "wmkit.imagination": "wmkit.dreams.imagination",
    "wmkit.dream_video": "wmkit.dreams.film",
    "wmkit.guard": "wmkit.dreams.guard",
    "wmkit.metrics": "wmkit.record.metrics",
    "wmkit.sinks": "wmkit.record.sinks",
    "wmkit.plots": "wmkit.record.plots",
    "wmkit.video": "wmkit.record.video",
    "wmkit.progress": "wmkit.record.progress",
    "wmkit.pipeline": "wmkit.pipelines.ha",
    "wmkit.online": "wmkit.pipelines.online",
    "wmkit.verify": "wmkit.pipelines.verify",
    "wmkit.groups": "wmkit.results.groups",
    "wmkit.compare": "wmkit.results.compare",
    "wmkit.report": "wmkit.results.report",
    "wmkit.gap": "wmkit.pipelines.gap",
    "wmkit.testing": "wmkit.devkit.testing",
    "wmkit.scaffold": "wmkit.devkit.scaffold",
    "wmkit.stages": "wmkit.pipelines.stages",
}
_STAGES = "wmkit.stages."


def new_path(old: str) -> str | None:
    """The current path of the 0.1 module ``old``, or None if it did not move."""
    if old.startswith(_STAGES):
        return "wmkit.pipelines.stages." + old[len(_STAGES) :]
    return MOVED.get(old)


class _Alias(importlib.abc.Loader):
    """Loads an old path as the module already at its new path."""

    def __init__(self, target: str):
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.target}; the old path works until wmkit 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the old spec on the shared module; give its own back.
        module.__spec__ = self.spec


class _OldPaths(importlib.abc.MetaPathFinder):
    """Finds the 0.1 paths, and only those; every other import goes on as usual."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = new_path(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.insert(0, _OldPaths())
