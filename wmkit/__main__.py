"""``python -m wmkit`` is the ``wmkit`` command."""

from wmkit.cli import main

main()
