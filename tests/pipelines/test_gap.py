"""``wmkit gap``: fixed policies played in M's dream and in the real environment."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from tests.dreams.test_dream import CountingMemory
from tests.fixtures.blob_env import BlobEnv
from wmkit.cli import app
from wmkit.dreams.rollout import dream_rollout
from wmkit.pipelines.gap import GapRow, PolicyController, default_policies, pairs_in_order
from wmkit.rollouts.policies import fixed_policy

runner = CliRunner()
LOW, HIGH = -np.ones(2, np.float32), np.ones(2, np.float32)


def test_fixed_policies_act_in_the_dream_one_per_episode():
    policies = [fixed_policy("constant:0.5,0", LOW, HIGH, 0, 0.02)] + [
        fixed_policy("uniform", LOW, HIGH, seed, 0.02) for seed in (1, 2)
    ]
    memory = CountingMemory(limit=torch.tensor([4.0, 6.0, 6.0]))  # reward = first action
    result = dream_rollout(memory, PolicyController(policies), torch.zeros(3, 1), max_steps=10)
    assert result.steps.tolist() == [4, 6, 6]
    assert result.returns[0].item() == 2.0
    uniform = result.returns[1:]
    assert bool((uniform.abs() <= 6).all()) and uniform[0] != uniform[1]  # own seed each


def test_pairs_in_order_counts_agreeing_pairs():
    def row(name, dream, real):
        return GapRow(name, dream, 0.0, 0.0, real, 0.0, 0.0)

    rows = [row("a", 1, 10), row("b", 2, 20), row("c", 3, 5)]
    assert pairs_in_order(rows) == (1, 3)  # a<b agrees; a<c and b<c are reversed in reality
    assert default_policies(LOW, HIGH) == ["uniform", "brownian", "held"]
    assert default_policies(-np.ones(1), np.ones(1))[3:] == [
        "constant:-1",
        "constant:0",
        "constant:1",
    ]


def test_gap_plays_the_named_policies_on_the_real_seeds(fast_recipe, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    args = ["gap", "--checkpoint", str(out), "--trust-plugins", "--episodes", "3"]
    names = ["constant:1,1", "constant:-1,0.5", "uniform", "controller"]
    result = runner.invoke(app, [*args, *[f"--policy={n}" for n in names]])
    assert result.exit_code == 0, result.output
    assert "pairs the dream orders as reality does" in result.output
    saved = json.loads((out / "evals" / "gap_tau1_n3.json").read_text())
    rows = {r["policy"]: r for r in saved["policies"]}
    assert list(rows) == names and saved["pairs"] == 6

    for name, action in (("constant:1,1", [1, 1]), ("constant:-1,0.5", [-1, 0.5])):
        env, returns = BlobEnv(), []
        for seed in range(1_000_000, 1_000_003):  # eval.seed's default; max_steps 20
            env.reset(seed=seed)
            returns.append(sum(env.step(np.array(action))[1] for _ in range(20)))
        assert np.isclose(rows[name]["real_mean"], np.mean(returns))
        assert rows[name]["real_steps"] == 20
    assert rows["constant:1,1"]["dream_mean"] != rows["constant:-1,0.5"]["dream_mean"]


def test_gap_names_a_bad_policy_and_writes_nothing(fast_recipe, tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    for bad, says in (
        ("constant:5", "--policy constant:5: the action space has 2 dimensions"),
        ("constant:2,0", "--policy constant:2,0: outside the action space"),
        ("constant:a,b", "--policy constant:a,b: constant actions are numbers"),
        ("fly", "--policy fly: unknown policy"),
    ):
        args = ["gap", "--checkpoint", str(out), "--trust-plugins", "--policy", bad]
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output
    assert not list((out / "evals").glob("gap_*"))


def test_the_held_policy_keeps_each_uniform_action_for_one_to_hold_max_steps():
    policy = fixed_policy("held", LOW, HIGH, seed=0, hold_max=4)
    policy.reset()
    actions = np.array([policy.act(None) for _ in range(400)])
    assert (actions >= LOW).all() and (actions <= HIGH).all()
    changes = np.flatnonzero(np.any(actions[1:] != actions[:-1], axis=1)) + 1
    holds = np.diff(np.concatenate([[0], changes]))
    assert set(holds.tolist()) == {1, 2, 3, 4}  # every hold length occurs, none longer
