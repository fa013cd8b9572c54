"""Errors a user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class WmkitError(Exception):
    """A problem with the user's input (recipe, file, option), not a bug in wmkit."""


def failed_plugins_hint(failed: list[str]) -> str:
    """The end of an error that a plugin which failed to load may explain ('' if none did)."""
    if not failed:
        return ""
    count = f"{len(failed)} plugin{'s' if len(failed) > 1 else ''}"
    return f"; {count} failed to load ({', '.join(failed)}); see 'wmkit plugins'"


class UnknownComponentError(WmkitError):
    """A recipe names a component that no installed plugin provides."""

    def __init__(self, role: str, name: str, available: list[str], failed: list[str] | None = None):
        self.role, self.name, self.available = role, name, available
        names = ", ".join(sorted(available)) or "none installed"
        super().__init__(
            f"unknown {role} {name!r}; available: {names}{failed_plugins_hint(failed or [])}"
        )


class ClashError(WmkitError):
    """Two plugins (or one, twice) register the same name for a role or an environment id:
    the name is refused, whichever plugin was found first."""

    def __init__(self, role: str, name: str, claimants: list[str]):
        self.role, self.name, self.claimants = role, name, claimants
        unique = sorted(set(claimants))
        if len(unique) == 1:
            message = f"is registered twice by {unique[0]}, so it is not used; register it once"
        elif len(unique) == 2:
            message = (
                f"is claimed by two plugins, so neither is used: {unique[0]} and {unique[1]}; "
                "uninstall one, or rename the component in one"
            )
        else:
            message = (
                f"is claimed by {len(unique)} plugins, so none is used: "
                f"{', '.join(unique[:-1])} and {unique[-1]}; uninstall all but one"
            )
        super().__init__(f"{role} {name!r} {message}")
