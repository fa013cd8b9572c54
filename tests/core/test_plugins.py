"""Plugin discovery: the reference plugins arrive through entry points like anyone's."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wmkit
from wmkit.cli import app
from wmkit.core.errors import WmkitError
from wmkit.core.plugins import load_plugins, reset_plugins
from wmkit.core.protocols import VisionOptions
from wmkit.core.registry import Registry


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
    assert load_plugins().registry.names("optimizer") == ["actor_critic", "cmaes", "openai_es"]


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
    reg.current_plugin = "mine"
    reg.add_vision(TinyVision)
    reg.add_vision(TinyVision)
    with pytest.raises(WmkitError, match="'tiny_vision' is registered twice by plugin 'mine'"):
        reg.get("vision", "tiny_vision")
    assert reg.names("vision") == []

    class Wrong:
        name = "wrong"
        Options = dict

    with pytest.raises(WmkitError, match="must subclass wmkit.core.protocols.MemoryOptions"):
        reg.add_memory(Wrong)
    with pytest.raises(WmkitError, match="unknown memory 'x'; available: none installed"):
        reg.get("memory", "x")


def test_a_plugin_with_a_misspelt_hook_is_reported_not_fatal():
    bad = types.ModuleType("bad")
    bad.wmkit_regster = wmkit.hookimpl(lambda registry: None)
    plugins = load_plugins(extra=[bad])
    assert plugins.registry.names("vision") == ["conv_vae"]
    errors = {info.name: info.error for info in plugins.infos}
    assert "unknown hook wmkit_regster" in errors["bad"]
    # A recipe that names the component the plugin meant to add hears about the failure.
    with pytest.raises(WmkitError, match=r"1 plugin failed to load \(bad\); see 'wmkit plugins'"):
        plugins.registry.get("memory", "typo_mem")


def test_a_hook_without_the_marker_is_reported():
    forgot = types.ModuleType("forgot")
    exec("def wmkit_register(registry):\n    pass\n", vars(forgot))
    errors = {info.name: info.error for info in load_plugins(extra=[forgot]).infos}
    assert "wmkit_register not marked with @wmkit.hookimpl" in errors["forgot"]


def test_only_real_hook_implementations_count_as_hooks():
    """A plugin module that imports a module called wmkit_* is not taken for a hook, and a
    misspelt hook elsewhere unregisters only the plugin that misspelt it."""
    import wmkit_linear

    innocent = _plugin("innocent", lambda registry: registry.add_vision(TinyVision))
    innocent.wmkit_linear = wmkit_linear
    typo = types.ModuleType("typo")
    typo.wmkit_linear = wmkit_linear
    typo.wmkit_regster = wmkit.hookimpl(lambda registry: None)
    plugins = load_plugins(extra=[innocent, typo])
    errors = {info.name: info.error for info in plugins.infos}
    assert errors["innocent"] is None and plugins.registry.get("vision", "tiny_vision")
    assert errors["typo"].endswith("unknown hook wmkit_regster; see docs/hooks.md")


IMPOSTOR = """
import wmkit
from wmkit.core.protocols import VisionOptions


class Impostor:
    name = "conv_vae"
    Options = VisionOptions


@wmkit.hookimpl
def wmkit_register(registry):
    registry.add_vision(Impostor)
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install a one-module distribution with a ``wmkit`` entry point, by putting its module
    and its .dist-info on sys.path: importlib.metadata finds it as it would a pip install."""
    modules = []

    def _install(distribution: str, entry_point: str, source: str) -> None:
        module = f"wmkit_{entry_point}"
        (tmp_path / f"{module}.py").write_text(source)
        info = tmp_path / f"{distribution.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n"
        (info / "METADATA").write_text(metadata)
        (info / "entry_points.txt").write_text(f"[wmkit]\n{entry_point} = {module}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        modules.append(module)
        reset_plugins()

    yield _install
    for module in modules:
        sys.modules.pop(module, None)
    reset_plugins()


@pytest.mark.parametrize("entry_point", ["aa_clash", "zz_clash"])  # found before, after conv_vae
def test_a_plugin_cannot_take_a_builtin_name_in_either_order(entry_point, installed):
    installed("wmkit-clash", entry_point, IMPOSTOR)
    plugins = load_plugins()
    with pytest.raises(WmkitError) as refused:
        plugins.registry.get("vision", "conv_vae")
    message = str(refused.value)
    assert message.startswith("vision 'conv_vae' is claimed by two plugins, so neither is used")
    assert "(distribution 'wmkit-clash')" in message and "(distribution 'wmkit')" in message
    errors = {info.name: info.error for info in plugins.infos}
    assert message in errors[entry_point] and message in errors["conv_vae"]
    assert plugins.registry.get("memory", "mdn_rnn")  # the rest of each plugin still works
    recipe = Path(__file__).parents[2] / "recipes" / "carracing_quick.yaml"
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2 and "ok:" not in result.stdout
    assert f"vision.name: {message}" in result.stderr


def test_two_distributions_with_one_entry_point_name_load_neither(installed):
    installed("wmkit-other-vae", "conv_vae", IMPOSTOR)
    errors = {(i.name, i.distribution): i.error for i in load_plugins().infos}
    assert (
        "also used by distribution 'wmkit'; neither is loaded"
        in errors[("conv_vae", "wmkit-other-vae")]
    )
    assert "also used by distribution 'wmkit-other-vae'" in errors[("conv_vae", "wmkit")]


def test_plugins_command_lists_components_and_options():
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    options = {o["option"]: o for o in data["components"]["memory"]["mdn_rnn"]["options"]}
    assert options["gaussians"]["default"] == 5 and options["gaussians"]["description"]
    assert {p["name"] for p in data["plugins"]} >= {"conv_vae", "mdn_rnn", "linear", "cmaes"}
    table = CliRunner().invoke(app, ["plugins"])
    assert table.exit_code == 0 and "[low, high]" in table.output


def test_plugins_command_shows_a_plugin_error_in_full_at_80_columns(monkeypatch):
    bad = types.ModuleType("a_plugin_with_a_rather_long_name")
    bad.wmkit_regster = wmkit.hookimpl(lambda registry: None)
    plugins = load_plugins(extra=[bad])
    monkeypatch.setattr("wmkit.cli.plugins.get_plugins", lambda: plugins)
    result = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    error = next(info.error for info in plugins.infos if info.error)
    assert f"  {error}\n" in result.stdout


def test_plugins_command_ends_a_user_error_with_one_line(monkeypatch):
    def broken():
        raise WmkitError("cannot list plugins")

    monkeypatch.setattr("wmkit.cli.plugins.get_plugins", broken)
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 2 and result.stderr == "error: cannot list plugins\n"
