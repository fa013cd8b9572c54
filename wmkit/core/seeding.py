"""Every random stream derives from the recipe's one seed, by purpose and index."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, purpose: str, *index: int) -> int:
    """A 31-bit seed for (purpose, index...) that does not depend on run order or workers."""
    key = [seed, zlib.crc32(purpose.encode()), *index]
    return int(np.random.SeedSequence(key).generate_state(1)[0] & 0x7FFFFFFF)
