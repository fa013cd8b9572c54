"""End to end: the whole pipeline through the CLI on a tiny recipe, then resume and eval."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from wmkit.cli import app

runner = CliRunner()
STAGES = [
    "collect",
    "fit_vision",
    "encode",
    "fit_memory",
    "fit_controller",
    "evaluate",
    "temperature_sweep",
]


def test_tiny_recipe_end_to_end_then_resume_and_eval(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tiny_recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "eval mean" in result.stdout

    assert set(json.loads((out / "stages.json").read_text())) == set(STAGES)
    for name in ("vision", "memory", "controller", "optimizer_state"):
        assert (out / "checkpoints" / f"{name}.safetensors").stat().st_size > 0
        meta = json.loads((out / "checkpoints" / f"{name}.json").read_text())
        assert len(meta["sha256"]) == 64 and meta["versions"]["torch"]
        assert meta["versions"]["cpu"].endswith(f"({torch.backends.cpu.get_cpu_capability()})")
    meta = json.loads((out / "checkpoints" / "controller.json").read_text())
    assert meta["generation"] == 2 and meta["seed"] == 3 and len(meta["recipe_sha256"]) == 64
    for plot in ("vision_loss", "reconstructions", "memory_loss", "controller_fitness"):
        assert (out / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "metrics" / "fit_controller.jsonl").read_text().splitlines()) == 2
    assert any((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len(list((out / "data" / "rollouts").glob("episode_*.npz"))) == 3
    first = json.loads((out / "eval.json").read_text())
    assert first["episodes"] == 2 and len(first["returns"]) == 2
    assert first["min"] <= first["mean"] <= first["max"]

    # Rerunning the same command redoes nothing.
    again = runner.invoke(app, ["run", str(tiny_recipe), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count("already complete, skipped") == len(STAGES)
    assert json.loads((out / "eval.json").read_text()) == first

    # The same directory with another recipe is refused, and nothing in it is touched.
    other = runner.invoke(app, ["run", str(tiny_recipe), "--out", str(out), "--set", "seed=4"])
    assert other.exit_code == 2 and "holds a different recipe" in other.output
    assert json.loads((out / "eval.json").read_text()) == first

    # eval reproduces the stage's numbers on the same seeds (everything is seeded).
    ctrl = runner.invoke(app, ["eval", "--checkpoint", str(out), "--json"])
    assert ctrl.exit_code == 0, ctrl.output
    data = json.loads(ctrl.stdout)
    assert data["returns"] == first["returns"] and data["seeds"] == first["seeds"]

    rand = runner.invoke(
        app,
        [
            "eval",
            "--checkpoint",
            str(out),
            "--json",
            "--policy",
            "random",
            "--episodes",
            "3",
            "--seed",
            "7",
        ],
    )
    assert rand.exit_code == 0, rand.output
    data = json.loads(rand.stdout)
    assert data["policy"] == "random" and data["seeds"] == [7, 8, 9] and len(data["returns"]) == 3
    assert (out / "evals" / "random_seed7_n3.json").exists()

    video = runner.invoke(app, ["eval", "--checkpoint", str(out), "--episodes", "2", "--video"])
    assert video.exit_code == 0, video.output
    names = sorted(p.name.split("_seed")[0] for p in (out / "videos").iterdir())
    assert names == ["controller_best", "controller_worst"]


def test_eval_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["eval", "--checkpoint", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a wmkit run directory" in result.output and "Traceback" not in result.output


def test_a_run_made_before_an_option_existed_still_resumes(fast_recipe, tmp_path):
    import yaml

    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    stored = yaml.safe_load((out / "recipe.yaml").read_text())
    del stored["collect"]["hold_max"]  # as written before collect.hold_max was added
    del stored["optimizer"]["keep"]  # and before cmaes had `keep`
    (out / "recipe.yaml").write_text(yaml.safe_dump(stored))

    again = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count("already complete, skipped") == len(STAGES)
    stored["collect"]["hold_max"] = 3  # a real difference is still refused
    (out / "recipe.yaml").write_text(yaml.safe_dump(stored))
    other = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert other.exit_code == 2 and "holds a different recipe" in other.output
