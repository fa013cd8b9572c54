"""The registry that plugins fill through the ``wmkit_register`` hook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wmkit.core.errors import ClashError, UnknownComponentError, WmkitError
from wmkit.core.protocols import ROLE_OPTIONS


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
    """Components by role and name; ``plugin`` records which plugin added each one.

    A name added twice (by two plugins, or by one plugin twice) is refused, whatever the
    order the plugins were found in: it leaves ``components`` (or ``envs``) and is kept in
    ``clashes`` with every plugin that claimed it, and looking it up is an error naming them.
    """

    components: dict[str, dict[str, type]] = field(
        default_factory=lambda: {role: {} for role in ROLE_OPTIONS}
    )
    envs: dict[str, EnvEntry] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    current_plugin: str = ""
    # (role or "env", name) -> the plugins that each added that name, in the order found.
    clashes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Plugin name -> where it came from ("distribution 'wmkit'"), for the clash messages.
    sources: dict[str, str] = field(default_factory=dict)
    # Plugins that failed to load: an unknown name may be theirs.
    failed_plugins: list[str] = field(default_factory=list)

    def add(self, role: str, cls: type) -> None:
        """Make ``cls`` selectable by ``cls.name`` in a recipe's block for ``role`` (a key of
        ``wmkit.core.protocols.ROLES``)."""
        if role not in ROLE_OPTIONS:
            raise WmkitError(f"unknown role {role!r}; roles: {', '.join(ROLE_OPTIONS)}")
        self._add(role, cls)

    def __getattr__(self, attr: str) -> Any:
        """``add_vision(cls)``, ``add_memory(cls)``...: ``add`` for each role of the table,
        so that a new role needs no new method."""
        role = attr.removeprefix("add_")
        if attr.startswith("add_") and role in ROLE_OPTIONS:
            return lambda cls: self._add(role, cls)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def add_env(
        self,
        id: str,
        entry_point: str,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Register a gymnasium environment under ``id`` (``entry_point`` is 'module:Class')."""
        if self._refused("env", id):
            return
        self.envs[id] = EnvEntry(id, entry_point, kwargs, max_episode_steps, self.current_plugin)

    def _add(self, role: str, cls: type) -> None:
        name = getattr(cls, "name", None)
        options = getattr(cls, "Options", None)
        if not isinstance(name, str) or not name:
            raise WmkitError(f"{role} component {cls.__qualname__} has no 'name'")
        if not (isinstance(options, type) and issubclass(options, ROLE_OPTIONS[role])):
            raise WmkitError(
                f"{role} {name!r}: Options must subclass wmkit.core.protocols."
                f"{ROLE_OPTIONS[role].__name__}"
            )
        if self._refused(role, name):
            return
        self.components[role][name] = cls
        self.origins[(role, name)] = self.current_plugin

    def _refused(self, role: str, name: str) -> bool:
        """Whether ``name`` is already claimed (``role`` "env" for an environment id). If so,
        the current plugin's claim is recorded, and the name withdrawn from use."""
        key = (role, name)
        if key not in self.clashes:
            if role == "env":
                if name not in self.envs:
                    return False
                self.clashes[key] = [self.envs.pop(name).plugin]
            else:
                if name not in self.components[role]:
                    return False
                del self.components[role][name]
                self.clashes[key] = [self.origins.pop(key)]
        self.clashes[key].append(self.current_plugin)
        return True

    def clash_error(self, role: str, name: str) -> ClashError:
        claimants = []
        for plugin in self.clashes[(role, name)]:
            source = self.sources.get(plugin)
            claimants.append(f"plugin {plugin!r}" + (f" ({source})" if source else ""))
        return ClashError(role, name, claimants)

    def get(self, role: str, name: str) -> type:
        """The component class for ``name``, or an error listing what is available."""
        if (role, name) in self.clashes:
            raise self.clash_error(role, name)
        try:
            return self.components[role][name]
        except KeyError:
            raise UnknownComponentError(
                role, name, list(self.components[role]), self.failed_plugins
            ) from None

    def names(self, role: str) -> list[str]:
        return sorted(self.components[role])
