"""The ``wmkit`` command: sub-commands live one per file and are composed here."""

from __future__ import annotations

import typer

from wmkit.cli import compare as compare_cmd
from wmkit.cli import dream as dream_cmd
from wmkit.cli import eval as eval_cmd
from wmkit.cli import export as export_cmd
from wmkit.cli import gap as gap_cmd
from wmkit.cli import new_plugin as new_plugin_cmd
from wmkit.cli import plugins as plugins_cmd
from wmkit.cli import report as report_cmd
from wmkit.cli import run as run_cmd
from wmkit.cli import validate as validate_cmd
from wmkit.cli import verify as verify_cmd

app = typer.Typer(
    name="wmkit",
    help="World models you can take apart: collect, train V, M and C, dream, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("run")(run_cmd.run)
app.command("eval")(eval_cmd.eval_)
app.command("dream")(dream_cmd.dream)
app.command("gap")(gap_cmd.gap)
app.command("compare")(compare_cmd.compare)
app.command("report")(report_cmd.report)
app.command("export")(export_cmd.export)
app.command("validate")(validate_cmd.validate)
app.command("plugins")(plugins_cmd.plugins)
app.command("verify")(verify_cmd.verify)
app.command("new-plugin")(new_plugin_cmd.new_plugin)


def main() -> None:
    app()
