"""Every extension point of wmkit. Grep for ``wmkit_`` to find them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from wmkit.core.registry import Registry

hookspec = pluggy.HookspecMarker("wmkit")
hookimpl = pluggy.HookimplMarker("wmkit")


@hookspec
def wmkit_register(registry: Registry) -> None:
    """Add components (vision, memory, controller, optimizer), executors and environments to
    ``registry``.

    Called once per plugin when the registry is built. Every implementation is called;
    return values are ignored. Adding a name that is already taken is an error.
    """


@hookspec
def wmkit_metric_sinks() -> list[type]:
    """Return the metric sink classes this plugin provides (see ``wmkit.record.sinks.MetricSink``).

    Called on every plugin when ``wmkit run`` or ``wmkit validate`` checks a recipe, and again
    when a run starts; the lists are joined. A recipe selects sinks by their ``name`` in its
    ``sinks`` list. Two sinks with the same name are an error.
    """
