"""wmkit: a plugin-based toolkit for world models (V, M, C in the style of Ha & Schmidhuber)."""

import os as _os
import sys as _sys

# ``python -m wmkit`` puts the current directory first on the import path (the ``wmkit``
# script does not), so a file there, say in a run directory from elsewhere, would shadow
# any module wmkit imports, plugins included. While ``-m`` looks for wmkit, argv[0] is "-m".
if _sys.argv[:1] == ["-m"] and _sys.path and _sys.path[0] in ("", _os.getcwd()):
    del _sys.path[0]

from wmkit.core import compat as _compat  # noqa: E402
from wmkit.core.hookspecs import hookimpl  # noqa: E402

# The 0.1 module paths (``wmkit.protocols``, ``wmkit.errors``...) for one more release.
_compat.install()

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
