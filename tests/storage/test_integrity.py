"""Integrity: damaged shards and checkpoints are found, named, and redone alone; a diverging
loss stops the run and keeps the last good checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
from safetensors.numpy import load_file
from typer.testing import CliRunner
from wmkit_vae import ConvVAE

from wmkit.cli import app

runner = CliRunner()


def test_damage_is_reported_repaired_and_redone_exactly(fast_recipe, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    params = load_file(out / "checkpoints" / "controller.safetensors")["params"]
    returns = json.loads((out / "eval.json").read_text())["returns"]
    shards = sorted((out / "data" / "rollouts").glob("episode_*.npz"))
    untouched = {p: p.stat().st_mtime_ns for p in shards[1:]}

    shards[0].write_bytes(shards[0].read_bytes()[:100])  # truncated
    ctrl = out / "checkpoints" / "controller.safetensors"
    ctrl.write_bytes(ctrl.read_bytes()[:-8] + b"garbage!")  # corrupted

    broken = runner.invoke(app, ["eval", "--checkpoint", str(out), "--trust-plugins"])
    assert broken.exit_code == 2
    assert f"{ctrl}: checkpoint is corrupted" in broken.output

    check = runner.invoke(app, ["verify", "--checkpoint", str(out)])
    assert check.exit_code == 2
    assert f"damaged: {shards[0]}" in check.output and f"damaged: {ctrl}" in check.output
    assert "--repair" in check.output

    fixed = runner.invoke(app, ["verify", "--checkpoint", str(out), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    stages = json.loads((out / "stages.json").read_text())
    assert not {"collect", "encode", "fit_controller"} & set(stages)
    assert {"fit_vision", "fit_memory", "evaluate"} <= set(stages)

    again = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert all(p.stat().st_mtime_ns == t for p, t in untouched.items())  # not redone
    np.testing.assert_array_equal(load_file(ctrl)["params"], params)
    assert json.loads((out / "eval.json").read_text())["returns"] == returns
    assert runner.invoke(app, ["verify", "--checkpoint", str(out)]).exit_code == 0


def test_a_diverging_loss_stops_with_a_message_and_keeps_the_last_good_epoch(
    fast_recipe, tmp_path, monkeypatch
):
    import yaml

    data = yaml.safe_load(fast_recipe.read_text())
    data["vision"]["epochs"] = 3
    fast_recipe.write_text(yaml.safe_dump(data))
    real_fit = ConvVAE.fit_epoch
    calls = {"n": 0}

    def fit_then_diverge(self, batches):
        calls["n"] += 1
        losses = real_fit(self, batches)
        return {**losses, "loss": math.nan} if calls["n"] == 2 else losses

    monkeypatch.setattr(ConvVAE, "fit_epoch", fit_then_diverge)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert result.exit_code == 2
    assert "fit_vision: loss became nan at step 1" in result.output
    assert "Traceback" not in result.output
    meta = json.loads((out / "checkpoints" / "vision.json").read_text())
    assert meta["epoch"] == 1  # the epoch before the divergence
    assert "fit_vision" not in json.loads((out / "stages.json").read_text())
