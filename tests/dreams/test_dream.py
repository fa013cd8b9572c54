"""Dreams: batched rollouts in M, training C there without touching the environment."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner
from wmkit_linear import LinearController, LinearControllerOptions

from wmkit.cli import app
from wmkit.core.protocols import Prediction
from wmkit.dreams.rollout import batched_act, dream_rollout
from wmkit.rollouts.envs import FrameWrapper

LOW = np.array([-1.0, 0.0, 0.0], np.float32)
HIGH = np.ones(3, np.float32)


class CountingMemory:
    """A fake M: z counts up by one each step, reward = first action, done once z >= limit."""

    feature_dim = 1

    def __init__(self, limit: torch.Tensor):
        self.limit = limit

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 1)

    def features(self, state):
        return state

    def step(self, z, action, state):
        nxt = z + 1
        pred = Prediction(
            reward=action[:, 0], done=(nxt[:, 0] >= self.limit).float(), params={"next": nxt}
        )
        return pred, state + 1

    def sample(self, prediction, temperature=1.0, generator=None):
        return prediction.params["next"]


def test_dream_rollout_counts_rewards_until_each_episode_ends():
    controller = LinearController(LinearControllerOptions(), 2, LOW, HIGH)
    # Steering = tanh(bias) for every agent: rewards are that constant per step.
    params = torch.zeros(3, controller.num_params)
    params[:, 6] = torch.tensor([0.5, -0.2, 1.0])  # bias of the steering output
    memory = CountingMemory(limit=torch.tensor([3.0, 5.0, 100.0]))
    result = dream_rollout(memory, controller, torch.zeros(3, 1), params, max_steps=10)
    steer = torch.tanh(params[:, 6])
    assert result.steps.tolist() == [3, 5, 10]
    torch.testing.assert_close(result.returns, steer * torch.tensor([3.0, 5.0, 10.0]))


def test_batched_act_equals_setting_each_candidate_in_turn():
    controller = LinearController(
        LinearControllerOptions(squash=["clip", "affine", "clip"]), 7, LOW, HIGH
    )
    rng = np.random.default_rng(0)
    params = rng.standard_normal((5, controller.num_params))
    feats = torch.randn(5, 7)
    fast = batched_act(controller, torch.as_tensor(params, dtype=torch.float32), feats)
    for i in range(5):
        controller.set_params(params[i])
        torch.testing.assert_close(fast[i], controller.act(feats[i : i + 1])[0])


@pytest.fixture
def dream_recipe(fast_recipe):
    data = yaml.safe_load(fast_recipe.read_text())
    data["optimizer"].update(train_in="dream", max_steps=None)
    data["dream"] = {"max_steps": 12, "score_episodes": 4, "temperature": 1.15}
    fast_recipe.write_text(yaml.safe_dump(data))
    return fast_recipe


def guard_env_during(monkeypatch, *stage_names: str) -> dict:
    """Make any environment creation or step fail while any of ``stage_names`` runs."""
    import wmkit.pipelines.runner as pipeline

    flag = {"inside": False, "stepped": 0}
    real_step, real_make = FrameWrapper.step, gymnasium.make

    def step(self, action):
        if flag["inside"]:
            raise AssertionError(f"real environment stepped during {flag['inside']}")
        flag["stepped"] += 1
        return real_step(self, action)

    def make(*args, **kwargs):
        if flag["inside"]:
            raise AssertionError(f"real environment created during {flag['inside']}")
        return real_make(*args, **kwargs)

    def wrap(name, fn):
        def guarded(ctx):
            flag["inside"] = name
            try:
                return fn(ctx)
            finally:
                flag["inside"] = False

        return guarded

    stages_for = pipeline.stages_for

    monkeypatch.setattr(FrameWrapper, "step", step)
    monkeypatch.setattr(gymnasium, "make", make)
    monkeypatch.setattr(
        pipeline,
        "stages_for",
        lambda recipe: [(n, wrap(n, f) if n in stage_names else f) for n, f in stages_for(recipe)],
    )
    return flag


def test_dream_training_takes_no_real_step_and_reports_both_scores(
    dream_recipe, tmp_path, monkeypatch
):
    flag = guard_env_during(monkeypatch, "fit_controller")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(dream_recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert flag["stepped"] > 0  # the guard was live: other stages did step the env
    data = json.loads((out / "eval.json").read_text())
    assert data["train_in"] == "dream" and data["dream"]["temperature"] == 1.15
    assert data["dream"]["episodes"] == 4 and len(data["returns"]) == 2
    rows = [
        json.loads(r) for r in (out / "metrics" / "fit_controller.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 2
    assert all(r["env_steps"] == 0 and r["dream_steps"] > 0 for r in rows)


def test_the_guard_catches_real_training(fast_recipe, tmp_path, monkeypatch):
    guard_env_during(monkeypatch, "fit_controller")
    result = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "real environment" in str(result.exception)


def test_temperature_sweep_writes_a_table_and_dream_command_writes_video(dream_recipe, tmp_path):
    data = yaml.safe_load(dream_recipe.read_text())
    data["dream"]["sweep"] = [0.5, 1.3]
    dream_recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["run", str(dream_recipe), "--out", str(out)]).exit_code == 0
    table = (out / "temperature_sweep.md").read_text().splitlines()
    assert table[0].startswith("| temperature | dream score | real score")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["0.5", "1.3"]
    assert (out / "plots" / "temperature_sweep.png").exists()
    results = json.loads((out / "sweep" / "results.json").read_text())
    assert set(results) == {"0.5", "1.3"}

    # A finished run takes a longer sweep: only the new temperature is trained.
    stages = json.loads((out / "stages.json").read_text())
    data["dream"]["sweep"] = [0.5, 1.3, 2.0]
    dream_recipe.write_text(yaml.safe_dump(data))
    again = CliRunner().invoke(app, ["run", str(dream_recipe), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "fit_controller: already complete" in again.output
    longer = json.loads((out / "sweep" / "results.json").read_text())
    assert set(longer) == {"0.5", "1.3", "2"} and longer["0.5"] == results["0.5"]
    after = json.loads((out / "stages.json").read_text())
    assert after["fit_controller"] == stages["fit_controller"]
    assert after["temperature_sweep"]["swept"] == ["0.5", "1.3", "2"]
    assert {r["generations"] for r in longer.values()} == {2}  # optimizer.generations
    # A smaller sweep budget retrains each temperature with that many generations.
    data["dream"]["sweep_generations"] = 1
    dream_recipe.write_text(yaml.safe_dump(data))
    cheaper = CliRunner().invoke(app, ["run", str(dream_recipe), "--out", str(out)])
    assert cheaper.exit_code == 0, cheaper.output
    budgets = json.loads((out / "sweep" / "results.json").read_text())
    assert {r["generations"] for r in budgets.values()} == {1}
    rows = (out / "metrics" / "sweep_tau2.jsonl").read_text().splitlines()
    assert len(rows) == 1
    # Anything else that changes results still needs its own run directory.
    data["dream"]["temperature"] = 0.9
    dream_recipe.write_text(yaml.safe_dump(data))
    other = CliRunner().invoke(app, ["run", str(dream_recipe), "--out", str(out)])
    assert other.exit_code == 2 and "different recipe" in other.output

    video = tmp_path / "dream.gif"
    res = CliRunner().invoke(
        app,
        [
            "dream",
            "--checkpoint",
            str(out),
            "--trust-plugins",  # the blob environment's module, named in the run's recipe
            "--side-by-side",
            "--steps",
            "5",
            "--out",
            str(video),
        ],
    )
    assert res.exit_code == 0, res.output
    import imageio.v3 as iio

    frames = iio.imread(video)
    assert frames.shape[0] >= 1 and frames.shape[2] > 3 * 64 * 3  # three panels side by side
    assert (tmp_path / "dream_strip.png").exists()
    bad = CliRunner().invoke(
        app, ["dream", "--checkpoint", str(out), "--trust-plugins", "--out", "x.avi"]
    )
    assert bad.exit_code == 2 and "must end in .gif or .mp4" in bad.output


def test_the_sweep_plot_is_written_atomically(tmp_path, monkeypatch):
    import types

    import wmkit.record.plots
    from wmkit.pipelines.stages.sweep import write_table
    from wmkit.storage.rundir import RunDir

    written = []

    def recording(path, data):
        written.append(path)
        real(path, data)

    real = wmkit.record.plots.atomic_write_bytes
    monkeypatch.setattr(wmkit.record.plots, "atomic_write_bytes", recording)
    score = {"mean": 1.0, "std": 0.5, "episodes": 2}
    rows = [{"temperature": t, "dream": score, "real": score} for t in (0.5, 1.0)]
    write_table(types.SimpleNamespace(run=RunDir(tmp_path)), rows)
    assert written == [tmp_path / "plots" / "temperature_sweep.png"]
    assert (tmp_path / "plots" / "temperature_sweep.png").read_bytes()[:4] == b"\x89PNG"
