"""scripts/dreamerv3_reference.py: DreamerV3's score at a step, from a file shaped as its
published score files, with one error line and exit code 2 for what it cannot read; and
scripts/dmc_scores.py: a run's training returns on DreamerV3's step axis beside it."""

from __future__ import annotations

import gzip
import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "dreamerv3_reference.py"


def _run(monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *map(str, argv)])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def _score_file(path: Path) -> Path:
    """Two seeds of one task, a point per 10,000 steps, as dmc_proprio-dreamerv3.json.gz."""
    runs = [
        {"task": "dmc_walker_walk", "method": "dreamerv3", "seed": s, "xs": xs, "ys": ys}
        for s, (xs, ys) in enumerate(
            [([10_000, 20_000], [100.0, 300.0]), ([10_000, 20_000], [200.0, 500.0])]
        )
    ]
    path.write_bytes(gzip.compress(json.dumps(runs).encode()))
    return path


def test_the_score_at_a_step_is_the_seeds_mean_of_their_point_there(monkeypatch, tmp_path, capsys):
    file = _score_file(tmp_path / "scores.json.gz")
    _run(monkeypatch, file, "--tasks", "walker_walk", "--steps", "20000", "30000")
    rows = capsys.readouterr().out.splitlines()
    assert rows[2] == "| walker_walk | 20,000 | 400.0 | 141.4 | 2 |"
    assert rows[3] == "| walker_walk | 30,000 | – | – | 0 |"  # no point in (20k, 30k]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--tasks", "cheetah_run"],
            "--tasks: 'cheetah_run' is not in the file (it has walker_walk)",
        ),
        (["--window", "0"], "--window: must be > 0"),
    ],
)
def test_bad_input_is_one_error_line(monkeypatch, tmp_path, capsys, argv, message):
    file = _score_file(tmp_path / "scores.json.gz")
    with pytest.raises(SystemExit) as exit_:
        _run(monkeypatch, file, *argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1


def test_a_file_that_is_not_a_score_file_is_named(monkeypatch, tmp_path, capsys):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(SystemExit) as exit_:
        _run(monkeypatch, bad)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: cannot read a gzipped score file")


SCORES = SCRIPT.with_name("dmc_scores.py")


def test_a_runs_training_returns_are_binned_on_dreamerv3s_axis(monkeypatch, tmp_path, capsys):
    """Agent steps x the recipe's action repeat: episodes ending at 2,500, 5,000 and 5,500
    agent steps fall in DreamerV3's bins 10,000 (5k, 10k] and 20,000 (10k, 20k]."""
    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    (run / "recipe.yaml").write_text("env: {id: dmc/walker-walk, action_repeat: 2}\n")
    rows = [(2_500, 10.0), (5_000, 30.0), (5_500, 70.0)]
    (run / "metrics" / "train_online.jsonl").write_text(
        "".join(json.dumps({"env_steps": s, "episode_return": r}) + "\n" for s, r in rows)
    )
    file = _score_file(tmp_path / "scores.json.gz")
    monkeypatch.setattr(sys, "argv", [str(SCORES), str(run), "--reference", str(file)])
    runpy.run_path(str(SCORES), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[3:] == ["| 10,000 | 20.0 | 2 | 150.0 |", "| 20,000 | 70.0 | 1 | 400.0 |"]
