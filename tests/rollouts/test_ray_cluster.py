"""The ray executor on a two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``:
two raylets, two object stores): a worker process is killed mid-stage, then the whole second
node, and the run still finishes with the numbers of the local executor."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY, run_numbers
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import resolve_recipe
from wmkit.pipelines.runner import run_pipeline

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """A head node and a second node, one CPU each, with this process as the driver."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_worker_niceness", "0")  # not 15 levels below the rest of the suite
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        second = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, second
    ray.shutdown()
    cluster.shutdown()


def running(task: str) -> list[tuple[int, int]]:
    """(pid, parent pid) of every Ray worker process now running a task of ``task`` (Ray
    titles such a process ``ray::TASK[INDEX]``, after the executor's task names)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "cmdline").read_bytes().startswith(f"ray::{task}[".encode()):
                continue
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        found.append((int(proc.name), parent))
    return found


def wait_for(what: str, found: Callable[[], list], runner: threading.Thread) -> list:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and runner.is_alive():
        if result := found():
            return result
        time.sleep(0.02)
    pytest.fail(f"never saw {what}")


def test_a_run_survives_a_killed_worker_and_a_lost_node(two_nodes, tmp_path, tiny_numbers):
    cluster, second = two_nodes
    raylet = second.all_processes["raylet"][0].process.pid
    registry = get_registry()
    recipe = resolve_recipe({**TINY, "executor": {"name": "ray"}}, registry)
    out = tmp_path / "run"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_pipeline(recipe, registry, out)
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        # A worker process of the collect stage, on whichever node it runs.
        [(pid, _), *_] = wait_for("a collection task", lambda: running("collect_one"), runner)
        os.kill(pid, signal.SIGKILL)
        # The whole second node, while it plays a fitness episode of the controller stage.
        on_second = lambda: [p for p in running("fitness_rollout") if p[1] == raylet]  # noqa: E731
        wait_for("a fitness task on the second node", on_second, runner)
        cluster.remove_node(second, allow_graceful=False)
    finally:
        runner.join()
    assert not errors, errors
    assert run_numbers(out) == tiny_numbers
    log = (out / "wmkit.log").read_text()
    assert "crashed (WorkerCrashedError" in log
    assert "crashed (NodeDiedError" in log
