"""The pipeline's stages, in order. Each reads and writes only the run directory."""
