"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class WmkitError(Exception):
    """A problem with the user's input (recipe, file, option), not a bug in wmkit."""


class UnknownComponentError(WmkitError):
    """A recipe names a component that no installed plugin provides."""

    def __init__(self, role: str, name: str, available: list[str]):
        self.role, self.name, self.available = role, name, available
        names = ", ".join(sorted(available)) or "none installed"
        super().__init__(f"unknown {role} {name!r}; available: {names}")
