"""Plugin discovery: the reference plugins arrive through entry points like anyone's."""

from __future__ import annotations

import json
import sys
import types

import pytest
from typer.testing import CliRunner

import wmkit
from wmkit.cli import app
from wmkit.errors import WmkitError
from wmkit.plugins import load_plugins
from wmkit.protocols import VisionOptions
from wmkit.registry import Registry


def test_reference_plugins_register_through_entry_points():
    plugins = load_plugins()
    by_name = {info.name: info for info in plugins.infos}
    for name, module in [
        ("conv_vae", "wmkit_vae"),
        ("mdn_rnn", "wmkit_mdnrnn"),
        ("linear", "wmkit_linear"),
        ("cmaes", "wmkit_cmaes"),
    ]:
        assert by_name[name].module == module and by_name[name].distribution == "wmkit"
        assert by_name[name].error is None
    reg = plugins.registry
    assert reg.names("vision") == ["conv_vae"] and reg.origins[("memory", "mdn_rnn")] == "mdn_rnn"
    assert "wmkit" not in sys.modules["wmkit_vae"].__name__.split(".")[:-1]  # own import name


def test_disabling_autoload_keeps_the_builtin_plugins(monkeypatch):
    monkeypatch.setenv("WMKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert load_plugins().registry.names("optimizer") == ["cmaes", "openai_es"]


def _plugin(name: str, register) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.wmkit_register = wmkit.hookimpl(register)
    return mod


class TinyVision:
    name = "tiny_vision"

    class Options(VisionOptions):
        pass


def test_an_in_process_plugin_adds_a_component():
    plugins = load_plugins(
        extra=[_plugin("mine", lambda registry: registry.add_vision(TinyVision))]
    )
    assert plugins.registry.get("vision", "tiny_vision") is TinyVision
    assert plugins.registry.origins[("vision", "tiny_vision")] == "mine"


def test_duplicate_names_and_options_that_are_not_role_options_are_rejected():
    reg = Registry()
    reg.add_vision(TinyVision)
    with pytest.raises(WmkitError, match="registered twice"):
        reg.add_vision(TinyVision)

    class Wrong:
        name = "wrong"
        Options = dict

    with pytest.raises(WmkitError, match="must subclass wmkit.protocols.MemoryOptions"):
        reg.add_memory(Wrong)
    with pytest.raises(WmkitError, match="unknown memory 'x'; available: none installed"):
        reg.get("memory", "x")


def test_a_plugin_with_a_misspelt_hook_is_reported_not_fatal():
    bad = types.ModuleType("bad")
    bad.wmkit_regster = wmkit.hookimpl(lambda registry: None)
    plugins = load_plugins(extra=[bad])
    assert plugins.registry.names("vision") == ["conv_vae"]


def test_plugins_command_lists_components_and_options():
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    options = {o["option"]: o for o in data["components"]["memory"]["mdn_rnn"]["options"]}
    assert options["gaussians"]["default"] == 5 and options["gaussians"]["description"]
    assert {p["name"] for p in data["plugins"]} >= {"conv_vae", "mdn_rnn", "linear", "cmaes"}
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0 and "[low, high]" in table.output
