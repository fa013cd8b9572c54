"""Rollout executors: inline and worker processes give the same results."""

from __future__ import annotations

from wmkit.rollouts.executor import InlineExecutor, ProcessExecutor, make_executor


def square_and_threads(x: int) -> tuple[int, int]:
    import torch

    return x * x, torch.get_num_threads()


def test_process_pool_runs_every_task_with_one_torch_thread_each():
    ex = make_executor(2)
    assert isinstance(ex, ProcessExecutor)
    try:
        results = dict(ex.map(square_and_threads, list(range(7))))
    finally:
        ex.close()
    assert {i: r[0] for i, r in results.items()} == {i: i * i for i in range(7)}
    assert {r[1] for r in results.values()} == {1}


def test_inline_executor_runs_its_initializer_once():
    calls = []
    ex = make_executor(0, calls.append, ("init",))
    assert isinstance(ex, InlineExecutor) and calls == ["init"]
    assert list(ex.map(lambda x: x + 1, [1, 2])) == [(0, 2), (1, 3)]


def crash_or_hang_once(task: tuple[int, str, str]) -> int:
    """Fails the first time it sees a task marked 'crash' or 'hang', then succeeds."""
    import os
    import time
    from pathlib import Path

    value, mode, marker_dir = task
    marker = Path(marker_dir) / f"{value}-{mode}"
    if mode != "ok" and not marker.exists():
        marker.write_text("seen")
        if mode == "crash":
            os._exit(1)
        time.sleep(60)
    return value * 10


def test_a_crashed_or_hung_worker_is_replaced_and_its_task_retried(tmp_path):
    ex = ProcessExecutor(2, task_timeout=5.0, retries=2)
    try:
        for bad in ("crash", "hang"):
            modes = ["ok", bad, "ok", "ok"]
            tasks = [(i, m, str(tmp_path)) for i, m in enumerate(modes)]
            assert dict(ex.map(crash_or_hang_once, tasks)) == {i: i * 10 for i in range(4)}
    finally:
        ex.close()
    kinds = {(kind, i) for kind, i, _ in ex.events}
    assert ("crashed", 1) in kinds and ("hung", 1) in kinds


def slow_start(seconds: float) -> None:
    import time

    time.sleep(seconds)


def test_a_slow_worker_start_is_not_taken_for_a_hung_task():
    # Starting takes twice the task timeout (as loading V, M and Doom can on a busy machine);
    # the tasks themselves are instant. Timing the start as part of a task would call every
    # task hung and restart the pool until the task gives up.
    ex = ProcessExecutor(2, slow_start, (2.0,), task_timeout=1.0, retries=0)
    try:
        assert dict(ex.map(abs, [-1, -2, -3])) == {0: 1, 1: 2, 2: 3}
    finally:
        ex.close()
    assert ex.events == []


def always_crash(task: int) -> int:
    import os

    os._exit(3)


def test_a_task_that_keeps_crashing_gives_up_with_a_clear_error():
    import pytest

    from wmkit.rollouts.executor import WorkerFailure

    ex = ProcessExecutor(2, retries=1)
    try:
        with pytest.raises(WorkerFailure, match="task 0 failed 2 times"):
            list(ex.map(always_crash, [0]))
    finally:
        ex.close()
