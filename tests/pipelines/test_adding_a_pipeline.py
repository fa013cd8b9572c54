"""docs/pipelines.md's example pipeline, exactly as printed there, runs end to end: a third
pipeline is a plugin that touches no command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.core.plugins import reset_plugins

DOCS = Path(__file__).parents[2] / "docs" / "pipelines.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOCS.read_text(), flags=re.S)


def test_the_example_pipeline_runs(tmp_path, monkeypatch):
    (tmp_path / "wmkit_random_baseline.py").write_text(blocks("python")[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = tmp_path / "baseline.yaml"
    recipe.write_text(blocks("yaml")[0])
    out = tmp_path / "run"
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
        assert result.exit_code == 0, result.output
        evaluation = json.loads((out / "eval.json").read_text())
        assert evaluation["policy"] == "random" and evaluation["episodes"] == 2
        assert list(json.loads((out / "stages.json").read_text())) == ["score"]
        assert yaml.safe_load((out / "recipe.yaml").read_text())["pipeline"]["name"] == (
            "random_baseline"
        )
        again = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
        assert again.exit_code == 0 and "score: already complete, skipped" in again.output
        verified = runner.invoke(app, ["verify", "--checkpoint", str(out)])
        assert verified.exit_code == 0, verified.output
        scored = runner.invoke(
            app,
            ["eval", "--checkpoint", str(out), "--policy", "random", "--episodes", "2"]
            + ["--trust-plugins", "--json"],
        )
        assert scored.exit_code == 0, scored.output
        assert json.loads(scored.stdout)["returns"] == evaluation["returns"]
    finally:
        reset_plugins()
