"""Metric sinks: where the numbers of a run go as it trains.

A sink receives every metric row that a stage logs (one per epoch of V and M, one per
generation of C). Sinks come from plugins through the ``wmkit_metric_sinks`` hook; this
module is itself such a plugin and provides the two built-in ones:

* ``jsonl``: ``metrics/STAGE.jsonl``, one JSON object per row. It is always on, and it is the
  run's record: resuming reads it, and the rows after the last checkpoint are dropped when a
  stage restarts, so no epoch or generation is counted twice. If it cannot be written, the
  run stops (as it would for a checkpoint).
* ``tensorboard``: the same scalars as TensorBoard events under ``tensorboard/``.

A recipe's ``sinks`` list names the others it wants. Any sink but ``jsonl`` that raises
(a full disk, a tracking server that is down) is reported once and dropped for the rest of
the run: it never stops the run, and it never writes into the run's own files.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.storage.fileio import check_regular
from wmkit.storage.jsonl import read_metrics

log = logging.getLogger("wmkit.sinks")


class MetricSink:
    """Base class of a sink: subclass it, set ``name``, implement ``log``.

    ``run`` is the run directory (a ``wmkit.storage.rundir.RunDir``) and ``recipe`` the resolved
    recipe, or None when a stage runs outside ``wmkit run``. Raise ``WmkitError`` from the
    constructor for a problem the user must fix (a missing package): the run does not start.
    Any other exception, here or later, only drops the sink.
    """

    name: ClassVar[str] = ""
    # Whether a failure stops the run (only the record that resuming relies on).
    critical: ClassVar[bool] = False

    def __init__(self, run: Any, recipe: Any = None) -> None:
        self.run = run
        self.recipe = recipe

    def start(self, stage: str, keep_until: int) -> None:
        """``stage`` (re)starts; steps after ``keep_until`` will be logged again."""

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """The run is over (or stopped); flush and let go of files and connections."""


class JsonlSink(MetricSink):
    """``metrics/STAGE.jsonl``: the run's own record of every row."""

    name = "jsonl"
    critical = True

    def start(self, stage: str, keep_until: int) -> None:

        path = self._path(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            check_regular(path)  # rewritten in place below: never through a link
        rows = [r for r in read_metrics(path) if r.get("step", -1) <= keep_until]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        with open(self._path(stage), "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def _path(self, stage: str) -> Path:
        return Path(self.run.metrics) / f"{stage}.jsonl"


class TensorBoardSink(MetricSink):
    """Scalars as TensorBoard events, tagged ``STAGE/KEY``."""

    name = "tensorboard"

    def __init__(self, run: Any, recipe: Any = None) -> None:
        super().__init__(run, recipe)
        self._writer = None

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run.tensorboard))
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self._writer.add_scalar(f"{stage}/{key}", value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@hookimpl
def wmkit_metric_sinks() -> list[type]:
    return [JsonlSink, TensorBoardSink]


def available_sinks(modules: tuple[str, ...] = ()) -> dict[str, tuple[type, str]]:
    """Every sink class by name, with the plugin that provides it."""
    from wmkit.core.plugins import get_plugins

    manager = get_plugins(tuple(modules)).manager
    found: dict[str, tuple[type, str]] = {}
    for impl in manager.hook.wmkit_metric_sinks.get_hookimpls():
        try:
            classes = impl.function() or []
        except Exception as exc:  # a broken plugin must not stop the run
            log.warning("plugin %r: wmkit_metric_sinks failed: %r", impl.plugin_name, exc)
            continue
        for cls in classes:
            name = getattr(cls, "name", "")
            if not isinstance(name, str) or not name:
                raise WmkitError(f"plugin {impl.plugin_name!r}: metric sink {cls!r} has no name")
            if name in found:
                raise WmkitError(
                    f"metric sink {name!r} is provided twice (by {found[name][1]!r} "
                    f"and {impl.plugin_name!r})"
                )
            found[name] = (cls, impl.plugin_name)
    return found


class Sinks:
    """The open sinks of one run. A failing sink that is not critical is reported once and
    skipped from then on."""

    def __init__(self, sinks: list[MetricSink]):
        self.sinks = sinks
        self.dropped: dict[str, str] = {}

    def _each(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            if sink.name in self.dropped:
                continue
            try:
                getattr(sink, method)(*args)
            except Exception as exc:
                if sink.critical:
                    raise
                self.drop(sink.name, exc)

    def drop(self, name: str, exc: BaseException) -> None:
        """Report ``name``'s failure once and skip it from now on. The warning goes through
        the ``wmkit`` logger, which ``wmkit run`` shows on stderr and keeps in ``wmkit.log``."""
        self.dropped[name] = repr(exc)
        log.warning(
            "metric sink %r failed (%r); it is off for the rest of this run, which goes on "
            "(metrics/*.jsonl has every row)",
            name,
            exc,
        )

    def start(self, stage: str, keep_until: int) -> None:
        self._each("start", stage, keep_until)

    def log(self, stage: str, step: int, values: dict[str, Any]) -> None:
        self._each("log", stage, step, values)

    def close(self) -> None:
        self._each("close")


def check_sinks(names: list[str], modules: tuple[str, ...] = ()) -> dict[str, tuple[type, str]]:
    """Every sink class by name, once each of ``names`` is known to be one: the preflight
    calls it, so an unknown name stops ``wmkit run`` before the run directory is touched."""
    known = available_sinks(modules)
    for i, name in enumerate(names):
        if name not in known:
            raise WmkitError(
                f"sinks.{i}: unknown metric sink {name!r}; available: {', '.join(sorted(known))}"
            )
    return known


def open_sinks(run: Any, recipe: Any = None, names: list[str] | None = None) -> Sinks:
    """``jsonl`` and the named sinks, built in that order. An unknown name, or a sink that
    raises ``WmkitError`` (a missing package), is an error; any other failure to open drops
    that sink with a warning."""
    if names is None:
        names = list(recipe.sinks) if recipe is not None else ["tensorboard"]
    modules = tuple(recipe.plugins) if recipe is not None else ()
    known = check_sinks(names, modules)
    wanted = ["jsonl"] + [n for n in dict.fromkeys(names) if n != "jsonl"]
    sinks = Sinks([])
    for name in wanted:
        cls = known[name][0]
        try:
            sinks.sinks.append(cls(run, recipe))
        except WmkitError:
            sinks.close()
            raise
        except Exception as exc:
            if getattr(cls, "critical", False):
                raise
            sinks.drop(name, exc)
    return sinks


_current: Sinks | None = None


@contextlib.contextmanager
def active(sinks: Sinks) -> Iterator[Sinks]:
    """Make ``sinks`` the ones every ``MetricsLogger`` of this process writes to."""
    global _current
    previous, _current = _current, sinks
    try:
        yield sinks
    finally:
        _current = previous
        sinks.close()


def current() -> Sinks | None:
    return _current
