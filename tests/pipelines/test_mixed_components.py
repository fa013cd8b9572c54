"""Recipes that mix the alternative components with the reference ones run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wmkit.cli import app

# CMA-ES scoring candidates in the dream, for the mixes that train C there.
DREAM_CMAES = {
    "optimizer": {
        "name": "cmaes",
        "population": 4,
        "rollouts_per_candidate": 2,
        "generations": 2,
        "train_in": "dream",
    },
    "dream": {"max_steps": 10, "score_episodes": 3},
}

MIXES = {
    "gru+linear+openai_es": {
        "memory": {
            "name": "gru_gaussian",
            "hidden": 16,
            "seq_len": 8,
            "batch_size": 4,
            "epochs": 1,
        },
        "optimizer": {
            "name": "openai_es",
            "population": 4,
            "rollouts_per_candidate": 1,
            "generations": 2,
            "max_steps": 15,
        },
    },
    "mdn+mlp+cmaes in the dream": {
        "controller": {"name": "mlp", "hidden": 4},
        **DREAM_CMAES,
    },
    "mdn ensemble+linear+cmaes in the dream": {
        "memory": {
            "name": "mdn_rnn_ensemble",
            "members": 2,
            "hidden": 16,
            "gaussians": 2,
            "seq_len": 8,
            "batch_size": 4,
            "epochs": 1,
            "controller_features": "hc",
        },
        **DREAM_CMAES,
    },
}


@pytest.mark.parametrize("mix", list(MIXES))
def test_mixed_recipe_runs_end_to_end(fast_recipe, tmp_path, mix):
    data = yaml.safe_load(fast_recipe.read_text())
    data.update(MIXES[mix])
    fast_recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "checkpoints" / "controller.json").read_text())
    assert meta["component"] == data["controller"]["name"] and meta["generation"] == 2
    assert (
        json.loads((out / "checkpoints" / "memory.json").read_text())["component"]
        == (data["memory"]["name"])
    )
    assert len(json.loads((out / "eval.json").read_text())["returns"]) == 2


def test_the_shipped_alternative_recipe_validates():
    path = Path(__file__).parents[2] / "recipes" / "carracing_alt_quick.yaml"
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "memory gru_gaussian, controller mlp, optimizer openai_es" in result.output
