"""Memory a recipe's components need, checked in the preflight before any work: a size typed
one digit too long should end in one line, not in an allocation error halfway through a run
(or in the machine swapping)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wmkit.core.errors import WmkitError

GB = 1024**3


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else the
    physical memory), or None when the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def require_memory(role: str, needed: int, what: str) -> None:
    """Refuse a component whose ``needed`` bytes exceed the memory available."""
    available = available_memory()
    if available is not None and needed > available:
        raise WmkitError(
            f"{role}: {what} needs about {needed / GB:,.1f} GB, more than the "
            f"{available / GB:,.1f} GB of memory available; make it smaller"
        )


def parameter_count(component: Any) -> int:
    """Parameters of a torch module (buffers included), or a controller's ``num_params``."""
    if hasattr(component, "parameters"):
        import torch

        if isinstance(component, torch.nn.Module):
            tensors = [*component.parameters(), *component.buffers()]
            return sum(t.numel() for t in tensors)
    return int(getattr(component, "num_params", 0))


def check_trainable(role: str, component: Any) -> None:
    """Training holds four copies of every parameter: the weights, their gradients and
    Adam's two moments (4 bytes each for float32)."""
    n = parameter_count(component)
    require_memory(role, 4 * 4 * n, f"training {n:,} parameters")


@contextmanager
def building(role: str) -> Iterator[None]:
    """An allocation that fails while a component is built becomes one line naming it."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not allocation_failed(exc):
            raise
        raise WmkitError(f"{role}: not enough memory to build it ({_first_line(exc)})") from None


def allocation_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation that failed (numpy's MemoryError, torch's
    RuntimeError), which ``building`` reports as such rather than as a constructor's bug."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("allocate" in text or "out of memory" in text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]
