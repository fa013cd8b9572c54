"""The registry that plugins fill through the ``wmkit_register`` hook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wmkit.errors import UnknownComponentError, WmkitError
from wmkit.protocols import ROLE_OPTIONS


@dataclass
class EnvEntry:
    """A gymnasium environment id that a plugin makes available to recipes."""

    id: str
    entry_point: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    plugin: str = ""


@dataclass
class Registry:
    """Components by role and name; ``plugin`` records which plugin added each one."""

    components: dict[str, dict[str, type]] = field(
        default_factory=lambda: {role: {} for role in ROLE_OPTIONS}
    )
    envs: dict[str, EnvEntry] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    current_plugin: str = ""

    def add_vision(self, cls: type) -> None:
        self._add("vision", cls)

    def add_memory(self, cls: type) -> None:
        self._add("memory", cls)

    def add_controller(self, cls: type) -> None:
        self._add("controller", cls)

    def add_optimizer(self, cls: type) -> None:
        self._add("optimizer", cls)

    def add_executor(self, cls: type) -> None:
        """Where rollouts run (``local`` processes, a ``ray`` cluster...): selectable by
        ``cls.name`` in a recipe's ``executor`` block."""
        self._add("executor", cls)

    def add_env(
        self,
        id: str,
        entry_point: str,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Register a gymnasium environment under ``id`` (``entry_point`` is 'module:Class')."""
        if id in self.envs:
            raise WmkitError(f"environment {id!r} is registered twice")
        self.envs[id] = EnvEntry(id, entry_point, kwargs, max_episode_steps, self.current_plugin)

    def _add(self, role: str, cls: type) -> None:
        name = getattr(cls, "name", None)
        options = getattr(cls, "Options", None)
        if not isinstance(name, str) or not name:
            raise WmkitError(f"{role} component {cls.__qualname__} has no 'name'")
        if not (isinstance(options, type) and issubclass(options, ROLE_OPTIONS[role])):
            raise WmkitError(
                f"{role} {name!r}: Options must subclass wmkit.protocols."
                f"{ROLE_OPTIONS[role].__name__}"
            )
        if name in self.components[role]:
            raise WmkitError(
                f"{role} {name!r} is registered twice (by {self.origins[(role, name)]!r} "
                f"and {self.current_plugin!r})"
            )
        self.components[role][name] = cls
        self.origins[(role, name)] = self.current_plugin

    def get(self, role: str, name: str) -> type:
        """The component class for ``name``, or an error listing what is available."""
        try:
            return self.components[role][name]
        except KeyError:
            raise UnknownComponentError(role, name, list(self.components[role])) from None

    def names(self, role: str) -> list[str]:
        return sorted(self.components[role])
