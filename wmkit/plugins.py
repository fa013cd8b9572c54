"""Plugin discovery: entry points in the ``wmkit`` group, loaded into a pluggy manager.

Set ``WMKIT_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the plugins that ship with wmkit.
A plugin that fails to import or register is reported by name and skipped, so one broken
package never takes the others down.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

import pluggy

from wmkit import hookspecs
from wmkit.errors import WmkitError
from wmkit.registry import Registry

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


@dataclass
class Plugins:
    """The loaded plugin manager, the registry it filled, and what was found."""

    manager: pluggy.PluginManager
    registry: Registry
    infos: list[PluginInfo]


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == "wmkit"


def load_plugins(extra: list[object] | None = None) -> Plugins:
    """Load every entry-point plugin (plus ``extra`` plugin objects) and fill a registry."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    infos: list[PluginInfo] = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not autoload and not _is_builtin(ep):
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        info = PluginInfo(ep.name, ep.value, dist, version)
        infos.append(info)
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not stop the others
            info.error = f"plugin {ep.name!r} (entry point {ep.value!r}): {exc!r}"
    for i, plugin in enumerate(extra or []):
        if pm.is_registered(plugin):
            continue  # also installed through its entry point
        name = getattr(plugin, "__name__", f"extra-{i}")
        pm.register(plugin, name=name)
        infos.append(PluginInfo(name, name, "(in-process)", "", None))
    _drop_unknown_hooks(pm, infos)
    registry = Registry()
    for impl in pm.hook.wmkit_register.get_hookimpls():
        registry.current_plugin = impl.plugin_name
        info = next((i for i in infos if i.name == impl.plugin_name), None)
        try:
            impl.function(registry=registry)
        except Exception as exc:
            if info is None:
                raise
            info.error = f"plugin {impl.plugin_name!r} (entry point {info.module!r}): {exc!r}"
    registry.current_plugin = ""
    return Plugins(pm, registry, infos)


def _drop_unknown_hooks(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
    """Like pluggy's check_pending, but a plugin with a misspelt hook is reported and
    unregistered instead of stopping every command."""
    try:
        pm.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    for name, plugin in list(pm.list_name_plugin()):
        hooks = [a for a in dir(plugin) if a.startswith("wmkit_") and a not in ("wmkit_register",)]
        hooks = [h for h in hooks if getattr(pm.hook, h, None) is None]
        if hooks:
            pm.unregister(plugin, name=name)
            for info in infos:
                if info.name == name:
                    info.error = (
                        f"plugin {name!r} (entry point {info.module!r}): unknown hook "
                        f"{', '.join(hooks)}; see docs/hooks.md"
                    )


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
