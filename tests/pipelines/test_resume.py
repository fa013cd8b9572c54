"""Exact resume: SIGKILL a run at several points, rerun the same command, and get the very
same controller and evaluation as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from safetensors.numpy import load_file


def _rows(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sigkill_at_four_points_then_resume_matches_an_uninterrupted_run(fast_recipe, tmp_path):
    data = yaml.safe_load(fast_recipe.read_text())
    data["collect"]["episodes"] = 4
    data["vision"]["epochs"] = 3
    data["memory"]["epochs"] = 6
    data["optimizer"]["generations"] = 4
    fast_recipe.write_text(yaml.safe_dump(data))

    # Reference and interrupted runs alike run the CLI in a fresh, single-threaded process.
    # 'python -m wmkit' leaves the current directory off the import path: the recipe's
    # plugin module (tests.fixtures.blob_plugin) is found through PYTHONPATH.
    root = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    base = [sys.executable, "-m", "wmkit", "run", str(fast_recipe), "--out"]
    reference = tmp_path / "reference"
    # The reference runs beside the interrupted one: each process is single-threaded.
    ref = subprocess.Popen(
        [*base, str(reference)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )

    out = tmp_path / "killed"
    ckpt = out / "checkpoints"
    kill_points = [
        ("collect", lambda: (out / "data" / "rollouts" / "manifest.json").exists()),
        # Each after its first checkpoint, so that the resume has something to resume from.
        ("fit_vision", lambda: (ckpt / "vision_resume.json").exists()),
        ("fit_memory", lambda: (ckpt / "memory_resume.json").exists()),
        ("fit_controller", lambda: (ckpt / "optimizer_state.json").exists()),
    ]
    killed_in = []
    for stage, ready in kill_points:
        proc = subprocess.Popen(
            [*base, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        deadline = time.monotonic() + 120
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_in.append(stage)
        proc.wait()
    assert len(killed_in) >= 3, f"the run finished before most kill points: {killed_in}"

    final = subprocess.run([*base, str(out)], capture_output=True, text=True, env=env)
    assert final.returncode == 0, final.stderr[-2000:]
    _, ref_err = ref.communicate()
    assert ref.returncode == 0, ref_err[-2000:]

    for name in ("vision", "memory", "controller"):
        want = load_file(reference / "checkpoints" / f"{name}.safetensors")
        got = load_file(ckpt / f"{name}.safetensors")
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}.{key}")
    ref_eval = json.loads((reference / "eval.json").read_text())
    got_eval = json.loads((out / "eval.json").read_text())
    assert got_eval["returns"] == ref_eval["returns"]
    assert got_eval["dream"] == ref_eval["dream"]
    # Nothing logged twice: one metrics row per epoch or generation.
    assert _rows(out / "metrics" / "fit_vision.jsonl") == 3
    assert _rows(out / "metrics" / "fit_memory.jsonl") == 6
    assert _rows(out / "metrics" / "fit_controller.jsonl") == 4
