"""Zoo entries of the online pipeline (the Dreamer line): the world model and the actor,
exported, verified, and scored from the entry with the run's own numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.pipelines.test_online import TINY_ONLINE as TINY_CARTPOLE
from wmkit.cli import app
from wmkit.core.plugins import get_registry
from wmkit.core.recipe import resolve_recipe
from wmkit.storage import checkpoint
from wmkit.storage.zoo import SCHEMA_WEIGHTS, read_entry

runner = CliRunner()

# tests/pipelines/test_online.py's tiny CartPole run, shorter: 60 real steps, ratio 1.
TINY_ONLINE = {
    **TINY_CARTPOLE,
    "pipeline": {"name": "online", "env_steps": 60, "train_ratio": 1},
}


@pytest.fixture(scope="module")
def online_run(tmp_path_factory) -> Path:
    """One tiny trained online run, shared: each test works on its own copy."""
    from wmkit.pipelines.runner import run_pipeline

    registry = get_registry()
    out = tmp_path_factory.mktemp("online") / "run"
    run_pipeline(resolve_recipe(dict(TINY_ONLINE), registry), registry, out)
    return out


@pytest.fixture
def run(online_run, tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(online_run, copy)
    monkeypatch.chdir(tmp_path)  # commands lay entries out under ./runs/zoo
    return copy


def _json_out(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one_error(result, *words: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert all(w in lines[0] for w in words), result.output


def test_an_online_run_exports_and_scores_from_its_entry_as_from_the_run(run, tmp_path):
    exported = runner.invoke(app, ["export", str(run), "zoo/cartpole"])
    assert exported.exit_code == 0, exported.output
    entry, data = read_entry(tmp_path / "zoo/cartpole")
    assert entry["schema"] == SCHEMA_WEIGHTS
    assert entry["weights"] == ["world_model", "controller"]
    assert set(entry["files"]) == {
        "recipe.yaml",
        "scores.json",
        "eval.json",
        "starts.safetensors",
        "checkpoints/world_model.safetensors",
        "checkpoints/controller.safetensors",
    }
    # No data, no optimizer state, no resume checkpoint.
    assert sorted(p.name for p in (tmp_path / "zoo/cartpole/checkpoints").iterdir()) == [
        "controller.safetensors",
        "world_model.safetensors",
    ]
    assert "world model and actor" in (tmp_path / "zoo/cartpole/README.md").read_text()

    # The same float32 weights, seeds and operations: the very same returns.
    from_run = _json_out(runner.invoke(app, ["eval", "--checkpoint", str(run), "--json"]))
    from_entry = _json_out(runner.invoke(app, ["eval", "--checkpoint", "zoo/cartpole", "--json"]))
    assert from_entry["returns"] == from_run["returns"]
    assert from_entry["seeds"] == from_run["seeds"]
    own = json.loads((run / "eval.json").read_text())
    assert from_entry["returns"] == own["returns"]
    assert not (tmp_path / "zoo/cartpole/evals").exists()  # outputs go to runs/zoo/

    # gap: dreams start from the first observations the entry ships, which are all the
    # run's episodes here, so the table is the run's own.
    args = ["--episodes", "2", "--policy", "uniform", "--policy", "controller"]
    for where in (str(run), "zoo/cartpole"):
        gap = runner.invoke(app, ["gap", "--checkpoint", where, *args])
        assert gap.exit_code == 0, gap.output
    (laid_out,) = (tmp_path / "runs/zoo").iterdir()
    tables = [json.loads((r / "evals/gap_n2.json").read_text()) for r in (run, laid_out)]
    assert tables[0]["policies"] == tables[1]["policies"]

    # dream films frames; CartPole is observed as state vectors: one line, as for the run.
    _one_error(runner.invoke(app, ["dream", "--checkpoint", "zoo/cartpole"]), "no frames to film")


def test_a_damaged_online_entry_or_copy_is_refused_or_remade(run, tmp_path):
    assert runner.invoke(app, ["export", str(run), "zoo/e"]).exit_code == 0
    first = _json_out(runner.invoke(app, ["eval", "--checkpoint", "zoo/e", "--json"]))

    # A stale copy under runs/zoo/ is verified before reuse: a changed file is remade.
    (laid_out,) = (tmp_path / "runs/zoo").iterdir()
    stale = laid_out / "checkpoints/world_model.safetensors"
    stale.write_bytes(stale.read_bytes()[:-8] + b"damaged!")
    again = _json_out(runner.invoke(app, ["eval", "--checkpoint", "zoo/e", "--json"]))
    assert again["returns"] == first["returns"]
    assert (
        stale.read_bytes() == (tmp_path / "zoo/e/checkpoints/world_model.safetensors").read_bytes()
    )

    # Tampering with the entry itself: one line, exit 2, nothing played.
    entry = tmp_path / "zoo/e"
    weights = entry / "checkpoints/controller.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    _one_error(
        runner.invoke(app, ["eval", "--checkpoint", "zoo/e"]), "controller.safetensors", "checksum"
    )
    weights.write_bytes(original)

    # The list of checkpoints names files: only plain names, each one listed.
    manifest = json.loads((entry / "entry.json").read_text())
    for bad, words in [
        (["../../outside"], ("'weights'",)),
        (["world_model", "controller", "vision"], ("does not list", "vision")),
    ]:
        (entry / "entry.json").write_text(json.dumps({**manifest, "weights": bad}))
        _one_error(runner.invoke(app, ["eval", "--checkpoint", "zoo/e"]), *words)
    (entry / "entry.json").write_text(json.dumps({**manifest, "schema": "wmkit-zoo/1"}))
    _one_error(runner.invoke(app, ["eval", "--checkpoint", "zoo/e"]), "'weights'")


def test_an_online_entry_exports_in_float16_and_keeps_the_actor_exact(run, tmp_path):
    half = runner.invoke(app, ["export", str(run), "zoo/half", "--dtype", "float16"])
    assert half.exit_code == 0, half.output
    wm, meta = checkpoint.load_tensors(tmp_path / "zoo/half/checkpoints/world_model")
    assert meta["dtype"] == "float16"
    assert {str(t.dtype) for t in wm.values() if t.is_floating_point()} == {"torch.float16"}
    actor, _ = checkpoint.load_tensors(tmp_path / "zoo/half/checkpoints/controller")
    exact, _ = checkpoint.load_tensors(run / "checkpoints/controller")
    assert all((actor[k] == exact[k]).all() for k in exact)
    # float16 weights load into the float32 world model and play.
    scored = _json_out(runner.invoke(app, ["eval", "--checkpoint", "zoo/half", "--json"]))
    assert scored["episodes"] == 2 and len(scored["returns"]) == 2
    # A float16 entry re-exports from the entry alone, with its start observations.
    again = runner.invoke(app, ["export", "zoo/half", "zoo/again", "--dtype", "float16"])
    assert again.exit_code == 0, again.output
    files = [
        json.loads((tmp_path / f"zoo/{n}/entry.json").read_text())["files"]
        for n in ("half", "again")
    ]
    assert files[0]["starts.safetensors"] == files[1]["starts.safetensors"]


def test_a_pipeline_that_names_no_agent_checkpoints_is_not_exported(run, tmp_path):
    """``Pipeline.zoo_weights`` empty (BasePipeline's default): one line, nothing written."""
    from wmkit.core.errors import WmkitError
    from wmkit.storage.zoo import export

    with pytest.raises(WmkitError, match="names no checkpoints as its agent"):
        export(run, tmp_path / "zoo/none", weights_of=lambda pipeline: ())
    assert not (tmp_path / "zoo/none").exists()
    with pytest.raises(WmkitError, match="'weights' must be"):
        export(run, tmp_path / "zoo/none", weights_of=lambda pipeline: ("../controller",))
    assert not (tmp_path / "zoo/none").exists()


def test_an_online_entry_of_frames_dreams_from_the_entry_alone(tmp_path, monkeypatch):
    """A world model of pixels: ``wmkit dream`` films its dream from the entry, with no data
    (the blob plugin as if installed: an entry's recipe imports no plugin modules)."""
    import wmkit.core.plugins
    from tests.fixtures import blob_plugin
    from wmkit.core.plugins import load_plugins
    from wmkit.pipelines.runner import run_pipeline

    plugins = load_plugins(extra=[blob_plugin])
    monkeypatch.setattr(wmkit.core.plugins, "_cached", lambda: plugins)
    monkeypatch.chdir(tmp_path)
    registry = get_registry()
    small = {"deter": 8, "stoch": 2, "classes": 2, "units": 8, "layers": 1, "cnn_depth": 2}
    recipe = {
        **TINY_ONLINE,
        "pipeline": {"name": "online", "env_steps": 50, "train_ratio": 1},
        "env": {"id": "wmkit-test/Blob-v0"},
        "collect": {"episodes": 1, "policy": "uniform"},
        "world_model": {**TINY_ONLINE["world_model"], **small},
        "controller": {"name": "actor", "distribution": "gaussian", "units": 8, "layers": 1},
        "eval": {"episodes": 1, "max_steps": 10},
    }
    run_pipeline(resolve_recipe(recipe, registry), registry, tmp_path / "run")
    assert runner.invoke(app, ["export", "run", "zoo/blob"]).exit_code == 0
    # Returns that are not whole numbers: the entry's agent plays the run's, to the digit.
    own = json.loads((tmp_path / "run/eval.json").read_text())["returns"]
    scored = _json_out(runner.invoke(app, ["eval", "--checkpoint", "zoo/blob", "--json"]))
    assert scored["returns"] == own and own[0] != round(own[0])
    dream = runner.invoke(app, ["dream", "--checkpoint", "zoo/blob", "--steps", "3"])
    assert dream.exit_code == 0, dream.output
    (laid_out,) = (tmp_path / "runs/zoo").iterdir()
    assert not (laid_out / "data").exists()  # nothing of the run's data was needed
    gap = runner.invoke(app, ["gap", "--checkpoint", "zoo/blob", "--episodes", "2"])
    assert gap.exit_code == 0, gap.output
