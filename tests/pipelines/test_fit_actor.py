"""The paper's pipeline with C trained by the actor-critic in M's dream (stages/fit_actor.py):
no real step, M untouched, resumable to the bit, scored like an evolved C."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import resolve_recipe

ACTOR = {
    "controller": {"name": "actor", "units": 16, "layers": 1},
    "optimizer": {
        "name": "actor_critic",
        "generations": 2,
        "updates": 2,
        "starts": 8,
        "score_dreams": 4,
        "horizon": 5,
        "units": 16,
        "layers": 1,
        "bins": 15,
        "learning_rate": 1e-3,
    },
}


def _recipe(fast_recipe, **changes):
    data = {**yaml.safe_load(fast_recipe.read_text()), **ACTOR, **changes}
    registry = get_registry(tuple(data["plugins"]))
    return resolve_recipe(data, registry), registry


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_actor_critic_trains_c_in_the_dream_of_the_papers_m(fast_recipe, tmp_path):
    from wmkit.pipelines.runner import make_context, run_pipeline
    from wmkit.pipelines.stages.fit_actor import fit_actor
    from wmkit.storage.rundir import RunDir

    recipe, registry = _recipe(fast_recipe, dream={"max_steps": 20, "starts": "anywhere"})
    out = tmp_path / "run"
    summaries = run_pipeline(recipe, registry, out)
    fit = summaries["fit_controller"]
    assert fit["generations"] == 2 and fit["env_steps"] == 0
    rows = [
        json.loads(r) for r in (out / "metrics" / "fit_controller.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [0, 1]
    assert all(r["env_steps"] == 0 and r["dream_steps"] > 0 for r in rows)
    assert all(np.isfinite(r["actor_loss"]) and np.isfinite(r["critic_loss"]) for r in rows)
    assert summaries["evaluate"]["episodes"] == 2
    assert (out / "plots" / "controller_fitness.png").stat().st_size > 0
    trained = load_file(out / "checkpoints" / "controller.safetensors")["params"]

    # Stopped after one generation and rerun: the same actor, bit for bit, and M untouched.
    again = tmp_path / "again"
    shutil.copytree(out, again)
    for name in ("controller", "optimizer_state"):
        (again / "checkpoints" / f"{name}.safetensors").unlink()
        (again / "checkpoints" / f"{name}.json").unlink(missing_ok=True)
    (again / "metrics" / "fit_controller.jsonl").unlink()
    memory_before = _sha(again / "checkpoints" / "memory.safetensors")
    ctx = make_context(recipe, registry, RunDir(again))
    fit_actor(ctx, generations=1)
    first = load_file(again / "checkpoints" / "controller.safetensors")["params"]
    assert not np.array_equal(first, trained)
    fit_actor(ctx, generations=2)
    np.testing.assert_array_equal(
        load_file(again / "checkpoints" / "controller.safetensors")["params"], trained
    )
    assert _sha(again / "checkpoints" / "memory.safetensors") == memory_before


def test_further_rounds_continue_the_actor_and_its_critic(fast_recipe, tmp_path):
    from wmkit.pipelines.runner import run_pipeline

    iterate = {"rounds": 2, "episodes": 2, "candidates": 2, "memory_epochs": 1, "generations": 1}
    recipe, registry = _recipe(fast_recipe, iterate=iterate)
    summaries = run_pipeline(recipe, registry, tmp_path / "run")
    assert summaries["fit_controller_round2"]["generations"] == 3  # 2, then 1 more
    assert summaries["collect_round2"]["episodes"] == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"controller": {"name": "linear"}}, "controller: 'linear' has no action distribution"),
        ({"dream": {"sweep": [1.0, 1.2]}}, "dream.sweep: the temperature sweep reruns"),
        ({"dream": {"guard": {"every": 1}}}, "dream.guard.every: the exploit guard checks"),
    ],
)
def test_preflight_names_what_a_gradient_trained_c_cannot_do(
    fast_recipe, tmp_path, changes, message
):
    from wmkit.pipelines.runner import make_context, preflight
    from wmkit.storage.rundir import RunDir

    recipe, registry = _recipe(fast_recipe, **changes)
    with pytest.raises(WmkitError, match=message):
        preflight(make_context(recipe, registry, RunDir(tmp_path / "run")))
