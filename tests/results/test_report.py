"""``wmkit report``: one self-contained HTML page, checked in headless Chromium when present."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wmkit.cli import app

runner = CliRunner()
ROOT = Path(__file__).parents[2]


@pytest.fixture
def report_run(fast_group, tmp_path) -> Path:
    """seed_0 of the blob group with a gap table (whose policy name is hostile HTML) and an
    exploit-guard plot added."""
    run = tmp_path / "run"
    shutil.copytree(fast_group / "seed_0", run)
    gap = {
        "temperature": 1.0,
        "episodes": 2,
        "pairs_in_order": 1,
        "pairs": 1,
        "policies": [
            {
                "policy": "<script>alert(1)</script>",
                "dream_mean": 1.0,
                "dream_std": 0.0,
                "dream_steps": 5.0,
                "real_mean": 2.0,
                "real_std": 0.0,
                "real_steps": 5.0,
            }
        ],
    }
    (run / "evals").mkdir()
    (run / "evals" / "gap_tau1_n2.json").write_text(json.dumps(gap))
    shutil.copy(run / "plots" / "controller_fitness.png", run / "plots" / "dream_guard.png")
    return run


def test_report_is_one_self_contained_page(report_run, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(report_run), "--out", str(out), "--reps", "50"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for section in ("Stages", "Training curves", "Exploit guard", "Evaluations", "Recipe"):
        assert f"<h2>{section}</h2>" in page
    assert "Dream vs real (wmkit gap)" in page and "IQM" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len(sources) >= 6  # 3 curves, the guard, reconstructions, the histogram
    assert "collect" in page and "fit_controller" in page  # stage times


@pytest.mark.skipif(
    not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
    reason="no Chromium installed (Debian: apt-get install chromium)",
)
def test_report_renders_in_headless_chromium(report_run, tmp_path):
    from PIL import Image

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from report_screenshot import screenshot
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    page = tmp_path / "report.html"
    assert (
        runner.invoke(
            app, ["report", str(report_run), "--out", str(page), "--reps", "50"]
        ).exit_code
        == 0
    )
    shot = screenshot(page, tmp_path / "shot.png", 1000, 1400)
    image = Image.open(shot["screenshot"]).convert("L")
    assert image.size == (1000, 1400)
    low, high = image.getextrema()
    assert high - low > 100  # something was drawn: text and plots, not a blank page


def test_report_reads_nothing_outside_the_run(report_run, tmp_path):
    """A run from elsewhere whose files link out of it: what they point at is left out."""
    from wmkit.results.report import build_report

    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "eval.json").write_text(json.dumps({"mean": 4242.5, "std": 0.0, "episodes": 1}))
    shutil.copy(report_run / "plots" / "vision_loss.png", secret / "vision_loss.png")
    (report_run / "eval.json").unlink()
    (report_run / "eval.json").symlink_to(secret / "eval.json")
    shutil.rmtree(report_run / "plots")
    (report_run / "plots").symlink_to(secret, target_is_directory=True)
    page = build_report(report_run, reps=50)
    assert "4242.5" not in page and "not evaluated yet" in page
    assert "V: training loss per epoch" not in page
