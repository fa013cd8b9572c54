"""Shared fixtures: a tiny recipe that runs the whole pipeline in seconds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

# Test workloads are tiny: one thread beats two (and keeps bitwise comparisons with the
# subprocess runs of test_resume.py, which get OMP_NUM_THREADS=1, meaningful).
torch.set_num_threads(1)

# Plugins kept as data (tests/devkit/test_old_plugins.py runs their tests on a copy).
collect_ignore_glob = ["fixtures/old_plugins/*"]

TINY = {
    "name": "tiny",
    "seed": 3,
    "device": "cpu",
    "workers": 0,
    "env": {"id": "CarRacing-v3", "crop": [0, 12, 0, 0], "max_episode_steps": 40},
    "collect": {"episodes": 3, "policy": "brownian"},
    "vision": {"name": "conv_vae", "z_dim": 8, "epochs": 1, "batch_size": 32},
    "memory": {
        "name": "mdn_rnn",
        "hidden": 16,
        "gaussians": 2,
        "seq_len": 8,
        "batch_size": 4,
        "epochs": 1,
    },
    "controller": {"name": "linear"},
    "optimizer": {
        "name": "cmaes",
        "population": 4,
        "rollouts_per_candidate": 1,
        "generations": 2,
        "max_steps": 15,
    },
    "eval": {"episodes": 2, "max_steps": 20},
    "dream": {"max_steps": 20, "score_episodes": 4},
}


# The same pipeline on a tiny image environment that steps in microseconds instead of
# CarRacing's ~10 ms, for tests that run the pipeline several times.
FAST = {
    **TINY,
    "plugins": ["tests.fixtures.blob_plugin"],
    "env": {"id": "wmkit-test/Blob-v0"},
}


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    """The whole pipeline on CarRacing-v3, with tiny budgets."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture
def fast_recipe(tmp_path: Path, monkeypatch) -> Path:
    """The whole pipeline on the blob environment (tests/fixtures/blob_env.py)."""
    monkeypatch.chdir(Path(__file__).parents[1])  # so that 'tests.fixtures' imports
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(FAST))
    return path


@pytest.fixture
def write_recipe(tmp_path: Path):
    """Write a recipe (a dict or raw text) to a file and return its path."""

    def _write(content, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
        return path

    return _write


@pytest.fixture(scope="session")
def fast_group(tmp_path_factory) -> Path:
    """Seeds 0 and 1 of the blob pipeline, run once per session by ``wmkit run --seeds``
    into a group directory. Tests read it; whatever they write goes elsewhere."""
    from typer.testing import CliRunner

    from wmkit.cli import app

    root = tmp_path_factory.mktemp("fast_group")
    recipe = root / "fast.yaml"
    recipe.write_text(yaml.safe_dump(FAST))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(Path(__file__).parents[1])
        out = root / "group"
        result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out), "--seeds", "0-1"])
    assert result.exit_code == 0, result.output
    return out


def run_numbers(out: Path) -> dict:
    """Everything a run computed, for comparing runs bit for bit: every evaluation return,
    the dream score, the SHA-256 of the final controller's parameters, every shard's
    checksum and every generation's fitness."""
    from safetensors.numpy import load

    evaluation = json.loads((out / "eval.json").read_text())
    params = load((out / "checkpoints" / "controller.safetensors").read_bytes())["params"]

    def shards(folder: str) -> dict:
        manifest = json.loads((out / "data" / folder / "manifest.json").read_text())
        return {k: v["sha256"] for k, v in manifest["shards"].items()}

    fitness = (out / "metrics" / "fit_controller.jsonl").read_text().splitlines()
    return {
        "returns": evaluation["returns"],
        "dream": evaluation["dream"]["mean"],
        "controller_sha256": hashlib.sha256(params.tobytes()).hexdigest(),
        "rollouts": shards("rollouts"),
        "latents": shards("latents"),
        "fitness": [{k: json.loads(row)[k] for k in ("best", "mean", "worst")} for row in fitness],
    }


@pytest.fixture(scope="session")
def tiny_numbers(tmp_path_factory) -> dict:
    """``run_numbers`` of the tiny recipe on the local executor, run once per session."""
    from wmkit.core.plugins import get_registry
    from wmkit.core.recipe import resolve_recipe
    from wmkit.pipelines.runner import run_pipeline

    out = tmp_path_factory.mktemp("tiny_local") / "run"
    registry = get_registry()
    run_pipeline(resolve_recipe(dict(TINY), registry), registry, out)
    return run_numbers(out)
