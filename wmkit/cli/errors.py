"""How the CLI ends on a user error: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import DISK_ERRORS, disk_error

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WmkitError as exc:
            _fail(exc)
        except OSError as exc:  # a full disk or a read-only folder, wherever it is written
            if exc.errno not in DISK_ERRORS:
                raise
            _fail(disk_error(exc.filename or "?", exc))
        except KeyboardInterrupt:
            typer.echo("interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _fail(exc: WmkitError) -> None:
    for line in str(exc).splitlines():
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(2) from None


def at_least(option: str, value: float | None, low: float, strict: bool = False) -> None:
    """Check a numeric option here rather than with click's ``min=``, whose failure prints
    a usage block instead of wmkit's one ``error:`` line."""
    if value is None:
        return
    if value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise WmkitError(f"{option}: must be {bound} (got {value:g})")


TRUST_PLUGINS_HELP = (
    "Import the modules the run's recipe lists under 'plugins:' (this runs their code; only "
    "for run directories you trust). Installed plugins need no flag."
)
