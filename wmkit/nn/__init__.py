"""Tensor tools the components share: distributions of the Dreamer line, optimizer state as flat
tensors, CUDA graphs, host-to-device batches."""
