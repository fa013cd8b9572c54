"""The attack suite (issue 16): a run directory from elsewhere must not delete, run or hide
anything, and bad input ends in one ``error:`` line. One tiny finished run is built for the
module and copied for each test; most attacks then cost a command or two."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from conftest import FAST
from safetensors.numpy import load_file
from safetensors.numpy import save as np_save
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.storage import checkpoint, fileio
from wmkit.storage.fileio import atomic_write_bytes, sha256_bytes

ROOT = Path(__file__).parents[2]
runner = CliRunner()
# A module that leaves a mark when imported: what a hostile plugin would do.
PROBE = 'from pathlib import Path\nPath(__file__).with_name("IMPORTED").write_text("ran")\n'


def wmkit(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result, *needles: str) -> None:
    """Exit code 2, no traceback nor usage block, and ``error:`` lines holding ``needles``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Usage:" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors, result.output
    for needle in needles:
        assert any(needle in line for line in errors), (needle, result.output)


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a run. Shards and checkpoints, which wmkit only ever replaces by renaming a
    new file over them, are hard links (tests too must never write them in place)."""

    def copy(s: str, d: str) -> None:
        if s.endswith((".safetensors", ".npz")):
            os.link(s, d)
        else:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=copy, symlinks=True)
    return dst


def rewrite(path: Path, data: bytes) -> None:
    """Replace a file's content without touching the file it may be hard-linked to."""
    path.unlink()
    path.write_bytes(data)


def set_shard_file(folder: Path, episode: int, name: str) -> None:
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    data["shards"][str(episode)]["file"] = name
    manifest.write_text(json.dumps(data))


