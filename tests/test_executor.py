"""Rollout executors: inline and worker processes give the same results."""

from __future__ import annotations

from wmkit.executor import InlineExecutor, ProcessExecutor, make_executor


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
