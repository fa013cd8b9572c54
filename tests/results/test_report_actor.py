"""``wmkit report`` shows an online run's actor diagnostics, so a stuck actor is seen."""

from __future__ import annotations

import json

from wmkit.results.report import build_report


def test_the_report_tables_the_actors_diagnostics(tmp_path):
    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    (run / "recipe.yaml").write_text("name: tiny\n")
    rows = [
        {
            "step": i,
            "env_steps": 250 * (i + 1),
            "episode_return": -80.0 + 10 * i,
            "entropy_share": 1.0 - 0.1 * i,
            "return_scale": 1.0,
            "advantage_abs": 0.5,
            "actor_grad_norm": 2.0,
            "action_std_0": 0.9,
            "action_std_1": 0.8,
        }
        for i in range(20)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 20, "cut'
    (run / "metrics" / "train_online.jsonl").write_text(text)
    page = build_report(run, reps=10)
    assert "<h2>Actor</h2>" in page
    for key in ("entropy_share", "action_std_1", "actor_grad_norm", "advantage_abs"):
        assert key in page
    assert "<td class=l>19</td>" in page  # the last episode is always shown
    assert ">-80<" in page and ">110<" in page  # the first and the last return


def test_a_run_without_actor_metrics_has_no_actor_section(tmp_path):
    (tmp_path / "recipe.yaml").write_text("name: tiny\n")
    assert "<h2>Actor</h2>" not in build_report(tmp_path, reps=10)
