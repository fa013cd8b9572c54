"""Iterative training (``iterate.rounds``): later rounds collect with the trained agent and
train M and C further, C still only in the dream."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import yaml
from typer.testing import CliRunner

from tests.cli.test_cli_run import STAGES
from tests.dreams.test_dream import guard_env_during
from wmkit.cli import app
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import load_recipe
from wmkit.pipelines.stages import fit_controller as fit_controller_module
from wmkit.pipelines.stages.collect import play_one
from wmkit.pipelines.stages.iterate import round_candidates
from wmkit.rollouts.components import read_agent_weights
from wmkit.rollouts.worker import init_worker
from wmkit.storage import checkpoint
from wmkit.storage.store import RolloutStore

ROUND_STAGES = ["collect_round2", "encode_round2", "fit_memory_round2", "fit_controller_round2"]


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_rounds_add_agent_episodes_and_train_m_and_c_further(
    fast_recipe, tmp_path, monkeypatch
):
    data = yaml.safe_load(fast_recipe.read_text())
    data["optimizer"].update(train_in="dream", max_steps=None)
    data["dream"] = {"max_steps": 12, "score_episodes": 4}
    data["iterate"] = {
        "rounds": 2,
        "episodes": 2,
        "candidates": 2,
        "memory_epochs": 2,
        "generations": 1,
        "rollouts_per_candidate": 3,
    }
    fast_recipe.write_text(yaml.safe_dump(data))
    flag = guard_env_during(monkeypatch, "fit_controller", "fit_controller_round2")
    # Dreams per generation: population 4 x 1 in round 1, x 3 in round 2.
    batches = []
    dream = fit_controller_module.dream_rollout

    def counted(memory, controller, z0, *args, **kwargs):
        batches.append(len(z0))
        return dream(memory, controller, z0, *args, **kwargs)

    monkeypatch.setattr(fit_controller_module, "dream_rollout", counted)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert flag["stepped"] > 0

    stages = json.loads((out / "stages.json").read_text())
    order = sorted(stages, key=lambda name: stages[name]["finished"])
    assert order == [*STAGES[:5], *ROUND_STAGES, *STAGES[5:]]
    # Round 2's episodes come after the 3 random ones, and are encoded for M.
    n = data["collect"]["episodes"]
    assert stages["collect_round2"]["episodes"] == 2
    infos = {i.episode: i for i in RolloutStore(out / "data" / "rollouts").infos()}
    assert sorted(infos) == [*range(n + 2)]
    # The round's first episode is the kept controller's; the second, a draw's.
    assert stages["collect_round2"]["kept_mean_return"] == infos[n].total_return
    assert len(RolloutStore(out / "data" / "latents")) == n + 2
    # M and C continue where round 1 left them: one metrics file, counts running on.
    assert [r["step"] for r in rows(out / "metrics" / "fit_memory.jsonl")] == [0, 1, 2]
    gens = rows(out / "metrics" / "fit_controller.jsonl")
    assert [r["step"] for r in gens] == [0, 1, 2]
    assert all(r["env_steps"] == 0 and r["dream_steps"] > 0 for r in gens)
    assert batches == [4, 4, 12]
    # keep: best (the default) keeps round 2's best, not a return from round 1's dream.
    assert gens[2]["kept"] == gens[2]["best"]
    meta = checkpoint.load_tensors(out / "checkpoints" / "controller")[1]
    assert meta["generation"] == 3

    again = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count("already complete, skipped") == len(order)

    # Damage is charged to the round that wrote it: an agent episode to collect_round2
    # (replayed by the agent in the checkpoints), M's weights to its last round.
    shard = out / "data" / "rollouts" / f"episode_{n + 1:06d}.npz"
    weights = out / "checkpoints" / "memory.safetensors"
    for damage, redone in [
        (lambda: shard.write_bytes(b"truncated"), {"collect_round2", "encode_round2"}),
        (
            lambda: weights.write_bytes(weights.read_bytes()[:-8] + b"garbage!"),
            {"fit_memory_round2"},
        ),
    ]:
        damage()
        fixed = CliRunner().invoke(app, ["verify", "--checkpoint", str(out), "--repair"])
        assert fixed.exit_code == 0, fixed.output
        assert set(order) - set(json.loads((out / "stages.json").read_text())) == redone
        redo = CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)])
        assert redo.exit_code == 0, redo.output
        assert CliRunner().invoke(app, ["verify", "--checkpoint", str(out)]).exit_code == 0


def test_a_round_episode_plays_the_controller_it_is_given(fast_recipe, tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    # A controller that ignores [z, h]: its action is tanh(bias) on the blob's [-1, 1] box.
    # (round_candidates' test checks that candidate 0 is the controller in the checkpoints.)
    tensors, _ = checkpoint.load_tensors(out / "checkpoints" / "controller")
    params = np.zeros_like(tensors["params"])
    params[-2:] = [0.5, -0.25]

    weights = read_agent_weights(out / "checkpoints", controller=False)
    init_worker(yaml.safe_load(fast_recipe.read_text()), weights)
    actions = play_one((7, 11, params))["action"]
    assert len(actions) > 1
    np.testing.assert_allclose(actions, np.tanh([[0.5, -0.25]] * len(actions)), atol=1e-6)


def test_round_candidates_are_the_kept_controller_then_draws_of_the_search(fast_recipe, tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["run", str(fast_recipe), "--out", str(out)]).exit_code == 0
    # 6 candidates from a population of 4: the draws take more than one generation's ask.
    ctx = SimpleNamespace(
        recipe=load_recipe(fast_recipe, ["iterate.candidates=6"]),
        registry=get_registry(),
        run=SimpleNamespace(checkpoints=out / "checkpoints"),
    )
    candidates = round_candidates(ctx)
    kept = checkpoint.load_tensors(out / "checkpoints" / "controller")[0]["params"]
    assert len(candidates) == 6
    np.testing.assert_allclose(candidates[0], kept, rtol=1e-6)
    assert len({c.tobytes() for c in candidates}) == 6
    # A pure function of the saved search: a resumed round plays the same controllers.
    for a, b in zip(candidates, round_candidates(ctx), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_real_scorer_plays_rollouts_per_candidate_on_shared_seeds(fast_recipe):
    # The train_in: real path of ``iterate.rollouts_per_candidate``: each candidate plays
    # ``rollouts`` real episodes on the generation's seeds, and its fitness is their mean.
    recipe = load_recipe(fast_recipe, ["optimizer.rollouts_per_candidate=2"])
    ctx = SimpleNamespace(recipe=recipe)

    class Executor:
        def map(self, fn, tasks):
            assert fn is fit_controller_module.fitness_rollout
            self.tasks = list(tasks)
            for i, (params, seed) in enumerate(self.tasks):
                yield i, (float(params[0]) + seed % 10, 5)

    solutions = [np.array([100.0]), np.array([200.0])]
    for rollouts, k in [(3, 3), (None, 2)]:
        executor = Executor()
        fitness, counts = fit_controller_module.real_scorer(ctx, executor, rollouts)(solutions, 4)
        seeds = [s for _, s in executor.tasks]
        assert len(seeds) == 2 * k and seeds[:k] == seeds[k:] and len(set(seeds)) == k
        mean_noise = np.mean([s % 10 for s in seeds[:k]])
        np.testing.assert_allclose(fitness, [100 + mean_noise, 200 + mean_noise])
        assert counts == {"env_steps": 5 * 2 * k, "dream_steps": 0}
