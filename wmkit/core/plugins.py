"""Plugin discovery: entry points in the ``wmkit`` group, loaded into a pluggy manager.

Set ``WMKIT_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the plugins that ship with wmkit.
A plugin that fails to import or register is reported by name and skipped, so one broken
package never takes the others down.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

import pluggy

from wmkit.core import hookspecs
from wmkit.core.errors import WmkitError
from wmkit.core.registry import Registry

ENTRY_POINT_GROUP = "wmkit"
DISABLE_AUTOLOAD_ENV = "WMKIT_DISABLE_PLUGIN_AUTOLOAD"


@dataclass
class PluginInfo:
    """Where a plugin came from, for ``wmkit plugins``."""

    name: str
    module: str
    distribution: str
    version: str
    error: str | None = None

    def fail(self, problem: str) -> None:
        """Record a problem (after any recorded before), naming the plugin."""
        if self.error is None:
            self.error = f"plugin {self.name!r} (entry point {self.module!r}): {problem}"
        else:
            self.error += f"; {problem}"


@dataclass
class Plugins:
    """The plugin manager (for hooks called later, such as ``wmkit_metric_sinks``), the
    registry the plugins filled, and what was found."""

    manager: pluggy.PluginManager
    registry: Registry
    infos: list[PluginInfo]


def _dist_name(ep: metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist else "?"


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return _dist_name(ep) == "wmkit"


def _entry_points(autoload: bool) -> list[metadata.EntryPoint]:
    """The ``wmkit`` entry points, by name; one per (name, distribution), as a distribution
    may be seen twice on ``sys.path`` (an installed copy and a source tree's metadata)."""
    found = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    unique: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in found:
        if autoload or _is_builtin(ep):
            unique.setdefault((ep.name, _dist_name(ep)), ep)
    return list(unique.values())


def load_plugins(extra: list[object] | None = None) -> Plugins:
    """Load every entry-point plugin (plus ``extra`` plugin objects) and fill a registry."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    registry = Registry()
    infos: list[PluginInfo] = []
    entry_points = _entry_points(autoload)
    dists_of: dict[str, set[str]] = {}
    for ep in entry_points:
        dists_of.setdefault(ep.name, set()).add(_dist_name(ep))
    for ep in entry_points:
        dist = _dist_name(ep)
        version = ep.dist.version if ep.dist else "?"
        info = PluginInfo(ep.name, ep.value, dist, version)
        infos.append(info)
        registry.sources[ep.name] = f"distribution {dist!r}"
        others = sorted(dists_of[ep.name] - {dist})
        if others:  # the plugin name is taken twice: neither loads, whichever came first
            info.fail(
                f"the entry point name is also used by distribution "
                f"{', '.join(map(repr, others))}; neither is loaded"
            )
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not stop the others
            info.fail(repr(exc))
    for i, plugin in enumerate(extra or []):
        if pm.is_registered(plugin):
            continue  # also installed through its entry point
        name = getattr(plugin, "__name__", f"extra-{i}")
        pm.register(plugin, name=name)
        infos.append(PluginInfo(name, name, "(in-process)", "", None))
        registry.sources[name] = "in-process"
    _drop_unknown_hooks(pm, infos)
    for impl in pm.hook.wmkit_register.get_hookimpls():
        registry.current_plugin = impl.plugin_name
        info = next((i for i in infos if i.name == impl.plugin_name), None)
        try:
            impl.function(registry=registry)
        except Exception as exc:
            if info is None:
                raise
            info.fail(repr(exc))
    registry.current_plugin = ""
    registry.failed_plugins = [info.name for info in infos if info.error]
    for (role, name), claimants in registry.clashes.items():
        for info in infos:
            if info.name in claimants:
                info.fail(str(registry.clash_error(role, name)))
    return Plugins(pm, registry, infos)


def _drop_unknown_hooks(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
    """Like tox's ``check_pending``: a plugin that implements a hook wmkit does not have (a
    misspelt ``wmkit_regster``) is an error. It is reported against that plugin, which is
    unregistered, instead of stopping every command. So is a hook function defined without
    the ``@wmkit.hookimpl`` marker, which pluggy would skip without a word.

    Only what pluggy took as hook implementations counts, so a plugin module's other names
    (an imported module called ``wmkit_linear``, say) are never mistaken for hooks."""
    known = {name for name in vars(hookspecs) if name.startswith("wmkit_")}
    for name, plugin in list(pm.list_name_plugin()):
        unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or [] if not c.has_spec())
        unmarked = sorted(
            attr
            for attr, value in getattr(plugin, "__dict__", {}).items()
            if attr in known
            and inspect.isfunction(value)
            and value.__module__ == getattr(plugin, "__name__", None)
            and pm.parse_hookimpl_opts(plugin, attr) is None
        )
        if not unknown and not unmarked:
            continue
        pm.unregister(plugin, name=name)
        problems = []
        if unknown:
            problems.append(f"unknown hook {', '.join(unknown)}")
        if unmarked:
            problems.append(f"{', '.join(unmarked)} not marked with @wmkit.hookimpl")
        for info in infos:
            if info.name == name:
                info.fail(f"{'; '.join(problems)}; see docs/hooks.md")


@lru_cache(maxsize=1)
def _cached() -> Plugins:
    return load_plugins()


def get_plugins(modules: tuple[str, ...] = ()) -> Plugins:
    """The process-wide plugins, loaded once; with a recipe's ``plugins:`` modules on top."""
    return _with_modules(tuple(modules)) if modules else _cached()


def get_registry(modules: tuple[str, ...] = ()) -> Registry:
    """The process-wide registry, loaded once; ``modules`` (a recipe's ``plugins:``) are
    imported and registered on top of the installed plugins."""
    if not modules:
        return _cached().registry
    return _with_modules(tuple(modules)).registry


@lru_cache(maxsize=8)
def _with_modules(modules: tuple[str, ...]) -> Plugins:
    loaded = []
    for i, name in enumerate(modules):
        try:
            loaded.append(importlib.import_module(name))
        except Exception as exc:
            raise RecipeModuleError(i, name, exc) from None
    return load_plugins(extra=loaded)


class RecipeModuleError(WmkitError):
    """A module named in a recipe's ``plugins:`` could not be imported."""

    def __init__(self, index: int, name: str, exc: Exception):
        self.index = index
        super().__init__(f"cannot import plugin module {name!r}: {exc!r}")


def reset_plugins() -> None:
    """Forget the cached plugins (tests install plugins and reload)."""
    _cached.cache_clear()
    _with_modules.cache_clear()
