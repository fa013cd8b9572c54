"""``precision: bf16`` on a CPU without bfloat16 kernels, seen from the command line: the run
finishes in float32 and says so once (the probe is forced off, so this holds on any CPU)."""

from __future__ import annotations


def test_wmkit_run_with_bf16_on_a_cpu_without_it_says_so_and_finishes(
    fast_recipe, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from wmkit.cli import app
    from wmkit.nn import optim_state

    monkeypatch.setattr(optim_state, "cpu_bf16_works", lambda kind: kind != "rnn")
    optim_state._say_bf16_falls_back.cache_clear()
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", str(fast_recipe), "--out", str(out), "--set", "memory.precision=bf16"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    log = (out / "wmkit.log").read_text()
    assert log.count("precision: bf16 is not supported") == 1
