"""``wmkit compare``: rliable's aggregates over runs x episodes, read from score files."""

from __future__ import annotations

import json

import numpy as np
import scipy.stats
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.storage.scores import read_scores

runner = CliRunner()


def test_compare_groups_with_cis_and_probability_of_improvement(fast_group, tmp_path):
    out = tmp_path / "cmp"
    seed0, seed1 = fast_group / "seed_0", fast_group / "seed_1"
    args = [str(fast_group), f"first={seed0}", f"both={seed0},{seed1}"]
    result = runner.invoke(app, ["compare", *args, "--out", str(out), "--reps", "50"])
    assert result.exit_code == 0, result.output
    assert "IQM" in result.output and "P(group > first)" in result.output
    data = json.loads((out / "compare.json").read_text())

    # Every figure comes from the score files alone: recompute the point estimates.
    returns = [
        [e["return"] for e in read_scores(r / "scores.json")["evaluations"]["evaluate"]["episodes"]]
        for r in (seed0, seed1)
    ]
    both = np.array(returns)
    for label, matrix in (("group", both), ("both", both), ("first", both[:1])):
        mean, lo, hi = data["aggregates"][label]["mean"]
        assert np.isclose(mean, matrix.mean()) and lo <= mean <= hi
        iqm = scipy.stats.trim_mean(matrix, 0.25, axis=None)
        assert np.isclose(data["aggregates"][label]["iqm"][0], iqm)
    assert data["aggregates"]["group"] == data["aggregates"]["both"]  # same runs, same seed
    pois = {(p["x"], p["y"]): p for p in data["probability_of_improvement"]}
    assert (
        pois[("group", "both")]["probability"] == 0.5
        and pois[("group", "both")]["paired_by_episode_seed"]
    )
    assert data["groups"]["group"]["pipeline_seeds"] == [0, 1]
    assert data["curves"]["group"]["generations"] == 2
    assert len(data["curves"]["group"]["fitness"]["iqm"]) == 2
    for name in ("aggregates", "distributions", "curves"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "compare.md").read_text()
    assert "| group | 2 | 2 | tiny" in table and "seed_1/scores.json" in table


def test_compare_names_a_missing_evaluation(fast_group, tmp_path):
    result = runner.invoke(
        app, ["compare", str(fast_group), "--evaluation", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "no evaluation 'nope' (it has: evaluate, evaluate_dream)" in result.output
    result = runner.invoke(app, ["compare", str(tmp_path / "absent")])
    assert result.exit_code == 2 and "no such run or group directory" in result.output
