"""For plugin authors: contract checks (``testing``) and the ``wmkit new-plugin`` scaffold with
its templates."""
