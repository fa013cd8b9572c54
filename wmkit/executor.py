"""One small interface for running rollouts in parallel.

The stages only call ``map``; whether tasks run inline, in local worker processes or (later)
on a cluster is the executor's business. Workers get one torch thread each: on a small
machine, workers that keep torch's default thread count fight over the cores and run about
15x slower together than alone.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn`` over tasks and yields ``(index, result)`` as results arrive."""

    workers: int

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]: ...

    def close(self) -> None: ...


def _single_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    _single_thread()
    if initializer is not None:
        initializer(*initargs)


class InlineExecutor:
    """Runs tasks one after another in this process (tests, debugging, ``workers: 0``)."""

    workers = 1

    def __init__(self, initializer: Callable[..., None] | None = None, initargs: tuple = ()):
        if initializer is not None:
            initializer(*initargs)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A pool of spawned worker processes, kept for the life of a stage."""

    def __init__(
        self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
    ):
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(initializer, initargs),
        )

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R]]:
        # Keep at most a few tasks per worker in flight, so a long task list costs no memory.
        pending: dict[Future, int] = {}
        queue = iter(enumerate(tasks))
        limit = self.workers * 2
        try:
            for i, task in queue:
                pending[self._pool.submit(fn, task)] = i
                if len(pending) >= limit:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[self._pool.submit(fn, nxt[1])] = nxt[0]
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> InlineExecutor | ProcessExecutor:
    """``workers`` <= 1 runs inline (no process start-up cost); more uses a process pool."""
    if workers <= 1:
        return InlineExecutor(initializer, initargs)
    return ProcessExecutor(workers, initializer, initargs)
