"""The online pipeline (the Dreamer line): state vectors and discrete actions end to end, the
world model frozen while the actor learns, learning in imagination, and exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file
from torch import nn

from wmkit.core.errors import WmkitError
from wmkit.core.plugins import get_registry
from wmkit.core.protocols import Prediction
from wmkit.core.recipe import EnvConfig, RecipeError, resolve_recipe
from wmkit.rollouts.envs import env_spec, make_env
from wmkit.rollouts.episode import run_episode
from wmkit.rollouts.policies import UniformPolicy
from wmkit.storage.replay import Replay

REG = get_registry()

TINY_ONLINE = {
    "name": "tiny_online",
    "seed": 1,
    "device": "cpu",
    "workers": 0,
    "pipeline": {"name": "online", "env_steps": 150, "train_ratio": 2},
    "env": {"id": "CartPole-v1"},
    "collect": {"episodes": 3, "policy": "uniform"},
    "world_model": {
        "name": "rssm",
        "deter": 16,
        "stoch": 4,
        "classes": 4,
        "units": 16,
        "layers": 1,
        "batch_size": 4,
        "seq_len": 8,
    },
    "controller": {"name": "actor", "distribution": "categorical", "units": 16, "layers": 1},
    "optimizer": {"name": "actor_critic", "horizon": 4, "units": 16, "layers": 1, "bins": 15},
    "eval": {"episodes": 2, "max_steps": 50},
}


def test_state_vectors_and_discrete_actions_reach_the_agent_as_vectors():
    env = make_env(EnvConfig(id="CartPole-v1"))
    spec = env_spec(env)
    assert spec.obs_shape == (4,) and spec.vector_obs and spec.discrete
    np.testing.assert_array_equal(spec.action_low, [0, 0])
    np.testing.assert_array_equal(spec.action_high, [1, 1])
    policy = UniformPolicy(spec.action_low, spec.action_high, 0)
    episode = run_episode(env, policy, seed=0, record_last=True)
    arrays = episode.arrays()
    assert arrays["frames"].shape == (episode.steps, 4) and arrays["frames"].dtype == np.float32
    assert arrays["last_frame"].shape == (1, 4)
    # Each stored action is the one-hot vector of the action taken.
    assert set(map(tuple, arrays["action"].tolist())) <= {(1.0, 0.0), (0.0, 1.0)}
    assert arrays["done"][-1] or episode.steps == 500


def test_replay_samples_sequences_that_start_afresh_and_cross_episodes():
    def shard(n: int, value: float) -> dict:
        return {
            "frames": np.full((n, 2), value, np.float32),
            "last_frame": np.full((1, 2), value, np.float32),
            "action": np.eye(2, dtype=np.float32)[np.arange(n) % 2],
            "reward": np.ones(n, np.float32),
            "done": np.eye(1, n, n - 1, dtype=bool)[0],
        }

    replay = Replay(capacity=100)
    replay.add(shard(3, 1.0))
    replay.add(shard(4, 2.0))
    batch = replay.sample(np.random.default_rng(0), 8, 10, torch.device("cpu"))
    assert batch.obs.shape == (8, 10, 2) and batch.prev_action.shape == (8, 10, 2)
    assert bool((batch.first[:, 0] == 1).all())
    # Where an episode starts inside a sequence, the step is marked first and has no action.
    starts = batch.first[:, 1:] == 1
    assert bool(starts.any()) and bool((batch.prev_action[:, 1:][starts] == 0).all())
    # A terminal observation has cont 0; the step after it starts an episode.
    ends = batch.cont[:, :-1] == 0
    assert bool((batch.first[:, 1:][ends] == 1).all())
    replay.add(shard(99, 3.0))
    assert replay.steps <= 100 and len(replay.episodes) == 1  # the oldest left first


def _tiny_parts():
    wm_cls, actor_cls, ac_cls = (
        REG.get("world_model", "rssm"),
        REG.get("controller", "actor"),
        REG.get("optimizer", "actor_critic"),
    )
    world_model = wm_cls(wm_cls.Options(deter=8, stoch=2, classes=3, units=8, layers=1), (4,), 2)
    actor = actor_cls(
        actor_cls.Options(distribution="categorical", units=8, layers=1),
        world_model.feature_dim,
        np.zeros(2, np.float32),
        np.ones(2, np.float32),
    )
    optimizer = ac_cls(ac_cls.Options(horizon=3, units=8, layers=1, bins=7), actor, 14, 0)
    return world_model, actor, optimizer


def test_the_actor_update_leaves_the_world_model_untouched():
    torch.manual_seed(0)
    world_model, actor, optimizer = _tiny_parts()
    world_model.eval()
    before = {k: v.clone() for k, v in world_model.state_dict().items()}
    actor_before = actor.get_params()
    start = {k: v.repeat(6, 1) for k, v in world_model.initial_state(1).items()}
    for _ in range(3):
        optimizer.update(world_model, start)
    for key, value in world_model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in world_model.parameters())
    assert not np.allclose(actor.get_params(), actor_before)


class ScriptedDream(nn.Module):
    """A dream with no learning in it: the state is fixed, and the reward of a step is 1 for
    action 0 and 0 for action 1. An actor-critic must learn to take action 0."""

    feature_dim = 3

    def features(self, state):
        return state["x"]

    def imagine(self, state, action):
        return {"x": state["x"], "reward": action[:, 0]}

    def predict(self, state):
        reward = state.get("reward", torch.zeros(len(state["x"])))
        return Prediction(reward=reward, done=torch.zeros(len(state["x"])))


def test_the_actor_critic_learns_a_tiny_task_in_imagination():
    torch.manual_seed(0)
    actor_cls, ac_cls = REG.get("controller", "actor"), REG.get("optimizer", "actor_critic")
    low, high = np.zeros(2, np.float32), np.ones(2, np.float32)
    actor = actor_cls(
        actor_cls.Options(distribution="categorical", units=16, layers=1), 3, low, high
    )
    options = ac_cls.Options(
        horizon=5, units=16, layers=1, bins=31, learning_rate=3e-3, critic_learning_rate=3e-3
    )
    optimizer = ac_cls(options, actor, 3, 0)
    start = {"x": torch.ones(32, 3)}
    dream = ScriptedDream()

    def p_good() -> float:
        with torch.no_grad():
            return float(actor.distribution(start["x"][:1]).probs[0, 0])

    assert 0.3 < p_good() < 0.7
    for _ in range(60):
        losses = optimizer.update(dream, start)
    assert p_good() > 0.9, p_good()
    assert losses["imagined_return"] > 2.0  # near the best, 1 + 0.997 + ... over 5 steps


def test_a_pipeline_rejects_blocks_of_roles_it_does_not_use():
    with pytest.raises(RecipeError, match="world_model: not used by pipeline 'ha'"):
        resolve_recipe({"world_model": {"name": "rssm"}}, REG)
    with pytest.raises(RecipeError, match="vision: not used by pipeline 'online'"):
        resolve_recipe({**TINY_ONLINE, "vision": "conv_vae"}, REG)
    recipe = resolve_recipe(dict(TINY_ONLINE), REG)
    assert set(recipe.blocks()) == {
        "pipeline",
        "world_model",
        "controller",
        "optimizer",
        "executor",
    }
    assert recipe.vision is None and "vision" not in recipe.to_dict()


def test_preflight_names_a_categorical_actor_on_continuous_actions(tmp_path):
    from wmkit.pipelines.runner import make_context, preflight
    from wmkit.storage.rundir import RunDir

    data = {**TINY_ONLINE, "env": {"id": "Pendulum-v1"}}
    recipe = resolve_recipe(data, REG)
    with pytest.raises(WmkitError, match="categorical needs a Discrete action space"):
        preflight(make_context(recipe, REG, RunDir(tmp_path / "run")))


def test_online_run_killed_mid_training_resumes_bit_identical(tmp_path):
    recipe = tmp_path / "tiny_online.yaml"
    recipe.write_text(yaml.safe_dump(TINY_ONLINE))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "wmkit", "run", str(recipe), "--out"]
    reference = tmp_path / "reference"
    done = subprocess.run([*base, str(reference)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("eval mean ")

    out = tmp_path / "killed"
    metrics = out / "metrics" / "train_online.jsonl"
    proc = subprocess.Popen(
        [*base, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 120
    # Killed after a few episodes of training, so that the rerun resumes from a checkpoint.
    while proc.poll() is None and time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    final = subprocess.run([*base, str(out)], capture_output=True, text=True, env=env)
    assert final.returncode == 0, final.stderr[-2000:]

    for name in ("world_model", "controller"):
        want = load_file(reference / "checkpoints" / f"{name}.safetensors")
        got = load_file(out / "checkpoints" / f"{name}.safetensors")
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name}.{key}")
    ref_eval = json.loads((reference / "eval.json").read_text())
    assert json.loads((out / "eval.json").read_text())["returns"] == ref_eval["returns"]
    rows = [json.loads(r) for r in metrics.read_text().splitlines()]
    ref_rows = [
        json.loads(r)
        for r in (reference / "metrics" / "train_online.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [r["step"] for r in ref_rows]  # nothing logged twice
    assert [r["episode_return"] for r in rows] == [r["episode_return"] for r in ref_rows]


def test_the_paper_pipeline_runs_on_discrete_actions(fast_recipe, tmp_path):
    """V, M and C of the paper on Discrete(4) actions: C scores the four actions, the
    highest is taken, and M learns from the one-hot vector of the action taken."""
    from wmkit.pipelines.runner import run_pipeline
    from wmkit.storage.store import RolloutStore

    data = yaml.safe_load(fast_recipe.read_text())
    data["env"]["kwargs"] = {"discrete": True}
    registry = get_registry(tuple(data["plugins"]))
    out = tmp_path / "run"
    summaries = run_pipeline(resolve_recipe(data, registry), registry, out)
    assert summaries["evaluate"]["episodes"] == 2
    store = RolloutStore(out / "data" / "rollouts")
    actions = np.concatenate([store.load(i.episode)["action"] for i in store.infos()])
    assert actions.shape[1] == 4 and set(actions.sum(1).tolist()) == {1.0}


def test_wmkit_eval_plays_the_online_pipelines_actor(tmp_path):
    """The same harness: ``wmkit eval`` on an online run scores its world model and actor."""
    from typer.testing import CliRunner

    from wmkit.cli import app
    from wmkit.pipelines.runner import run_pipeline

    data = {**TINY_ONLINE, "pipeline": {"name": "online", "env_steps": 60, "train_ratio": 1}}
    out = tmp_path / "run"
    run_pipeline(resolve_recipe(data, REG), REG, out)
    stored = json.loads((out / "eval.json").read_text())
    # The score file that compare and report read, with the online agent's roles.
    score_file = json.loads((out / "scores.json").read_text())
    assert [e["return"] for e in score_file["evaluations"]["evaluate"]["episodes"]] == [
        pytest.approx(r, abs=1e-3) for r in stored["returns"]
    ]
    assert score_file["run"]["components"] == {
        "pipeline": "online",
        "world_model": "rssm",
        "controller": "actor",
        "optimizer": "actor_critic",
    }
    result = CliRunner().invoke(app, ["eval", "--checkpoint", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["returns"] == stored["returns"]
    # --in-progress scores the resume checkpoint, saved after the last episode: the same
    # weights as the final ones, so the same returns; scores.json stays the run's own.
    scores_before = (out / "scores.json").read_bytes()
    partial = CliRunner().invoke(app, ["eval", "--checkpoint", str(out), "--in-progress", "--json"])
    assert partial.exit_code == 0, partial.output
    record = json.loads(partial.output.strip().splitlines()[-1])
    updates = json.loads((out / "stages.json").read_text())["train_online"]["updates"]
    assert record["returns"] == stored["returns"]
    assert record["in_progress"]["updates"] == updates > 0
    saved = out / "evals" / f"controller_seed{stored['seeds'][0]}_n2_update{updates}.json"
    assert json.loads(saved.read_text())["in_progress"] == record["in_progress"]
    assert (out / "scores.json").read_bytes() == scores_before
    # wmkit gap: the same policies in the world model's dream and in the game.
    gap = CliRunner().invoke(app, ["gap", "--checkpoint", str(out), "--episodes", "2"])
    assert gap.exit_code == 0, gap.output
    table = json.loads((out / "evals" / "gap_n2.json").read_text())
    assert [p["policy"] for p in table["policies"]] == ["uniform", "brownian", "held", "controller"]
    assert all(p["dream_steps"] >= 1 and p["real_steps"] >= 8 for p in table["policies"])
    refused = CliRunner().invoke(app, ["dream", "--checkpoint", str(out)])
    assert refused.exit_code == 2 and "no frames to film" in refused.output

    # stages.json records which checkpoints each stage wrote, so verify remakes a damaged
    # one by redoing the stage that wrote it, in any pipeline.
    from wmkit.pipelines.verify import find_damage
    from wmkit.storage.rundir import RunDir

    record = json.loads((out / "stages.json").read_text())["train_online"]
    assert record["checkpoints"] == ["controller", "online_resume", "world_model"]
    weights = out / "checkpoints" / "world_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"damaged!")
    assert [(d.path, d.stage) for d in find_damage(RunDir(out))] == [(str(weights), "train_online")]
    weights.unlink()
    assert [d.reason for d in find_damage(RunDir(out))] == ["missing although train_online is done"]
    # ... and which episodes: one the actor played is charged to train_online, not to a
    # collect round of the paper's pipeline.
    collected = json.loads((out / "stages.json").read_text())["collect"]["wrote"]["rollouts"]
    played = record["wrote"]["rollouts"]
    assert collected[0][0] == 0 and played[0][0] == collected[-1][1]
    shard = out / "data" / "rollouts" / f"episode_{played[0][0]:06d}.npz"
    shard.write_bytes(b"truncated")
    damage = [(d.path, d.stage) for d in find_damage(RunDir(out)) if d.path.endswith(".npz")]
    assert damage == [(str(shard), "train_online")]

    # No resume checkpoint, or one that does not fit the recipe: one line each, exit 2.
    resume = out / "checkpoints" / "online_resume.safetensors"
    small = {**data, "world_model": {**data["world_model"], "deter": 8}}
    small_run = tmp_path / "small"
    small_run.mkdir()
    (small_run / "recipe.yaml").write_text(yaml.safe_dump(small))
    (small_run / "checkpoints").mkdir()
    for expected in ("no in-progress checkpoint yet", "does not fit this run's recipe"):
        refused = CliRunner().invoke(app, ["eval", "--checkpoint", str(small_run), "--in-progress"])
        assert refused.exit_code == 2, refused.output
        lines = refused.output.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], refused.output
        (small_run / "checkpoints" / resume.name).write_bytes(resume.read_bytes())

    # Online runs export to the zoo too: tests/storage/test_zoo_online.py.


def test_dream_video_of_a_world_model_next_to_reality(monkeypatch):
    """``wmkit dream --side-by-side`` for a world model: real | its reading | its dream."""
    from wmkit.dreams.film import compose
    from wmkit.dreams.imagination import imagine_video

    monkeypatch.chdir(Path(__file__).parents[2])
    registry = get_registry(("tests.fixtures.blob_plugin",))
    env = make_env(EnvConfig(id="wmkit-test/Blob-v0"), registry)
    spec = env_spec(env)
    torch.manual_seed(0)
    options = {"deter": 8, "stoch": 2, "classes": 2, "units": 8, "layers": 1, "cnn_depth": 2}
    world_model = registry.get("world_model", "rssm")(
        registry.get("world_model", "rssm").Options(**options), spec.obs_shape, spec.action_dim
    ).eval()
    actor_cls = registry.get("controller", "actor")
    actor = actor_cls(
        actor_cls.Options(units=8, layers=1),
        world_model.feature_dim,
        spec.action_low,
        spec.action_high,
    )
    random = UniformPolicy(spec.action_low, spec.action_high, 0)
    result = imagine_video(env, world_model, actor, spec.action_dim, 4, 0, True, random, 2.0, "cpu")
    assert len(result.real) == len(result.reconstructed) == len(result.imagined) == 4
    assert result.imagined[0].shape == (64, 64, 3) and result.imagined[0].dtype == np.uint8
    frames = compose(result)
    assert frames.shape[0] == 4 and frames.shape[2] == 3 * 64 * 3 + 2 * 4


def _rssm_twins(small: dict, **changed):
    """Two RSSMs on 4-number observations and 2 actions with the same weights, the second
    with ``changed`` options."""
    wm_cls = REG.get("world_model", "rssm")
    torch.manual_seed(0)
    plain = wm_cls(wm_cls.Options(**small), (4,), 2)
    variant = wm_cls(wm_cls.Options(**small, **changed), (4,), 2)
    variant.load_state_dict(plain.state_dict())
    return plain, variant


def _sequences(B: int, T: int) -> dict[str, torch.Tensor]:
    """Random real sequences for those RSSMs: every field of a batch but ``cont``."""
    return dict(
        obs=torch.randn(B, T, 4),
        prev_action=torch.rand(B, T, 2),
        reward=torch.randn(B, T),
        first=torch.zeros(B, T),
        mask=torch.ones(B, T),
    )


def test_rssm_end_weight_scales_the_continuation_loss_on_episode_ends_only():
    from wmkit.core.protocols import ObservationBatch

    small = dict(deter=8, stoch=2, classes=3, units=8, layers=1)
    plain, weighted = _rssm_twins(small, end_weight=10.0)
    B, T = 3, 5
    base = _sequences(B, T)
    for cont, factor in ((torch.zeros(B, T), 10.0), (torch.ones(B, T), 1.0)):
        losses = []
        for model in (plain, weighted):
            torch.manual_seed(1)  # the same latent samples for both
            losses.append(model.loss(ObservationBatch(cont=cont, **base))[0]["cont"])
        torch.testing.assert_close(losses[1], factor * losses[0])


def test_rssm_temperature_flattens_only_the_dreamed_prior():
    from wmkit.core.protocols import ObservationBatch

    small = dict(deter=8, stoch=4, classes=5, units=8, layers=1)
    cold, hot = _rssm_twins(small, temperature=3.0)
    with torch.no_grad():  # a peaked prior, so that the temperature has something to flatten
        cold.prior_net[-1].weight.mul_(20)
        hot.prior_net[-1].weight.mul_(20)
    # 512 dreams of one step from the same state and action: how spread are their latents?
    state = {"deter": torch.randn(1, 8).expand(512, 8), "stoch": torch.zeros(512, 20)}
    action = torch.rand(1, 2).expand(512, 2)

    def sampled_entropy(model) -> float:
        torch.manual_seed(2)
        with torch.no_grad():
            freq = model.imagine(state, action)["stoch"].reshape(512, 4, 5).mean(0)
        return float(-(freq * freq.clamp(min=1e-9).log()).sum())

    assert sampled_entropy(hot) > sampled_entropy(cold) + 0.5
    # Observing and training never see the temperature.
    batch = ObservationBatch(cont=torch.ones(3, 5), **_sequences(3, 5))
    losses = []
    for model in (cold, hot):
        torch.manual_seed(1)
        losses.append(model.loss(batch)[0]["loss"])
    torch.testing.assert_close(losses[0], losses[1])


def test_rssm_continuation_from_deter_foresees_rather_than_reads_the_end():
    wm_cls = REG.get("world_model", "rssm")
    small = dict(deter=8, stoch=2, classes=3, units=8, layers=1)
    torch.manual_seed(0)
    model = wm_cls(wm_cls.Options(**small, continuation_input="deter"), (4,), 2)
    deter = torch.randn(5, 8)
    one = {"deter": deter, "stoch": torch.zeros(5, 6)}
    other = {"deter": deter, "stoch": torch.ones(5, 6)}
    torch.testing.assert_close(model.predict(one).done, model.predict(other).done)
    # The default (DreamerV3's) head reads the latent too.
    torch.manual_seed(0)
    reads = wm_cls(wm_cls.Options(**small), (4,), 2)
    assert not torch.allclose(reads.predict(one).done, reads.predict(other).done)


def test_a_sampled_dream_end_comes_with_the_predicted_chance():
    from wmkit.dreams.imagination import dream_ended

    done = torch.tensor([0.0, 0.1, 0.6, 1.0]).repeat(20_000, 1)
    torch.manual_seed(0)
    rate = dream_ended(done, 0.5, sample_ends=True).float().mean(0)
    torch.testing.assert_close(rate, torch.tensor([0.0, 0.1, 0.6, 1.0]), atol=0.01, rtol=0)
    assert dream_ended(done, 0.5)[0].tolist() == [False, False, True, True]


def test_eval_in_progress_names_a_pipeline_without_an_in_progress_checkpoint(fast_recipe, tmp_path):
    from typer.testing import CliRunner

    from wmkit.cli import app

    run = tmp_path / "ha_run"
    run.mkdir()
    (run / "recipe.yaml").write_text(fast_recipe.read_text())
    refused = CliRunner().invoke(
        app, ["eval", "--checkpoint", str(run), "--in-progress", "--trust-plugins"]
    )
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip() == (
        "error: --in-progress: pipeline 'ha' keeps no in-progress checkpoint of its controller "
        "to score"
    )
    assert sorted(p.name for p in run.iterdir()) == ["recipe.yaml"]
