"""Pipelines: the runner that walks any pipeline's stages, the paper's ``ha`` pipeline, the
``online`` pipeline, ``verify``, and the stages in ``stages/``."""
