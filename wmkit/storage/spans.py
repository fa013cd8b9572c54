"""Sets of episode indices written as half-open spans ``[[first, stop], ...]``.

stages.json records, for each completed stage, the episodes it added to each shard store
(``wrote``). A 10,000-episode collection is then one span, not 10,000 numbers, and
``wmkit verify`` charges a damaged episode to the stage that writes it, whatever the
pipeline. stages.json is untrusted when read back, so ``parse_spans`` checks every span.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# More episodes than any run holds; a record claiming more is damaged, not iterated over.
MAX_EPISODES = 10_000_000


def to_spans(episodes: Iterable[int]) -> list[list[int]]:
    """Sorted, merged ``[first, stop]`` spans covering exactly ``episodes``."""
    spans: list[list[int]] = []
    for e in sorted(set(episodes)):
        if spans and spans[-1][1] == e:
            spans[-1][1] = e + 1
        else:
            spans.append([e, e + 1])
    return spans


def parse_spans(value: Any) -> list[range]:
    """The ranges of a recorded span list; ValueError naming what is wrong otherwise."""
    if not isinstance(value, list):
        raise ValueError("not a list of spans")
    out, total = [], 0
    for span in value:
        if (
            not isinstance(span, list)
            or len(span) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
            or not 0 <= span[0] < span[1]
        ):
            raise ValueError(f"{span!r} is not a span [first, stop] of episode indices")
        total += span[1] - span[0]
        if total > MAX_EPISODES:
            raise ValueError(f"claims more than {MAX_EPISODES:,} episodes")
        out.append(range(span[0], span[1]))
    return out


def parse_wrote(wrote: Any) -> dict[str, list[range]]:
    """A stage's ``wrote`` record (store name -> span list) as ranges per store; ValueError
    naming what is wrong otherwise. The one reader of that record, for run and verify."""
    if not isinstance(wrote, dict):
        raise ValueError("not a mapping of stores")
    return {str(store): parse_spans(spans) for store, spans in wrote.items()}
