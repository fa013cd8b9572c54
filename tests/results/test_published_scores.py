"""The score files committed under docs/scores/: valid, one per pipeline seed, and the
figures docs/results.md prints are the ones they hold (so every published number can be
recomputed with ``wmkit compare docs/scores/NAME``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.storage.scores import read_scores

ROOT = Path(__file__).parents[2]
SCORES = ROOT / "docs" / "scores"
FILES = sorted(SCORES.glob("*/seed_*/scores.json"))
RESULTS = (ROOT / "docs" / "results.md").read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parts[-3]}/{p.parts[-2]}")
def test_a_published_score_file_is_its_seed_and_is_quoted_in_the_results(path):
    data = read_scores(path)  # the documented schema
    assert data["run"]["name"] == path.parts[-3]
    assert f"seed_{data['run']['seed']}" == path.parts[-2]
    episodes = data["evaluations"]["evaluate"]["episodes"]
    returns = np.array([e["return"] for e in episodes])
    # evaluation seeds from 1,000,000: never a collection, fitness or training episode's
    assert [e["seed"] for e in episodes] == list(range(1_000_000, 1_000_000 + len(returns)))
    assert f"{returns.mean():.1f} ± {returns.std():.1f}" in RESULTS


def test_the_published_groups_compare_with_rliable(tmp_path):
    groups = sorted({p.parents[1] for p in FILES})
    if not groups:
        pytest.skip("no score files committed")
    result = CliRunner().invoke(
        app, ["compare", *map(str, groups), "--out", str(tmp_path), "--reps", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "IQM" in (tmp_path / "compare.md").read_text()