@contextmanager
def fails_instead_of_hanging(seconds: int = 120):
    """Old code read /dev/zero forever; make that a failure, not a stuck suite."""

    def stop(*_):
        raise TimeoutError("still reading after the alarm: it would never end")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny finished run on the blob environment, with a one-temperature sweep."""
    base = tmp_path_factory.mktemp("attacks")
    recipe = base / "fast.yaml"
    data = {**FAST, "dream": {**FAST["dream"], "sweep": [1.5], "sweep_generations": 1}}
    recipe.write_text(yaml.safe_dump(data))
    run = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))  # 'tests.fixtures.blob_plugin'
        result = wmkit("run", recipe, "--out", run)
    assert result.exit_code == 0, result.output
    returns = json.loads((run / "eval.json").read_text())["returns"]
    return SimpleNamespace(recipe=recipe, run=run, returns=returns)


@pytest.fixture
def run(finished, tmp_path, monkeypatch) -> Path:
    monkeypatch.syspath_prepend(str(ROOT))
    return copy_run(finished.run, tmp_path / "run")


# 1. Paths read from a run resolve inside their folder and are regular files.


def test_repair_deletes_nothing_outside_the_run(run, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("precious.txt", "precious.json", "absolute.npz", "linked.txt"):
        (victim / name).write_text("keep me")
    latents, rollouts = run / "data" / "latents", run / "data" / "rollouts"
    set_shard_file(latents, 0, os.path.relpath(victim / "precious.txt", latents))
    set_shard_file(rollouts, 1, str(victim / "absolute.npz"))
    ctrl = run / "checkpoints" / "controller.safetensors"
    ctrl.unlink()
    ctrl.symlink_to(victim / "linked.txt")

    check = wmkit("verify", "--checkpoint", run)
    one_error(check)
    assert "is not a file name inside this folder" in check.output
    assert f"damaged: {ctrl}" in check.output and "leads outside" in check.output
    fixed = wmkit("verify", "--checkpoint", run, "--repair")
    assert fixed.exit_code == 0, fixed.output
    assert {p.name: p.read_text() for p in victim.iterdir()} == {
        name: "keep me" for name in ("precious.txt", "precious.json", "absolute.npz", "linked.txt")
    }
    assert not ctrl.is_symlink()  # the link itself, inside the run, is what went


def test_a_run_pointing_at_dev_zero_is_refused_not_read(finished, run):
    set_shard_file(run / "data" / "rollouts", 0, "/dev/zero")
    shard = run / "data" / "latents" / "episode_000001.npz"
    for path in (shard, run / "eval.json", run / "recipe.yaml"):
        path.unlink()
        path.symlink_to("/dev/zero")
    with fails_instead_of_hanging():
        check = wmkit("verify", "--checkpoint", run)
        resume = wmkit("run", finished.recipe, "--out", run)
    one_error(check)
    for says in ("'/dev/zero' is not a file name", f"damaged: {shard}", f"damaged: {run}/eval"):
        assert says in check.output, check.output
    one_error(resume, "holds a different recipe")


# 2. An untrusted run directory runs no code; `python -m wmkit` imports nothing from '.'.


def test_a_run_directory_runs_no_code_unless_trusted(finished, run, monkeypatch):
    (run / "wmkit_attack_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(run))  # importable, as from any folder on the path
    monkeypatch.delitem(sys.modules, "wmkit_attack_probe", raising=False)
    stored = yaml.safe_load((run / "recipe.yaml").read_text())
    stored["plugins"].append("wmkit_attack_probe")
    (run / "recipe.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    marker = run / "IMPORTED"

    assert wmkit("verify", "--checkpoint", run).exit_code == 0  # needs no plugin at all
    for command in (["eval"], ["dream", "--steps", "2"], ["gap", "--episodes", "2"]):
        result = wmkit(*command, "--checkpoint", run)
        one_error(result, "recipe.yaml: plugins: ", "wmkit_attack_probe", "--trust-plugins")
    for extra in ([], ["--set", "seed=4"]):
        other = wmkit("run", finished.recipe, "--out", run, *extra)
        assert other.exit_code == 2 and "holds a different recipe" in other.output
    assert not marker.exists() and "wmkit_attack_probe" not in sys.modules

    trusted = wmkit("eval", "--checkpoint", run, "--trust-plugins", "--episodes", "1")
    assert trusted.exit_code == 0, trusted.output
    assert marker.exists()


def test_python_m_wmkit_imports_nothing_from_the_current_directory(tmp_path):
    (tmp_path / "wmkit_cwd_probe.py").write_text(PROBE)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"plugins": ["wmkit_cwd_probe"]}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "wmkit", "validate", "r.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cannot import plugin module 'wmkit_cwd_probe'" in done.stderr
    assert not (tmp_path / "IMPORTED").exists()


# 3. A checkpoint's checksum covers its header: dtypes, shapes, offsets and metadata.


def test_a_changed_dtype_or_generation_in_a_header_is_found(run):
    ctrl = run / "checkpoints" / "controller.safetensors"
    good = ctrl.read_bytes()
    for old, new in ((b'"F64"', b'"I64"'), (b'\\"generation\\": 2', b'\\"generation\\": 0')):
        assert old in good
        rewrite(ctrl, good.replace(old, new, 1))
        check = wmkit("verify", "--checkpoint", run)
        one_error(check)
        assert f"damaged: {ctrl} " in check.output, check.output


def test_a_checkpoint_written_before_checksum_version_2_still_loads(tmp_path):
    tensors = {"params": np.arange(3.0)}
    plain = np_save(tensors)
    (size,) = struct.unpack("<Q", plain[:8])
    meta = {"generation": 1, "format": "numpy", "sha256": sha256_bytes(plain[8 + size :])}
    weights = tmp_path / "c.safetensors"
    weights.write_bytes(np_save(tensors, metadata={"wmkit": json.dumps(meta)}))
    loaded, got = checkpoint.load_tensors(tmp_path / "c")
    np.testing.assert_array_equal(loaded["params"], tensors["params"])
    assert got["generation"] == 1 and "checksum_version" not in got
    checkpoint.save_tensors(tmp_path / "c", tensors, {"generation": 2})  # the next save
    assert checkpoint.load_tensors(tmp_path / "c")[1]["checksum_version"] == 2


# 4. A repair cut short at any step is finished, never left half done.


class Killed(Exception):
    """Stands in for SIGKILL at one step of a repair (nothing in wmkit catches it)."""


def test_a_repair_cut_short_anywhere_is_finished_not_left_half_done(
    finished, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(ROOT))

    def damaged_copy(name: str) -> Path:
        run = copy_run(finished.run, tmp_path / name)
        for big in (run / "checkpoints").glob("vision_resume.*"):
            big.unlink()  # optional, and the largest file to check each time
        shard = run / "data" / "rollouts" / "episode_000001.npz"
        rewrite(shard, shard.read_bytes()[:100])
        ctrl = run / "checkpoints" / "controller.safetensors"
        rewrite(ctrl, ctrl.read_bytes()[:-8] + b"garbage!")
        return run

    def state(run: Path):
        stages = sorted(json.loads((run / "stages.json").read_text()))
        episodes = sorted(
            json.loads((run / "data" / "rollouts" / "manifest.json").read_text())["shards"]
        )
        files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
        return stages, episodes, files

    # Every step of a repair that changes the disk is a rename or a delete.
    steps, crash_at = [], [0]

    def counted(real):
        def step(*args, **kwargs):
            steps.append(args[0])
            if len(steps) == crash_at[0]:
                raise Killed
            return real(*args, **kwargs)

        return step

    monkeypatch.setattr(os, "replace", counted(os.replace))
    monkeypatch.setattr(os, "unlink", counted(os.unlink))
    reference = damaged_copy("reference")
    steps.clear()
    assert wmkit("verify", "--checkpoint", reference, "--repair").exit_code == 0
    count = len(steps)
    assert count >= 4
    for k in range(1, count + 1):
        run = damaged_copy(f"cut{k}")
        steps.clear()
        crash_at[0] = k
        cut = wmkit("verify", "--checkpoint", run, "--repair")
        crash_at[0] = 0
        assert isinstance(cut.exception, Killed), (k, cut.output)
        assert wmkit("verify", "--checkpoint", run).exit_code == 2  # never 'ok' half-repaired
        if k == count // 2 + 1:  # the next 'wmkit run' finishes the repair, then redoes it
            redone = wmkit("run", finished.recipe, "--out", run)
            assert redone.exit_code == 0, (k, redone.output)
            assert "finished the repair" in redone.output
            assert wmkit("verify", "--checkpoint", run).exit_code == 0
            params = [
                load_file(r / "checkpoints" / "controller.safetensors")["params"]
                for r in (run, finished.run)
            ]
            np.testing.assert_array_equal(*params)  # retrained exactly
            continue
        again = wmkit("verify", "--checkpoint", run, "--repair")
        assert again.exit_code == 0, (k, again.output)
        assert state(run) == state(reference), k


# 5. verify knows every file a run should have, given its completed stages.


def _truncate(path: Path, size: int) -> Path:
    rewrite(path, path.read_bytes()[:size])
    return path


def _delete(path: Path) -> Path:
    path.unlink()
    return path


def _claim_every_episode(path: Path) -> Path:
    """A stage's record claiming 10**15 episodes: named as damaged, never iterated over."""
    stages = json.loads(path.read_text())
    stages["encode"]["wrote"] = {"latents": [[0, 10**15]]}
    rewrite(path, json.dumps(stages).encode())
    return path


