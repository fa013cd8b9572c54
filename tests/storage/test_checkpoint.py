"""Checkpoint files: a kill at any point of an overwrite leaves a loadable, self-consistent
checkpoint; damage is named; files from before the metadata moved into the header still load."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save as torch_save

from wmkit.core.errors import WmkitError
from wmkit.storage import checkpoint
from wmkit.storage.fileio import sha256_bytes


def test_a_kill_between_the_weights_and_the_json_keeps_weights_and_metadata_together(
    tmp_path, monkeypatch
):
    stem = tmp_path / "memory_resume"
    checkpoint.save_tensors(stem, {"w": torch.zeros(3)}, {"epoch": 1})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stands in for SIGKILL after the weights were renamed in

    monkeypatch.setattr(checkpoint, "atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_tensors(stem, {"w": torch.ones(3)}, {"epoch": 2})

    assert json.loads(stem.with_suffix(".json").read_text())["epoch"] == 1  # the stale copy
    tensors, meta = checkpoint.load_tensors(stem)
    assert meta["epoch"] == 2
    torch.testing.assert_close(tensors["w"], torch.ones(3))


@pytest.mark.parametrize("tensors", [{"a": np.arange(4.0)}, {"a": torch.arange(4.0)}])
def test_round_trip_keeps_values_metadata_and_format(tmp_path, tensors):
    stem = tmp_path / "c"
    checkpoint.save_tensors(stem, tensors, {"role": "vision", "epoch": 3})
    loaded, meta = checkpoint.load_tensors(stem)
    np.testing.assert_array_equal(np.asarray(loaded["a"]), np.arange(4.0))
    assert (meta["role"], meta["epoch"]) == ("vision", 3)
    assert meta["format"] == ("numpy" if isinstance(tensors["a"], np.ndarray) else "torch")
    assert json.loads(stem.with_suffix(".json").read_text()) == meta


def test_damaged_tensor_bytes_and_headers_are_named(tmp_path):
    stem = tmp_path / "c"
    weights = stem.with_suffix(".safetensors")
    checkpoint.save_tensors(stem, {"a": torch.arange(8.0)}, {})
    good = weights.read_bytes()

    weights.write_bytes(good[:-4] + b"oops")
    with pytest.raises(WmkitError, match="checkpoint is corrupted"):
        checkpoint.load_tensors(stem)
    weights.write_bytes(good[:6])
    with pytest.raises(WmkitError, match="unreadable checkpoint"):
        checkpoint.load_tensors(stem)
    weights.write_bytes(struct.pack("<Q", 2) + b"[]")  # a header that is not an object
    with pytest.raises(WmkitError, match="checkpoint"):
        checkpoint.load_tensors(stem)
    weights.unlink()
    with pytest.raises(WmkitError, match="checkpoint file not found"):
        checkpoint.load_tensors(stem)


def test_a_checkpoint_written_with_a_separate_json_still_loads(tmp_path):
    stem = tmp_path / "old"
    data = torch_save({"a": torch.ones(2)})
    stem.with_suffix(".safetensors").write_bytes(data)
    meta = {"epoch": 7, "format": "torch", "sha256": sha256_bytes(data)}
    stem.with_suffix(".json").write_text(json.dumps(meta))
    tensors, loaded = checkpoint.load_tensors(stem)
    assert loaded["epoch"] == 7 and tensors["a"].tolist() == [1.0, 1.0]

    stem.with_suffix(".json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(WmkitError, match="checkpoint is corrupted"):
        checkpoint.load_tensors(stem)
