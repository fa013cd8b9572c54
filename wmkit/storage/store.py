"""Episodes on disk: one compressed ``.npz`` shard per episode plus a ``manifest.json``.

Workers return an episode's arrays; the driver (the process running the stages) writes
both the shards and the manifest, so workers need no access to the run directory. Readers
stream a few shards at a time, so training memory is bounded by ``shards_in_memory``, not by
the size of the dataset.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wmkit.core.errors import WmkitError
from wmkit.storage.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    check_regular,
    is_plain_name,
    npz_bytes,
    read_json,
    read_regular,
    sha256_bytes,
    sha256_file,
)


@dataclass
class ShardInfo:
    """One episode's shard as recorded in the manifest."""

    episode: int
    file: str
    steps: int
    total_return: float
    sha256: str
    bytes: int


class RolloutStore:
    """A folder of episode shards with a manifest that says which are complete."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest_path = self.root / "manifest.json"
        self._shards: dict[int, ShardInfo] = {}
        if self.manifest_path.exists() or self.manifest_path.is_symlink():
            try:
                raw = read_json(self.manifest_path)
                self._shards = {int(k): ShardInfo(**v) for k, v in raw["shards"].items()}
                for info in self._shards.values():
                    if not is_plain_name(info.file):  # a shard is a file of this folder
                        raise ValueError(f"{info.file!r} is not a file name inside this folder")
            except (WmkitError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise WmkitError(
                    f"{self.manifest_path}: damaged manifest ({exc}); run 'wmkit verify "
                    f"--repair' on the run to collect its episodes again"
                ) from None

    def write_episode(self, episode: int, arrays: dict[str, np.ndarray]) -> ShardInfo:
        """Write one episode's arrays as a shard; returns its entry for ``add``."""
        data = npz_bytes(arrays)
        name = f"episode_{episode:06d}.npz"
        atomic_write_bytes(self.root / name, data)
        steps = len(next(iter(arrays.values())))
        total = float(arrays["reward"].sum()) if "reward" in arrays else 0.0
        return ShardInfo(episode, name, steps, total, sha256_bytes(data), len(data))

    def add(self, info: ShardInfo) -> None:
        """Record a written shard in the manifest."""
        self._shards[info.episode] = info
        self.flush()

    def flush(self) -> None:
        atomic_write_json(
            self.manifest_path,
            {"version": 1, "shards": {str(k): asdict(v) for k, v in sorted(self._shards.items())}},
        )

    def has(self, episode: int) -> bool:
        return episode in self._shards

    def drop(self, episode: int) -> None:
        """Forget a damaged shard so that it is collected or encoded again. The manifest
        forgets it first: a crash in between leaves a stray file, never a listed hole."""
        info = self._shards.pop(episode, None)
        if info is not None:
            self.flush()
            # A plain name (checked on reading the manifest): a link is removed, not followed.
            (self.root / info.file).unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._shards)

    def infos(self) -> list[ShardInfo]:
        return [self._shards[k] for k in sorted(self._shards)]

    def total_steps(self) -> int:
        return sum(info.steps for info in self._shards.values())

    def verify(self) -> list[ShardInfo]:
        """Shards whose file is missing or whose checksum does not match the manifest."""
        bad = []
        for info in self.infos():
            path = self.root / info.file
            try:
                check_regular(path)
            except WmkitError:
                bad.append(info)
                continue
            if path.stat().st_size != info.bytes or sha256_file(path) != info.sha256:
                bad.append(info)
        return bad

    def first_latents(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """V's mean and log-variance at the first step of each non-empty episode (the first
        ``limit`` of them): where dreams begin. None when no episode has a step."""
        mus, logvars = [], []
        for info in self.infos():
            if info.steps == 0:
                continue
            if len(mus) == limit:
                break
            ep = self.load(info.episode)
            mus.append(ep["mu"][0])
            logvars.append(ep["logvar"][0])
        return (np.stack(mus), np.stack(logvars)) if mus else None

    def load(self, episode: int) -> dict[str, np.ndarray]:
        """Read one shard, checking that it is what the manifest recorded."""
        info = self._shards[episode]
        path = self.root / info.file
        data = read_regular(path)
        if sha256_bytes(data) != info.sha256:
            raise WmkitError(
                f"{path}: shard is corrupted (checksum mismatch); run 'wmkit run' again with "
                f"the same recipe after deleting it, and only this episode is redone"
            )
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, zipfile.BadZipFile) as exc:
            raise WmkitError(f"{path}: unreadable shard ({exc})") from None

    def iter_groups(
        self, rng: np.random.Generator, shards_in_memory: int
    ) -> Iterator[list[dict[str, np.ndarray]]]:
        """Shuffled groups of at most ``shards_in_memory`` loaded episodes."""
        order = rng.permutation([info.episode for info in self.infos()])
        for start in range(0, len(order), shards_in_memory):
            yield [self.load(int(ep)) for ep in order[start : start + shards_in_memory]]


def frame_batches(
    store: RolloutStore, batch_size: int, rng: np.random.Generator, shards_in_memory: int = 64
) -> Iterator[np.ndarray]:
    """Shuffled uint8 frame batches [B, H, W, C], holding a bounded number of shards."""
    for group in store.iter_groups(rng, shards_in_memory):
        frames = np.concatenate([ep["frames"] for ep in group])
        order = rng.permutation(len(frames))
        for start in range(0, len(order), batch_size):
            yield frames[order[start : start + batch_size]]


def sequence_chunks(
    store: RolloutStore, seq_len: int, rng: np.random.Generator, shards_in_memory: int = 256
) -> Iterator[dict[str, np.ndarray]]:
    """Non-overlapping chunks of ``seq_len`` steps from latent episodes, with a ``mask``;
    together they hold every step of every episode exactly once.

    An episode of at most ``seq_len`` steps is one chunk from its first step, padded after its
    end (mask 0): M learns it whole from its initial state, as a dream starts. A longer episode
    is followed by a random 0 to ``seq_len - 1`` steps of padding and cut from the end
    backwards, so its last step, the one where ``done`` is 1, lands at any position in a chunk
    (M learns when episodes end, not that they end at the last step of a sequence); the steps
    left over at its start make one more chunk, padded. Latents are sampled from the stored
    mean and log-variance each time (as in the paper), so every epoch sees slightly different z.
    """
    for group in store.iter_groups(rng, shards_in_memory):
        chunks = []
        for ep in group:
            n = len(ep["mu"])
            length = seq_len if n <= seq_len else n + int(rng.integers(0, seq_len))
            z = ep["mu"] + np.exp(ep["logvar"] / 2) * rng.standard_normal(ep["mu"].shape)
            padded = {
                "z": _pad(z.astype(np.float32), length),
                "action": _pad(ep["action"], length),
                "reward": _pad(ep["reward"], length),
                "done": _pad(ep["done"], length),
                "mask": _pad(np.ones(n, np.float32), length),
            }
            starts = range(length - seq_len, -1, -seq_len)
            for start in starts:
                chunks.append({k: v[start : start + seq_len] for k, v in padded.items()})
            if starts[-1] > 0:  # the episode's first steps, before the earliest cut
                chunks.append({k: _pad(v[: starts[-1]], seq_len) for k, v in padded.items()})
        for i in rng.permutation(len(chunks)):
            yield chunks[i]


def _pad(values: np.ndarray, length: int) -> np.ndarray:
    """``values`` followed by zeros up to ``length`` steps."""
    out = np.zeros((length, *values.shape[1:]), values.dtype)
    out[: len(values)] = values
    return out
