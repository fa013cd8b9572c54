"""M's batches: in shuffled order, or (batch_by_length) chunks of similar length together; each
batch is cut after its longest row, and the cut changes no loss (both reference memories read
time forwards and mask padding out)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from wmkit_gru import GRUGaussian, GRUGaussianOptions
from wmkit_mdnrnn import MDNRNN, MDNRNNOptions

from wmkit.core.protocols import SequenceBatch
from wmkit.pipelines.stages.fit_memory import collate, in_order, similar_lengths


def chunk(real: int, seq_len: int = 12, tag: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(real * 100 + tag)
    mask = (np.arange(seq_len) < real).astype(np.float32)
    done = np.zeros(seq_len, np.float32)
    done[real - 1] = 1.0
    return {
        "z": (rng.standard_normal((seq_len, 3)) * mask[:, None]).astype(np.float32),
        "action": (rng.uniform(-1, 1, (seq_len, 1)) * mask[:, None]).astype(np.float32),
        "reward": mask.copy(),
        "done": done,
        "mask": mask,
    }


@pytest.mark.parametrize(
    "memory",
    [
        lambda: MDNRNN(MDNRNNOptions(hidden=8, gaussians=2), 3, 1),
        lambda: GRUGaussian(GRUGaussianOptions(hidden=8), 3, 1),
    ],
    ids=["mdn_rnn", "gru_gaussian"],
)
def test_cutting_the_padding_every_row_has_changes_no_loss(memory):
    torch.manual_seed(0)
    model = memory()
    chunks = [chunk(4), chunk(7), chunk(5)]
    cut = collate(chunks, torch.device("cpu"))
    assert cut.z.shape[1] == 7  # the longest row's real steps
    full = SequenceBatch(
        *(torch.from_numpy(np.stack([c[k] for c in chunks])) for k in ("z", "action")),
        *(torch.from_numpy(np.stack([c[k] for c in chunks])) for k in ("reward", "done", "mask")),
    )
    assert full.z.shape[1] == 12
    with torch.no_grad():
        a, b = model.loss(cut), model.loss(full)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_similar_lengths_batches_every_chunk_once_with_its_neighbours_in_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 13, 50)
    chunks = [chunk(int(n), tag=i) for i, n in enumerate(lengths)]
    batches = list(similar_lengths(iter(chunks), 4, np.random.default_rng(1), pool_batches=5))
    seen = [id(c) for b in batches for c in b]
    assert sorted(seen) == sorted(id(c) for c in chunks)
    # Within each pool of 20 chunks, batches cover disjoint ranges of sorted lengths.
    spread = [
        int(max(c["mask"].sum() for c in b) - min(c["mask"].sum() for c in b)) for b in batches
    ]
    assert np.mean(spread) <= 2 < np.ptp(lengths)
    # And the batches come in a random order, not shortest first.
    firsts = [int(b[0]["mask"].sum()) for b in batches]
    assert firsts != sorted(firsts)


def test_in_order_batches_keep_the_shuffled_order_of_the_chunks():
    chunks = [chunk(n, tag=i) for i, n in enumerate([5, 2, 9, 4, 7])]
    batches = list(in_order(iter(chunks), 2))
    assert [[id(c) for c in b] for b in batches] == [
        [id(chunks[0]), id(chunks[1])],
        [id(chunks[2]), id(chunks[3])],
        [id(chunks[4])],
    ]