DAMAGE = {
    "stages.json truncated": lambda run: _truncate(run / "stages.json", 40),
    "a stage claims every episode": lambda run: _claim_every_episode(run / "stages.json"),
    "eval.json edited": lambda run: _truncate(run / "eval.json", 200),
    "memory deleted": lambda run: _delete(run / "checkpoints" / "memory.safetensors"),
    "sweep checkpoint damaged": lambda run: _truncate(
        run / "sweep" / "tau_1.5" / "controller.safetensors", 500
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_finds_what_a_run_lacks_and_run_refuses_until_repaired(finished, run, damage):
    path = DAMAGE[damage](run)
    check = wmkit("verify", "--checkpoint", run)
    one_error(check)
    assert f"damaged: {path} " in check.output, check.output
    refused = wmkit("run", finished.recipe, "--out", run)
    one_error(refused, f"{path}: ", "--repair")
    assert wmkit("verify", "--checkpoint", run, "--repair").exit_code == 0
    redone = wmkit("run", finished.recipe, "--out", run)
    assert redone.exit_code == 0, redone.output
    assert wmkit("verify", "--checkpoint", run).exit_code == 0
    assert json.loads((run / "eval.json").read_text())["returns"] == finished.returns


# 6. One `wmkit run` per run directory at a time.

HOLD_LOCK = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, str(os.getpid()).encode())
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_a_second_run_on_the_same_directory_says_who_holds_it(finished, run):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run / ".wmkit.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = wmkit("run", finished.recipe, "--out", run)
        one_error(second, f"in use by another wmkit process (pid {holder.pid})")
        repair = wmkit("verify", "--checkpoint", run, "--repair")
        one_error(repair, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    after = wmkit("run", finished.recipe, "--out", run)  # the lock died with its process
    assert after.exit_code == 0, after.output


# 7. Workers die with their parent and leave Ctrl-C to it.

POOL = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path

    from wmkit.rollouts.executor import ProcessExecutor

    # A shell's background job starts with SIGINT ignored, and Python then keeps it ignored:
    # a suite run with '&' would sleep out the task instead. A terminal's Ctrl-C is the case.
    signal.signal(signal.SIGINT, signal.default_int_handler)


    def report_and_sleep(folder):
        Path(folder, str(os.getpid())).touch()
        time.sleep(600)


    if __name__ == "__main__":
        executor = ProcessExecutor(1, task_timeout=None)
        try:
            for _ in executor.map(report_and_sleep, [sys.argv[1]]):
                pass
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        finally:
            executor.close()
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has yet to notice


def _start_pool(tmp_path: Path, name: str):
    script, folder = tmp_path / f"{name}.py", tmp_path / name
    script.write_text(POOL)
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    for _ in range(1200):  # a worker's start imports torch: up to a minute on a busy machine
        if list(folder.iterdir()) or proc.poll() is not None:
            break
        time.sleep(0.05)
    workers = [int(p.name) for p in folder.iterdir()]
    assert workers, proc.stderr.read() if proc.poll() is not None else "no worker started"
    return proc, workers


def _wait_gone(pids: list[int]) -> list[int]:
    # Up to two minutes: on a starved machine (a CI run beside a training run) a dying
    # worker can take over 30 s to be scheduled at all; a live one fails it all the same.
    for _ in range(2400):
        if not any(_alive(pid) for pid in pids):
            break
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed_and_ignore_ctrl_c(tmp_path):
    proc, workers = _start_pool(tmp_path, "killed")
    proc.kill()
    proc.wait()
    assert _wait_gone(workers) == []

    proc, workers = _start_pool(tmp_path, "interrupted")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    _, stderr = proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert _wait_gone(workers) == []


# 8. Leftovers from killed writes are cleared; atomic writes respect the umask.


def test_a_resumed_run_clears_what_killed_writes_left(finished, run):
    left = [
        run / "checkpoints" / ".vision.safetensors.k1ll3d.tmp",
        run / "data" / "rollouts" / ".episode_000002.npz.abc123.tmp",
    ]
    for path in left:
        path.write_bytes(b"\0" * 2_000_000)
    other = run / "evals" / ".controller_seed0_n2.json.x.tmp"  # a concurrent 'wmkit eval'
    other.parent.mkdir()
    other.write_text("{")
    assert wmkit("run", finished.recipe, "--out", run).exit_code == 0
    assert not any(p.exists() for p in left) and other.exists()


def test_atomic_writes_respect_the_umask(tmp_path):
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            atomic_write_bytes(tmp_path / f"f{mask:o}", b"x")
        finally:
            os.umask(old)
        assert (tmp_path / f"f{mask:o}").stat().st_mode & 0o777 == mode


# 9. A crop must leave some of the frame.


@pytest.mark.parametrize("crop", ["[0,0,0,64]", "[0,0,0,100]", "[40,30,0,0]"])
def test_a_crop_that_leaves_no_frame_is_refused(finished, tmp_path, crop, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    out = tmp_path / "r"
    result = wmkit("run", finished.recipe, "--out", out, "--set", f"env.crop={crop}")
    one_error(result, "env.crop: ", "64")
    assert not out.exists()


# 10. One line, exit 2: YAML in --set, memory, overflow, a full or read-only disk.


@pytest.mark.parametrize(
    "override", ["seed=[1,", 'seed=!!python/object/apply:os.system ["echo pwned"]']
)
def test_a_bad_set_value_is_one_line(tiny_recipe, override):
    result = wmkit("validate", tiny_recipe, "--set", override)
    one_error(result, "--set: seed: invalid YAML value")


def test_components_too_big_for_memory_are_refused_before_any_work(finished, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    out = tmp_path / "r"
    huge = wmkit("run", finished.recipe, "--out", out, "--set", "memory.hidden=1000000000")
    one_error(huge, "memory: not enough memory to build it")
    # CMA-ES's covariance grows with the square of C's parameters: on a 0.5 GB machine a
    # 3000-wide z (6,034 parameters, 0.9 GB) is refused by the preflight, not by numpy.
    from wmkit.core import resources

    monkeypatch.setattr(resources, "available_memory", lambda: 512 * 1024**2)
    wide = wmkit("run", finished.recipe, "--out", out, "--set", "vision.z_dim=3000")
    one_error(wide, "optimizer: CMA-ES over 6,034 parameters needs about 0.8 GB")
    assert not out.exists()


def test_an_overflowing_learning_rate_is_one_line(finished, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    out = tmp_path / "r"
    huge = wmkit("validate", finished.recipe, "--set", "vision.learning_rate=1e300")
    one_error(huge, "vision.learning_rate: Value error, must be a finite number")
    large = wmkit("run", finished.recipe, "--out", out, "--set", "vision.learning_rate=1e38")
    one_error(large, "fit_vision: ", "overflow", "try a lower learning rate")


def test_a_full_disk_is_one_line(finished, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    out = tmp_path / "r"
    result = wmkit("run", finished.recipe, "--out", out)
    one_error(result, "No space left on device", "run the same command again")
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.parametrize(
    "command",
    [
        ["eval", "--trust-plugins"],
        ["dream", "--trust-plugins", "--steps", "2"],
        ["verify", "--repair"],
        ["run"],
    ],
)
def test_a_read_only_run_directory_is_one_line(finished, run, monkeypatch, command):
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT
        if flags & writes and str(path).startswith(str(run)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    if command[0] == "verify":  # something to repair, so that repair has to write
        _truncate(run / "data" / "rollouts" / "episode_000001.npz", 100)
    monkeypatch.setattr(os, "open", read_only)
    if command == ["run"]:
        result = wmkit("run", finished.recipe, "--out", run)
    else:
        result = wmkit(*command, "--checkpoint", run)
    one_error(result, "Read-only file system")
    if command[0] == "eval":  # what took minutes to compute is shown before the save fails
        assert "eval mean" in result.stdout


# 11. An empty recipe is an error, not the paper-scale default run.


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_recipe_is_an_error(write_recipe, text):
    path = write_recipe(text, "empty.yaml")
    one_error(wmkit("validate", path), f"{path}: the recipe is empty")


# 12. Messages where they belong.


@pytest.mark.parametrize(
    "command",
    [["eval", "--episodes", "0"], ["dream", "--temperature", "0"], ["gap", "--episodes", "1"]],
)
def test_out_of_range_options_get_the_error_line_not_a_usage_block(tmp_path, command):
    result = wmkit(*command, "--checkpoint", tmp_path)
    one_error(result, command[1])


def test_worker_warnings_during_run_reach_stderr(finished, run, monkeypatch):
    import logging

    from wmkit.pipelines import ha

    def warn(ctx):
        logging.getLogger("wmkit.executor").warning("worker crashed on task 0 (attempt 1)")
        return {}

    stages = [(n, warn if n == "temperature_sweep" else f) for n, f in ha.STAGES]
    monkeypatch.setattr(ha, "STAGES", stages)
    recorded = json.loads((run / "stages.json").read_text())
    del recorded["temperature_sweep"]
    (run / "stages.json").write_text(json.dumps(recorded))
    result = wmkit("run", finished.recipe, "--out", run)
    assert result.exit_code == 0, result.output
    assert "warning: worker crashed on task 0 (attempt 1)" in result.stderr
