"""The rollout store: checksummed shards, a manifest, and bounded-memory readers."""

from __future__ import annotations

import numpy as np
import pytest

from wmkit.core.errors import WmkitError
from wmkit.storage.store import RolloutStore, frame_batches, sequence_chunks


def fake_episode(n: int, value: int) -> dict[str, np.ndarray]:
    return {
        "frames": np.full((n, 8, 8, 3), value, np.uint8),
        "action": np.zeros((n, 2), np.float32),
        "reward": np.ones(n, np.float32),
        "done": np.zeros(n, bool),
    }


def test_shards_round_trip_and_survive_reopening(tmp_path):
    store = RolloutStore(tmp_path)
    for i in range(3):
        store.add(store.write_episode(i, fake_episode(5 + i, i)))
    again = RolloutStore(tmp_path)
    assert len(again) == 3 and again.total_steps() == 5 + 6 + 7
    ep = again.load(2)
    assert ep["frames"].shape == (7, 8, 8, 3) and (ep["frames"] == 2).all()
    assert again.infos()[1].total_return == 6.0


def test_corrupted_shard_is_named_and_can_be_dropped(tmp_path):
    store = RolloutStore(tmp_path)
    info = store.write_episode(0, fake_episode(4, 1))
    store.add(info)
    path = tmp_path / info.file
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(WmkitError, match=f"{path}: shard is corrupted"):
        store.load(0)
    assert [i.episode for i in store.verify()] == [0]
    store.drop(0)
    assert not RolloutStore(tmp_path).has(0) and not path.exists()


def test_damaged_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(WmkitError, match="damaged manifest"):
        RolloutStore(tmp_path)


def test_frame_batches_hold_a_bounded_number_of_shards(tmp_path, monkeypatch):
    store = RolloutStore(tmp_path)
    for i in range(10):
        store.add(store.write_episode(i, fake_episode(4, i)))
    loaded = []
    original = store.load
    monkeypatch.setattr(store, "load", lambda ep: loaded.append(ep) or original(ep))
    rng = np.random.default_rng(0)
    seen = set()
    for batch in frame_batches(store, batch_size=3, rng=rng, shards_in_memory=2):
        values = set(np.unique(batch[:, 0, 0, 0]).tolist())
        assert len(values) <= 2  # never frames from more than the two shards in memory
        seen |= values
    assert seen == set(range(10)) and sorted(loaded) == list(range(10))


def test_sequence_chunks_keep_every_step_once_and_start_short_episodes_at_their_start(
    tmp_path,
):
    store = RolloutStore(tmp_path)
    lengths = [20, 4, 6]  # the second is shorter than a sequence, the third exactly one
    for i, n in enumerate(lengths):
        store.add(
            store.write_episode(
                i,
                {
                    "mu": np.arange(n, dtype=np.float32)[:, None].repeat(3, 1) + 100 * i,
                    "logvar": np.full((n, 3), -30.0, np.float32),
                    "action": np.zeros((n, 2), np.float32),
                    "reward": np.ones(n, np.float32),
                    "done": np.arange(n) == n - 1,
                },
            )
        )
    end_positions = set()
    for seed in range(8):
        chunks = list(sequence_chunks(store, 6, np.random.default_rng(seed)))
        assert len(chunks) >= 4
        ends, seen = 0, []
        for c in chunks:
            assert c["z"].shape == (6, 3) and c["mask"].shape == (6,)
            real = int(c["mask"].sum())
            assert real >= 1 and (c["mask"][:real] == 1).all() and (c["mask"][real:] == 0).all()
            steps = np.diff(c["z"][:real, 0])
            np.testing.assert_allclose(steps, 1.0, atol=1e-3)  # consecutive steps of one episode
            assert (c["reward"][real:] == 0).all() and not c["done"][real:].any()
            seen += c["z"][:real, 0].round().astype(int).tolist()
            if c["z"][0, 0].round() in (100, 200):  # short episodes: one chunk from step 0
                assert real == lengths[int(c["z"][0, 0].round()) // 100]
            if c["done"].any():
                ends += 1
                end_positions.add(int(np.flatnonzero(c["done"])[0]))
                assert np.flatnonzero(c["done"])[0] == real - 1  # done is the last real step
        assert ends == len(lengths)  # every episode's end is in exactly one chunk
        everything = [i * 100 + t for i, n in enumerate(lengths) for t in range(n)]
        assert sorted(seen) == everything  # every step once, the first ones included
    assert len(end_positions) >= 3  # and it is not always at the same position
