"""The agents committed in zoo/: intact, small enough to commit, and scored as published."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmkit.storage.zoo import LIMIT_BYTES, read_entry

ZOO = Path(__file__).parents[2] / "zoo"
ENTRIES = sorted(p for p in ZOO.iterdir() if p.is_dir()) if ZOO.is_dir() else []
README = (Path(__file__).parents[2] / "README.md").read_text()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda p: p.name)
def test_a_committed_zoo_entry_verifies_and_is_listed_in_the_readme(entry):
    manifest, files = read_entry(entry)  # every file against its SHA-256
    assert sum(len(b) for b in files.values()) <= LIMIT_BYTES
    assert manifest["dtype"] == "float32"  # the published score, exactly on the same machine
    assert f"| `zoo/{entry.name}` |" in README


def test_the_headline_agents_are_in_the_zoo():
    assert {"carracing_quick", "carracing_imagine", "doom_takecover_quick"} <= {
        p.name for p in ENTRIES
    }
