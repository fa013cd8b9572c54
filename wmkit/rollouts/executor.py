"""One small interface for running rollouts in parallel.

The stages only call ``map``; whether tasks run inline, in local worker processes or on a
cluster is the executor's business (``wmkit.core.protocols.Executor``). The recipe's ``executor``
block chooses it: ``local`` (this module, the default) or ``ray`` (plugin ``wmkit_ray``), and
a plugin can add another with ``registry.add_executor``. Tasks get what they need as values
(the recipe, the weights of V, M and C) and return their results as data; only the driver
writes to the run directory. Workers get one torch thread each: on a small machine, workers
that keep torch's default thread count fight over the cores and run about 15x slower
together than alone.

Local workers are fault tolerant: a worker that dies (segfault, OOM kill, ``os._exit``) or
runs one task past ``task_timeout`` is replaced, and its task is retried up to ``retries``
times. A task's time counts from when a worker starts running it, not from when it was
submitted: a fresh worker's start (spawning, importing torch, loading V and M, starting Doom)
can take longer than a task on a busy machine, and is allowed ``startup_timeout``.
A hung task is known exactly; a dead worker breaks the whole pool without saying which task
it ran, so every task then in flight is counted one attempt. Tasks must therefore be
repeatable, which every wmkit task is (they are seeded by their index and write nothing).

Workers never outlive the process that started them: on Linux the kernel kills them when it
dies (a parent-death signal), and a thread in each worker watches its parent's pid as well,
for other systems and for the moment before the signal is set. Workers ignore SIGINT: a
Ctrl-C reaches the whole process group, and only the main process handles it (it stops the
workers), so that no worker prints a traceback.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from wmkit.core.errors import WmkitError
from wmkit.core.hookspecs import hookimpl
from wmkit.core.protocols import ExecutorOptions

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("wmkit.executor")


class WorkerFailure(WmkitError):
    """A task failed on every retry: its worker kept dying or hanging."""


def _single_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


_started: Any = None  # in a worker: the queue on which it says when it starts each task


def _follow_parent(poll: float = 1.0) -> None:
    """End this worker when its parent dies, and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = mp.parent_process()
    ppid = parent.pid if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # the watch below still ends the worker
    if os.getppid() != ppid:  # the parent died before the signal was set
        os._exit(1)

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="wmkit-parent-watch", daemon=True).start()


def _init_worker(
    initializer: Callable[..., None] | None, initargs: tuple[Any, ...], started: Any
) -> None:
    global _started
    _started = started
    _follow_parent()
    _single_thread()
    if initializer is not None:
        initializer(*initargs)


def _run(fn: Callable[[T], R], index: int, task: T) -> R:
    """Say when task ``index`` starts (CLOCK_MONOTONIC is system-wide), then run it."""
    _started.put((index, time.monotonic()))
    return fn(task)


