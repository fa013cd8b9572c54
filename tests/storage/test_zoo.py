"""``wmkit export`` and zoo entries: eval, dream and gap from an entry with no data, and an
entry treated as untrusted data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

import wmkit.core.plugins
from tests.fixtures import blob_plugin
from wmkit.cli import app
from wmkit.core.plugins import get_registry, load_plugins
from wmkit.core.recipe import load_recipe
from wmkit.pipelines.runner import make_context
from wmkit.rollouts.components import build_agent, read_agent_weights
from wmkit.storage import checkpoint
from wmkit.storage.rundir import RunDir
from wmkit.storage.zoo import open_entry, start_latents_of

runner = CliRunner()


@pytest.fixture
def installed_run(fast_group, tmp_path, monkeypatch):
    """seed_0 of the blob group, as if the blob plugin were an installed package (a zoo
    entry's recipe may not import plugin modules)."""
    plugins = load_plugins(extra=[blob_plugin])
    monkeypatch.setattr(wmkit.core.plugins, "_cached", lambda: plugins)
    run = tmp_path / "run"
    shutil.copytree(fast_group / "seed_0", run)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["plugins"] = []
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    monkeypatch.chdir(tmp_path)  # commands lay entries out under ./runs/zoo
    return run


def test_an_export_evaluates_dreams_and_gaps_with_no_data(installed_run, tmp_path):
    result = runner.invoke(app, ["export", str(installed_run), "zoo/tiny"])
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "zoo/tiny/entry.json").read_text())
    assert set(entry["files"]) == {
        "recipe.yaml",
        "scores.json",
        "eval.json",
        "starts.safetensors",
        "checkpoints/vision.safetensors",
        "checkpoints/memory.safetensors",
        "checkpoints/controller.safetensors",
    }
    assert not (tmp_path / "zoo/tiny/data").exists() and entry["eval"]["episodes"] == 2
    assert sum(f["bytes"] for f in entry["files"].values()) < 25 * 2**20

    # float32 weights: the very same numbers as the run's own evaluation.
    got = runner.invoke(app, ["eval", "--checkpoint", "zoo/tiny", "--json"])
    assert got.exit_code == 0, got.output
    own = json.loads((installed_run / "eval.json").read_text())
    assert json.loads(got.stdout)["returns"] == own["returns"]
    assert not (tmp_path / "zoo/tiny/evals").exists()  # outputs go to runs/zoo/, not the entry
    (laid_out,) = (tmp_path / "runs/zoo").iterdir()
    assert (laid_out / "evals/controller_seed1000000_n2.json").exists()

    # Dreams start where the run's did.
    shipped = start_latents_of(RunDir(laid_out))
    latents = np.load(sorted((installed_run / "data/latents").glob("episode_*.npz"))[0])
    assert np.array_equal(shipped[0][0], latents["mu"][0])
    gap = runner.invoke(
        app, ["gap", "--checkpoint", "zoo/tiny", "--episodes", "2", "--policy", "uniform"]
    )
    assert gap.exit_code == 0, gap.output
    dream = runner.invoke(app, ["dream", "--checkpoint", "zoo/tiny", "--steps", "3"])
    assert dream.exit_code == 0, dream.output

    half = runner.invoke(app, ["export", str(installed_run), "zoo/half", "--dtype", "float16"])
    assert half.exit_code == 0, half.output
    sizes = [
        (tmp_path / f"zoo/{n}/checkpoints/vision.safetensors").stat().st_size
        for n in ("tiny", "half")
    ]
    assert sizes[1] < 0.6 * sizes[0]
    got = runner.invoke(app, ["eval", "--checkpoint", "zoo/half", "--json"])
    assert got.exit_code == 0 and len(json.loads(got.stdout)["returns"]) == 2


def test_a_zoo_entry_is_untrusted_data(installed_run, tmp_path):
    assert runner.invoke(app, ["export", str(installed_run), "zoo/e"]).exit_code == 0
    entry = tmp_path / "zoo/e"

    def refused(says: str) -> None:
        shutil.rmtree(tmp_path / "runs", ignore_errors=True)
        result = runner.invoke(app, ["eval", "--checkpoint", str(entry), "--json"])
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output

    controller = entry / "checkpoints/controller.safetensors"
    original = controller.read_bytes()
    controller.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    refused("checkpoints/controller.safetensors: checksum mismatch")
    controller.write_bytes(original)

    elsewhere = tmp_path / "elsewhere.yaml"
    shutil.move(entry / "recipe.yaml", elsewhere)
    (entry / "recipe.yaml").symlink_to(elsewhere)
    refused("recipe.yaml: is a symbolic link")
    (entry / "recipe.yaml").unlink()
    shutil.move(elsewhere, entry / "recipe.yaml")

    manifest = json.loads((entry / "entry.json").read_text())
    manifest["files"]["../../outside"] = {"sha256": "0" * 64, "bytes": 1}
    (entry / "entry.json").write_text(json.dumps(manifest))
    refused("lists files a zoo entry does not hold")
    del manifest["files"]["../../outside"]

    recipe = yaml.safe_load((entry / "recipe.yaml").read_text())
    recipe["plugins"] = ["os"]
    text = yaml.safe_dump(recipe).encode()
    (entry / "recipe.yaml").write_bytes(text)
    import hashlib

    manifest["files"]["recipe.yaml"] = {
        "sha256": hashlib.sha256(text).hexdigest(),
        "bytes": len(text),
    }
    (entry / "entry.json").write_text(json.dumps(manifest))
    refused("a zoo entry is data and imports no code")
    with pytest.raises(Exception, match="imports no code"):
        open_entry(entry, tmp_path / "runs/zoo")


def test_an_entry_re_exports_in_float16_and_plays_in_float32(installed_run, tmp_path):
    """A committed entry can be halved without its run's data (issue 36: zoo budget)."""
    assert runner.invoke(app, ["export", str(installed_run), "zoo/full"]).exit_code == 0
    half = runner.invoke(app, ["export", "zoo/full", "zoo/half", "--dtype", "float16"])
    assert half.exit_code == 0, half.output
    full_manifest, half_manifest = (
        json.loads((tmp_path / f"zoo/{n}/entry.json").read_text()) for n in ("full", "half")
    )
    assert half_manifest["dtype"] == "float16"
    assert half_manifest["source_run"] == full_manifest["source_run"]
    assert half_manifest["eval"] == full_manifest["eval"]
    stored, _ = checkpoint.load_tensors(tmp_path / "zoo/half/checkpoints/vision")
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    starts = [start_latents_of(open_entry(tmp_path / f"zoo/{n}")) for n in ("full", "half")]
    assert np.array_equal(starts[0][0], starts[1][0])
    # Loaded back into float32 modules: V plays in float32 on weights rounded to float16.
    run = open_entry(tmp_path / "zoo/half")
    weights = read_agent_weights(run.checkpoints)
    recipe = load_recipe(run.recipe_path)
    registry = get_registry(tuple(recipe.plugins))
    agent = build_agent(recipe, registry, make_context(recipe, registry, run).spec, weights)
    assert {p.dtype for p in agent.vision.parameters()} == {torch.float32}
    got = runner.invoke(app, ["eval", "--checkpoint", "zoo/half", "--json"])
    assert got.exit_code == 0 and len(json.loads(got.stdout)["returns"]) == 2
