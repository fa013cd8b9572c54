"""wmkit: a plugin-based toolkit for world models (V, M, C in the style of Ha & Schmidhuber)."""

from wmkit.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
