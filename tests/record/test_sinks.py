"""Metric sinks: the built-ins through the hook, MLflow and W&B for real, and failures."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tests.fixtures import sink_plugin
from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.record.metrics import MetricsLogger, read_metrics
from wmkit.record.sinks import active, available_sinks, open_sinks

runner = CliRunner()
PLUGIN = "tests.fixtures.sink_plugin"


def fake_run(tmp_path: Path) -> SimpleNamespace:
    root = tmp_path / "run"
    return SimpleNamespace(root=root, metrics=root / "metrics", tensorboard=root / "tensorboard")


def fake_recipe(sinks, plugins=()) -> SimpleNamespace:
    return SimpleNamespace(
        name="sinktest",
        sinks=list(sinks),
        plugins=list(plugins),
        to_dict=lambda: {"seed": 1},
        digest=lambda: "0" * 64,
    )


def test_hook_wmkit_metric_sinks(tmp_path):
    """A plugin's sinks are selectable by name; the built-ins come through the same hook."""
    found = available_sinks((PLUGIN,))
    assert found["jsonl"][1] == found["tensorboard"][1] == "metric_sinks"
    assert found["recording"] == (sink_plugin.RecordingSink, PLUGIN)
    assert {"mlflow", "wandb"} <= set(found)

    run = fake_run(tmp_path)
    sink_plugin.RECORDED.clear()
    with active(open_sinks(run, fake_recipe(["recording"], [PLUGIN]))):
        logger = MetricsLogger(run.metrics, run.tensorboard, "fit_vision")
        logger.log(0, loss=2.0)
        logger.log(1, loss=1.0)
        logger.close()
        # A restart after the checkpoint of step 0 drops the JSON line of step 1.
        MetricsLogger(run.metrics, run.tensorboard, "fit_vision", keep_until=0).log(1, loss=0.5)
    assert sink_plugin.RECORDED == [
        ("fit_vision", 0, {"loss": 2.0}),
        ("fit_vision", 1, {"loss": 1.0}),
        ("fit_vision", 1, {"loss": 0.5}),
    ]
    assert read_metrics(run.metrics / "fit_vision.jsonl") == [
        {"step": 0, "loss": 2.0},
        {"step": 1, "loss": 0.5},
    ]
    assert not (run.root / "tensorboard").exists()  # not asked for


def test_unknown_or_missing_sinks_are_clean_errors(tmp_path, monkeypatch, fast_recipe):
    with pytest.raises(WmkitError, match="sinks.1: unknown metric sink 'nope'; available: "):
        open_sinks(fake_run(tmp_path), fake_recipe(["tensorboard", "nope"]))
    monkeypatch.setitem(__import__("sys").modules, "mlflow", None)  # as if not installed
    with pytest.raises(WmkitError, match=r"pip install 'wmkit\[mlflow\]'"):
        open_sinks(fake_run(tmp_path), fake_recipe(["mlflow"]))

    out = tmp_path / "cli"
    result = runner.invoke(app, ["run", str(fast_recipe), "--out", str(out), "--set", "sinks=[x]"])
    assert result.exit_code == 2 and "unknown metric sink 'x'" in result.output
    assert not (out / "data").exists()


def test_mlflow_sink_logs_to_a_local_file_store(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants opting in to folders
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run = fake_run(tmp_path)
    with active(open_sinks(run, fake_recipe(["mlflow"]))) as sinks:
        logger = MetricsLogger(run.metrics, None, "fit_controller")
        for gen, best in enumerate([1.5, 2.5, 4.0]):
            logger.log(gen, best=best, env_steps=10)
        run_id = sinks.sinks[1].run_id
    client = MlflowClient()
    history = client.get_metric_history(run_id, "fit_controller/best")
    assert [(m.step, m.value) for m in history] == [(0, 1.5), (1, 2.5), (2, 4.0)]
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.params["seed"] == "1"
    assert client.get_experiment(got.info.experiment_id).name == "sinktest"


def wandb_history(wandb_dir: Path) -> list[dict]:
    """The history rows of the one offline run under ``wandb_dir``, read from its
    ``run-ID.wandb`` file: a LevelDB-style log of protobuf records after a 7-byte header."""
    import wandb
    from wandb.proto import wandb_internal_pb2 as pb

    wandb.teardown()  # stops W&B's service process, which writes the file behind finish()
    (path,) = wandb_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    rows, pos, block, parts = [], 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        parts = chunk if kind in (1, 2) else parts + chunk  # full/first, then middle/last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            if record.WhichOneof("record_type") == "history":
                items = record.history.item
                rows.append(
                    {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}
                )
    return rows


def test_wandb_sink_writes_offline_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    run = fake_run(tmp_path)
    with active(open_sinks(run, fake_recipe(["wandb"]))):
        logger = MetricsLogger(run.metrics, None, "fit_memory")
        logger.log(0, loss=3.0)
        logger.log(1, loss=2.0)
    rows = [
        {k: v for k, v in r.items() if k.startswith("fit_memory/")} for r in wandb_history(tmp_path)
    ]
    assert rows == [
        {"fit_memory/loss": 3.0, "fit_memory/step": 0},
        {"fit_memory/loss": 2.0, "fit_memory/step": 1},
    ]


def test_a_failing_sink_warns_once_and_never_changes_the_run(fast_group, tmp_path, monkeypatch):
    """A disk-full sink and an MLflow server that is down, next to a working W&B: the run
    finishes with the same numbers as without them, and each failure is reported once."""
    monkeypatch.chdir(Path(__file__).parents[2])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    baseline = fast_group / "seed_0"
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            str(fast_group.parent / "fast.yaml"),
            "--out",
            str(out),
            "--set",
            "seed=0",
            "--set",
            f"plugins=[tests.fixtures.blob_plugin,{PLUGIN}]",
            "--set",
            "sinks=[tensorboard,disk_full,mlflow,wandb]",
        ],
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert said.count("metric sink 'disk_full' failed") == 1
    assert "No space left on device" in said
    assert said.count("metric sink 'mlflow' failed") == 1 and "Connection refused" in said
    assert result.stdout.splitlines()[-1].startswith("eval mean ")  # stdout stays parseable
    assert json.loads((out / "eval.json").read_text()) == json.loads(
        (baseline / "eval.json").read_text()
    )
    for name in ("fit_vision", "fit_memory", "fit_controller"):
        rows = [read_metrics(r / "metrics" / f"{name}.jsonl") for r in (out, baseline)]
        for row in rows[0] + rows[1]:
            row.pop("seconds")
        assert rows[0] == rows[1]
    logged = [r for r in wandb_history(tmp_path) if "fit_controller/best" in r]
    assert [r["fit_controller/step"] for r in logged] == [0, 1]
