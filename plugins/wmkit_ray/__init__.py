"""Rollouts on a Ray cluster: ``executor: {name: ray}`` in a recipe, or ``--set executor.name=ray``.

The driver, the process that runs ``wmkit run``, keeps the run directory; the machines of the
cluster share nothing with it but what Ray carries. For each stage the driver puts the
recipe and the weights of V, M and C in Ray's object store, once; a worker process fetches
them the first time it runs one of the stage's tasks and keeps its environment and agent
for the stage's other tasks. Every task returns its result (an episode's arrays, a return)
to the driver, which writes the shards, the manifests and the checkpoints.

Faults. Ray's own task retries are off: this executor resubmits, so that every fault is
logged as the local executor logs it and counted against the recipe's ``task_retries``.

* A task whose worker process or node died, or whose result was lost with its node, is
  submitted again, and Ray runs it on a live node.
* A task running longer than ``task_timeout`` is cancelled (Ray kills its worker process) and
  submitted again. Tasks are seeded by their index, so a rerun returns the same result.
* An exception raised by the task itself (a bug, a plugin missing on a node) is raised on
  the driver, as with the local executor.

A task's time counts from when it starts running, not from when it was submitted: a task
waiting for a free CPU is not hung. Each task is a Ray generator that yields twice: once
when it starts (its process set up for the stage), then its result. One that has not
started within ``start_timeout`` seconds counts as hung too.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

import wmkit
from wmkit.core.errors import WmkitError
from wmkit.core.protocols import ExecutorOptions
from wmkit.rollouts.executor import WorkerFailure

log = logging.getLogger("wmkit.executor")


class RayOptions(ExecutorOptions):
    address: str | None = Field(
        None,
        description=(
            "Ray cluster to join, as for ray.init: 'auto' finds the one started on this "
            "machine with 'ray start'; 'HOST:6379' names its head; null starts Ray on this "
            "machine alone (or uses the Ray this process is already connected to)."
        ),
    )
    num_cpus: float = Field(
        1.0, gt=0, description="CPUs each rollout task reserves; a rollout uses one thread."
    )
    max_in_flight: int | None = Field(
        None,
        ge=1,
        description=(
            "Tasks submitted at a time; null: as many as the cluster's CPUs hold at num_cpus "
            "each, counted when each stage (or optimizer generation) starts."
        ),
    )
    start_timeout: float = Field(
        300.0,
        gt=0,
        description=(
            "Seconds a task may wait to start (for a CPU, or for its worker to load the "
            "stage's recipe and weights) before it counts as hung; only with task_timeout."
        ),
    )

    @model_validator(mode="after")
    def _ray_is_installed(self) -> RayOptions:
        # Checked with the recipe, before the run directory is touched.
        if importlib.util.find_spec("ray") is None:
            raise ValueError(
                "the ray executor needs Ray, which is not installed: pip install 'wmkit[ray]'"
            )
        return self


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise WmkitError(
            "executor 'ray' needs Ray, which is not installed: pip install 'wmkit[ray]'"
        ) from None
    return ray


# In a Ray worker process: the stage whose initializer last ran here.
_stage: str | None = None


def _run_task(stage: str, setup: list, fn: Callable, task: Any) -> Iterator[Any]:
    """Runs in a Ray worker: set the process up for ``stage`` unless it is already, say that
    the task has started (the first item), then run it (the second). ``setup`` wraps the
    object reference in a list so that Ray passes the reference, not the value: the value
    is fetched once per process and stage."""
    global _stage
    if _stage != stage:
        import ray

        # One torch thread, as in the local workers: the same speed, the same numbers.
        os.environ["OMP_NUM_THREADS"] = "1"  # for a torch not imported yet
        initializer, initargs = ray.get(setup[0])
        if initializer is not None:
            initializer(*initargs)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        _stage = stage
    yield None
    yield fn(task)


@dataclass
class _InFlight:
    index: int
    submitted: float
    started: float | None = None


class RayExecutor:
    """Runs a stage's tasks as Ray tasks; see the module's docstring."""

    name = "ray"
    Options = RayOptions

    def __init__(
        self,
        options: RayOptions,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        task_timeout: float | None = None,
        retries: int = 2,
    ):
        ray = self.ray = _import_ray()
        if not ray.is_initialized():
            try:
                ray.init(address=options.address)
            except ConnectionError as exc:
                raise WmkitError(
                    f"executor.address {options.address!r}: cannot reach a Ray cluster ({exc}); "
                    f"start one with 'ray start --head'"
                ) from None
        self.options, self.task_timeout, self.retries = options, task_timeout, retries
        self.events: list[tuple[str, int, int]] = []
        self._stage = uuid.uuid4().hex
        self._setup = ray.put((initializer, initargs))
        self._task = ray.remote(num_cpus=options.num_cpus, max_retries=0, num_returns="streaming")(
            _run_task
        )

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from ray.exceptions import RayError, RayTaskError

        ray = self.ray
        queue = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        pending: dict[Any, _InFlight] = {}
        slots = self._slots()

        def submit(i: int) -> None:
            name = f"{fn.__name__}[{i}]"
            run = self._task.options(name=name).remote(self._stage, [self._setup], fn, tasks[i])
            pending[run] = _InFlight(i, time.monotonic())

        def fault(kind: str, i: int, why: str) -> None:
            attempts[i] += 1
            self.events.append((kind, i, attempts[i]))
            log.warning("ray task %d %s (%s; attempt %d); retrying", i, kind, why, attempts[i])
            if attempts[i] > self.retries:
                raise WorkerFailure(
                    f"task {i} failed {attempts[i]} times (worker {kind}); giving up"
                )
            queue.append(i)

        try:
            while queue or pending:
                while queue and len(pending) < slots:
                    submit(queue.popleft())
                running = list(pending)
                ready, _ = ray.wait(running, num_returns=1, timeout=self._poll())
                if ready:  # and whatever else is ready by now
                    ready, _ = ray.wait(running, num_returns=len(running), timeout=0)
                for run in ready:
                    entry = pending[run]
                    try:
                        value = ray.get(next(run))
                    except RayTaskError as exc:  # the task raised: not a fault of the cluster
                        cause = getattr(exc, "cause", None)
                        raise (cause if isinstance(cause, BaseException) else exc) from exc
                    except RayError as exc:  # its worker or node died, or its result was lost
                        del pending[run]
                        fault("crashed", entry.index, type(exc).__name__)
                        continue
                    if entry.started is None:  # the first item: it has started
                        entry.started = time.monotonic()
                        continue
                    del pending[run]
                    yield entry.index, value
                for run, entry in list(pending.items()):
                    if self._late(entry):
                        ray.cancel(run, force=True)
                        del pending[run]
                        fault("hung", entry.index, "past its time limit")
        finally:
            for run in pending:
                ray.cancel(run, force=True)

    def _slots(self) -> int:
        if self.options.max_in_flight:
            return self.options.max_in_flight
        cpus = self.ray.cluster_resources().get("CPU", 0)
        return max(1, int(cpus // self.options.num_cpus))

    def _poll(self) -> float | None:
        return min(0.25, self.task_timeout) if self.task_timeout else None

    def _late(self, entry: _InFlight) -> bool:
        """Running past ``task_timeout``, or not started within ``start_timeout``."""
        if not self.task_timeout:
            return False
        now = time.monotonic()
        if entry.started is None:
            return now - entry.submitted > self.options.start_timeout
        return now - entry.started > self.task_timeout

    def close(self) -> None:
        self._setup = None  # the object store may drop the stage's recipe and weights


@wmkit.hookimpl
def wmkit_register(registry) -> None:
    registry.add_executor(RayExecutor)
