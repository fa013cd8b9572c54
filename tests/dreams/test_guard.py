"""The online exploit guard: real checks of the dream's ranking while C evolves there."""

from __future__ import annotations

import json

import numpy as np
import yaml
from typer.testing import CliRunner

from wmkit.cli import app
from wmkit.dreams.guard import ExploitGuard, GuardCheck, pairs_agreement, pick_candidates
from wmkit.storage import checkpoint

runner = CliRunner()


def guarded(fast_recipe, **guard):
    data = yaml.safe_load(fast_recipe.read_text())
    data["optimizer"].update(train_in="dream", max_steps=None, generations=4)
    data["dream"] = {"max_steps": 12, "score_episodes": 4, "guard": guard}
    fast_recipe.write_text(yaml.safe_dump(data))
    return fast_recipe


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_candidates_are_spread_over_the_dream_ranking_best_first():
    fitness = np.array([3.0, 9.0, 1.0, 7.0, 5.0])
    assert pick_candidates(fitness, 3) == [1, 4, 2]
    assert pick_candidates(fitness, 9) == [1, 3, 4, 0, 2]


def test_pairs_agreement_counts_pairs_ordered_alike():
    dream = np.array([3.0, 2.0, 1.0])
    assert pairs_agreement(dream, np.array([30.0, 20.0, 10.0])) == 1.0
    assert pairs_agreement(dream, np.array([10.0, 20.0, 30.0])) == 0.0
    assert pairs_agreement(dream, np.array([30.0, 10.0, 20.0])) == 2 / 3


def test_guard_logs_real_checks_and_plots_them(fast_recipe, tmp_path):
    recipe = guarded(fast_recipe, every=2, candidates=3, episodes=2)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    checks = rows(out / "metrics" / "fit_controller_guard.jsonl")
    assert [c["step"] for c in checks] == [1, 3]
    for c in checks:
        assert 0.0 <= c["agreement"] <= 1.0 and -1.0 <= c["correlation"] <= 1.0
        assert c["env_steps"] > 0  # 3 candidates x 2 real episodes, capped at the dream's 12
        assert c["env_steps"] <= 3 * 2 * 12
    # The guard's real steps are measurement: the fitness rows still count none.
    assert all(r["env_steps"] == 0 for r in rows(out / "metrics" / "fit_controller.jsonl"))
    summary = json.loads((out / "stages.json").read_text())["fit_controller"]
    assert summary["guard_checks"] == 2 and not summary["guard_stopped"]
    assert summary["guard_env_steps"] == sum(c["env_steps"] for c in checks)
    assert (out / "plots" / "controller_guard.png").read_bytes()[:4] == b"\x89PNG"


def scripted_checks(monkeypatch, agreements: list[float]):
    """Replace the real games of the guard by checks with the given agreements, in turn."""
    calls = []

    def check(self, solutions, fitness, gen):
        calls.append(gen)
        a = agreements[len(calls) - 1]
        return GuardCheck(a, a, float(np.max(fitness)), 0.0, 0.0, 1)

    monkeypatch.setattr(ExploitGuard, "check", check)
    return calls


def test_guard_stops_and_keeps_the_last_passing_controller(fast_recipe, tmp_path, monkeypatch):
    recipe = guarded(fast_recipe, every=1, stop_below=0.5, patience=2)
    calls = scripted_checks(monkeypatch, [1.0, 0.0, 0.0, 1.0])
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [0, 1, 2]  # stopped after two failing checks in a row, of 4 generations
    summary = json.loads((out / "stages.json").read_text())["fit_controller"]
    assert summary["guard_stopped"] and summary["generations"] == 3
    kept, _ = checkpoint.load_tensors(out / "checkpoints" / "controller")
    passing, meta = checkpoint.load_tensors(out / "checkpoints" / "guard_controller")
    assert meta["generation"] == 1
    np.testing.assert_array_equal(kept["params"], passing["params"])


def test_a_resumed_search_remembers_failed_checks(fast_recipe, tmp_path, monkeypatch):
    recipe = guarded(fast_recipe, every=1, stop_below=0.5, patience=2)
    out = tmp_path / "run"

    # First attempt: one failing check, then the process dies during generation 1's check.
    def die(*args):
        raise KeyboardInterrupt

    agreements = iter([0.0])
    monkeypatch.setattr(
        ExploitGuard,
        "check",
        lambda self, s, f, gen: GuardCheck(next(agreements), 0, 0, 0, 0, 1) if gen == 0 else die(),
    )
    assert runner.invoke(app, ["run", str(recipe), "--out", str(out)]).exit_code == 130
    assert len(rows(out / "metrics" / "fit_controller_guard.jsonl")) == 1
    # Second attempt: generation 1's check fails too; that is the second in a row.
    calls = scripted_checks(monkeypatch, [0.0, 1.0])
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [1]
    summary = json.loads((out / "stages.json").read_text())["fit_controller"]
    assert summary["guard_stopped"] and summary["generations"] == 2
