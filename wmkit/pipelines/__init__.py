"""Pipelines: the runner that walks any pipeline's stages, the defaults of the protocol
(``base``), the paper's ``ha`` pipeline, the ``online`` pipeline, the dream-reality gap,
``verify``, and the stages in ``stages/``."""