class InlineExecutor:
    """Runs tasks one after another in this process (tests, debugging, ``workers: 0``)."""

    workers = 1

    def __init__(self, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
        if initializer is not None:
            initializer(*initargs)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        # Rollouts step one agent at a time: torch's thread pool only adds overhead there
        # (tens of times slower on a busy machine), so tasks run single-threaded here too.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i, task in enumerate(tasks):
                yield i, fn(task)
        finally:
            torch.set_num_threads(threads)

    def close(self) -> None:
        pass


@dataclass
class _InFlight:
    """A task in flight: its index, when it was submitted, when a worker started it."""

    index: int
    submitted: float
    started: float | None = None


class ProcessExecutor:
    """A pool of spawned worker processes, kept for the life of a stage, replaced on faults.

    ``events`` records every fault (for logs and tests): (kind, task index, attempt).
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        task_timeout: float | None = None,
        retries: int = 2,
        startup_timeout: float = 300.0,
    ):
        self.workers = workers
        self.task_timeout = task_timeout
        self.startup_timeout = startup_timeout
        self.retries = retries
        self.events: list[tuple[str, int, int]] = []
        self._initializer, self._initargs = initializer, initargs
        self._pending: dict[Future, _InFlight] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = mp.get_context("spawn")
        self._started = context.SimpleQueue()  # a new pool, a new queue: no stale starts
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._initializer, self._initargs, self._started),
        )

    def _kill_workers(self) -> None:
        for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
            proc.kill()

    def _restart(self) -> None:
        """Kill every worker (a hung one cannot be stopped any other way) and start anew."""
        self._kill_workers()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        # One task per worker in flight: a task's age is then its running time, and a long
        # task list costs no memory.
        queue = list(range(len(tasks)))[::-1]
        attempts = [0] * len(tasks)
        pending: dict[Future, _InFlight] = {}
        self._pending = pending  # for close(), when the loop below is left early

        def submit(i: int) -> None:
            pending[self._pool.submit(_run, fn, i, tasks[i])] = _InFlight(i, time.monotonic())

        def note_starts() -> None:
            by_index = {entry.index: entry for entry in pending.values()}
            while not self._started.empty():
                i, at = self._started.get()
                if i in by_index:
                    by_index[i].started = at

        def fault(kind: str, i: int) -> None:
            attempts[i] += 1
            self.events.append((kind, i, attempts[i]))
            log.warning("worker %s on task %d (attempt %d); retrying", kind, i, attempts[i])
            if attempts[i] > self.retries:
                raise WorkerFailure(
                    f"task {i} failed {attempts[i]} times (worker {kind}); giving up"
                )

        try:
            while queue or pending:
                while queue and len(pending) < self.workers:
                    submit(queue.pop())
                done, _ = wait(pending, timeout=self._poll(), return_when=FIRST_COMPLETED)
                note_starts()
                broken = False
                for fut in done:
                    i = pending.pop(fut).index
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        fault("crashed", i)
                        queue.append(i)
                        continue
                    yield i, result
                hung = [entry.index for entry in pending.values() if self._late(entry)]
                for i in hung:
                    fault("hung", i)
                if broken or hung:
                    # Every task still in flight is lost with the pool: run them again.
                    queue.extend(entry.index for entry in pending.values())
                    pending.clear()
                    self._restart()
        finally:
            for fut in pending:
                fut.cancel()

    def _late(self, entry: _InFlight) -> bool:
        """Running past ``task_timeout``, or not started within ``startup_timeout``."""
        if not self.task_timeout:
            return False
        now = time.monotonic()
        if entry.started is None:
            return now - entry.submitted > self.startup_timeout
        return now - entry.started > self.task_timeout

    def _poll(self) -> float | None:
        """How long to wait for a result before looking for starts and hung tasks again."""
        return min(0.25, self.task_timeout) if self.task_timeout else None

    def close(self) -> None:
        """Stop the pool. Tasks still running (the stage was interrupted or failed) are not
        waited for: their workers are killed."""
        if any(not fut.done() for fut in self._pending):
            self._kill_workers()
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    task_timeout: float | None = None,
    retries: int = 2,
) -> InlineExecutor | ProcessExecutor:
    """``workers`` <= 1 runs inline (no process start-up cost); more uses a process pool."""
    if workers <= 1:
        return InlineExecutor(initializer, initargs)
    return ProcessExecutor(workers, initializer, initargs, task_timeout, retries)


class LocalExecutor:
    """Rollouts on this machine: ``workers`` spawned processes, or this process when
    ``workers`` is 0 or 1. Its settings are the recipe's top-level ``workers``,
    ``task_timeout`` and ``task_retries``."""

    name = "local"

    class Options(ExecutorOptions):
        """No options of its own."""

    def __init__(
        self,
        options: ExecutorOptions,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        task_timeout: float | None = None,
        retries: int = 2,
    ):
        self.pool = make_executor(workers, initializer, initargs, task_timeout, retries)

    @property
    def events(self) -> list[tuple[str, int, int]]:
        return getattr(self.pool, "events", [])

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        return self.pool.map(fn, tasks)

    def close(self) -> None:
        self.pool.close()


@hookimpl
def wmkit_register(registry) -> None:
    """The local executor registers as any plugin's executor would (entry point ``local``)."""
    registry.add_executor(LocalExecutor)
