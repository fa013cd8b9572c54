"""CUDA graphs: recording a function of fixed-shape tensors once and replaying it.

On a GPU a small network's step is a few dozen kernels of microseconds each, and issuing them
from Python costs more than running them. A CUDA graph records the kernels once; a replay
launches them all at once. What a replay computes is what the recorded calls computed, read
from the same memory: inputs must be copied into the recorded input tensors, weights must be
updated in place (optimizers do), and random numbers come from generators registered with
the graph (torch's default CUDA generator always is), so a replay draws what the eager calls
would have drawn.

``wmkit.dreams.rollout`` records chunks of the paper's dream; ``GraphedFunction`` records a whole
function (the Dreamer line's imagination, ``actor_critic``) and keeps the graph across calls.
Off CUDA nothing here is used: the eager code runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from wmkit.core.errors import WmkitError

# Records a function's kernels and returns its replay (``record_cuda_graph``; tests pass one
# that replays by running the function again, eagerly).
Recorder = Callable[[Callable[[], None], torch.Generator | None], Callable[[], None]]


@contextmanager
def side_stream(device: torch.device) -> Iterator[None]:
    """Run the block on a side CUDA stream (where a graph's warm-up belongs); as is elsewhere."""
    if device.type != "cuda":
        yield
        return
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream(device).wait_stream(side)


def record_cuda_graph(
    fn: Callable[[], None], generator: torch.Generator | None
) -> Callable[[], None]:
    """Record ``fn``'s kernels once as a CUDA graph (recording runs nothing); returns its
    replay. A ``generator`` is registered with the graph, so that each replay draws the random
    numbers the eager calls would have drawn and advances the generator as they would."""
    cuda_graph = torch.cuda.CUDAGraph()
    if generator is not None:
        cuda_graph.register_generator_state(generator)
    try:
        with torch.cuda.graph(cuda_graph):
            fn()
    except RuntimeError as exc:
        raise WmkitError(
            f"dream.graph: this model cannot be recorded as a CUDA graph ({exc}); "
            "set dream.graph: false"
        ) from exc
    return cuda_graph.replay


def clone_tensors(tree: Any) -> Any:
    """A copy of a tensor, or of tuples, lists and dicts of them, in new memory."""
    if torch.is_tensor(tree):
        return tree.clone()
    if isinstance(tree, dict):
        return {k: clone_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(clone_tensors(v) for v in tree)
    return tree


def copy_tensors(target: Any, source: Any) -> None:
    """Copy ``source``'s tensors into those of ``target``, in place (a graph's fixed memory)."""
    if torch.is_tensor(target):
        target.copy_(source)
    elif isinstance(target, dict):
        for k in target:
            copy_tensors(target[k], source[k])
    elif isinstance(target, (tuple, list)):
        for t, s in zip(target, source, strict=True):
            copy_tensors(t, s)


def leaves(tree: Any) -> list[torch.Tensor]:
    """The tensors of a tensor, or of tuples, lists and dicts of them, in a fixed order."""
    if torch.is_tensor(tree):
        return [tree]
    if isinstance(tree, dict):
        return [t for k in sorted(tree) for t in leaves(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [t for v in tree for t in leaves(v)]
    return []


def tensor_layout(tree: Any) -> tuple:
    """The shapes, dtypes and devices of a tree's tensors: what a recorded graph's inputs must
    keep."""
    return tuple((tuple(t.shape), t.dtype, t.device) for t in leaves(tree))


def module_tensors(*modules: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters and buffers of ``modules``: the weights a recorded graph reads."""
    return [t for m in modules for t in itertools.chain(m.parameters(), m.buffers())]


def on_cuda(*parts: object) -> bool:
    """Whether every part is a torch module with all its weights on CUDA, so that a graph
    can record what they compute."""
    if not all(isinstance(p, torch.nn.Module) for p in parts):
        return False
    tensors = module_tensors(*parts)  # type: ignore[arg-type]
    return bool(tensors) and all(t.is_cuda for t in tensors)


def request_graph(optimizer: object, wanted: bool) -> None:
    """Pass the recipe's ``dream.graph`` on to an optimizer that can record its imagination
    (one with a ``graph`` attribute, such as ``actor_critic``); others are left alone."""
    if wanted and hasattr(optimizer, "graph"):
        optimizer.graph = True


class GraphedFunction:
    """``fn(inputs) -> outputs`` (trees of tensors, under ``no_grad``) replayed as one CUDA graph.

    A call with inputs of a layout not yet seen runs ``fn`` eagerly on a side stream: a graph
    needs a warm-up call, and it is real work. The next call records ``fn`` into fixed input
    and output tensors; from then on each call copies its inputs in, replays, and returns a
    copy of the outputs. The weights ``fn`` reads must stay in the same memory for a replay to
    see them: an optimizer's in-place step does, but a tensor swapped for another
    (``vector_to_parameters``, a load that assigns) would not, so ``watch`` lists those
    weights and the graph is recorded again when any of their addresses has changed.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        watch: Callable[[], Iterable[torch.Tensor]],
        generator: torch.Generator | None = None,
        record: Recorder | None = None,
    ):
        self.fn, self.watch, self.generator = fn, watch, generator
        self.record = record or record_cuda_graph
        self.recordings = 0  # graphs recorded so far (a new layout or moved weights add one)
        self._key: tuple | None = None
        self._replay: Callable[[], None] | None = None
        self._inputs: Any = None
        self._outputs: Any = None

    def __call__(self, inputs: Any) -> Any:
        key = (tensor_layout(inputs), tuple(t.data_ptr() for t in self.watch()))
        if key != self._key:  # warm up (again): eagerly, off the main stream
            self._key, self._replay = key, None
            device = next((t.device for t in leaves(inputs)), torch.device("cpu"))
            with side_stream(device):
                return self.fn(inputs)
        if self._replay is None:
            self._inputs = clone_tensors(inputs)

            def body() -> None:
                self._outputs = self.fn(self._inputs)

            self._replay = self.record(body, self.generator)
            self.recordings += 1
        copy_tensors(self._inputs, inputs)
        self._replay()
        return clone_tensors(self._outputs)
