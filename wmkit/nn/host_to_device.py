"""Batches from the host to the training device without the GPU waiting on the host.

On CUDA a batch built in NumPy is copied into page-locked (pinned) memory and sent with an
asynchronous copy, and the next batch is built while the GPU trains on the current one. On a
CPU both are skipped: the tensors and their order are exactly those of a plain
``torch.from_numpy(array).to(device)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")


def to_device(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``array`` as a tensor on ``device``; on CUDA through pinned memory, without blocking
    the host (work queued on the device after it waits for the copy, as it should)."""
    tensor = torch.from_numpy(array)
    if torch.device(device).type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def prefetched(batches: Iterable[T], device: torch.device | str) -> Iterator[T]:
    """``batches`` as they come; on CUDA one ahead: batch i + 1 is built (its copy queued)
    before batch i is handed on, so the host builds while the GPU trains."""
    if torch.device(device).type != "cuda":
        yield from batches
        return
    iterator = iter(batches)
    sentinel = object()
    ahead = next(iterator, sentinel)
    while ahead is not sentinel:
        current, ahead = ahead, next(iterator, sentinel)
        yield current  # type: ignore[misc]
