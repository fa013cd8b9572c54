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
from typer.testing import CliRunner

from wmkit.cli import app


def _rows(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _episodes(path: Path) -> int:
    return len(json.loads(path.read_text())["shards"]) if path.exists() else 0


def test_sigkill_at_four_points_then_resume_matches_an_uninterrupted_run(tiny_recipe, tmp_path):
    data = yaml.safe_load(tiny_recipe.read_text())
    data["collect"]["episodes"] = 4
    data["vision"]["epochs"] = 3
    data["memory"]["epochs"] = 6
    data["optimizer"]["generations"] = 4
    tiny_recipe.write_text(yaml.safe_dump(data))

    reference = tmp_path / "reference"
    assert (
        CliRunner().invoke(app, ["run", str(tiny_recipe), "--out", str(reference)]).exit_code == 0
    )

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "wmkit", "run", str(tiny_recipe), "--out", str(out)]
    kill_points = [
        ("collect", lambda: _episodes(out / "data" / "rollouts" / "manifest.json") >= 1),
        # Each after its first checkpoint, so that the resume has something to resume from.
        ("fit_vision", lambda: (out / "checkpoints" / "vision_resume.json").exists()),
        ("fit_memory", lambda: (out / "checkpoints" / "memory_resume.json").exists()),
        ("fit_controller", lambda: (out / "checkpoints" / "optimizer_state.json").exists()),
    ]
    killed_in = []
    for stage, ready in kill_points:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 120
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_in.append(stage)
        proc.wait()
    assert len(killed_in) >= 3, f"the run finished before most kill points: {killed_in}"

    final = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]

    ref_params = load_file(reference / "checkpoints" / "controller.safetensors")["params"]
    got_params = load_file(out / "checkpoints" / "controller.safetensors")["params"]
    np.testing.assert_array_equal(got_params, ref_params)
    ref_eval = json.loads((reference / "eval.json").read_text())
    got_eval = json.loads((out / "eval.json").read_text())
    assert got_eval["returns"] == ref_eval["returns"]
    assert got_eval["dream"] == ref_eval["dream"]
    # Nothing logged twice: one metrics row per epoch or generation.
    assert _rows(out / "metrics" / "fit_vision.jsonl") == 3
    assert _rows(out / "metrics" / "fit_memory.jsonl") == 6
    assert _rows(out / "metrics" / "fit_controller.jsonl") == 4
