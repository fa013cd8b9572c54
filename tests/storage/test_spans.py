"""The span records of stages.json (``wrote``): written compactly, read back as untrusted."""

from __future__ import annotations

import pytest

from wmkit.storage.spans import MAX_EPISODES, parse_spans, parse_wrote, to_spans


def test_to_spans_merges_runs_and_round_trips():
    episodes = [7, 0, 1, 2, 5, 6, 2, 10]
    spans = to_spans(episodes)
    assert spans == [[0, 3], [5, 8], [10, 11]]
    assert sorted(e for r in parse_spans(spans) for e in r) == sorted(set(episodes))
    assert to_spans([]) == []


@pytest.mark.parametrize(
    "value, words",
    [
        ({"a": 1}, "not a list"),
        ([[3, 3]], "is not a span"),
        ([[-1, 2]], "is not a span"),
        ([[0, 1, 2]], "is not a span"),
        ([[True, 2]], "is not a span"),
        ([[0.0, 2]], "is not a span"),
        ([[0, MAX_EPISODES], [MAX_EPISODES, MAX_EPISODES + 1]], "claims more than"),
    ],
)
def test_parse_spans_names_what_is_wrong(value, words):
    with pytest.raises(ValueError, match=words):
        parse_spans(value)


def test_parse_wrote_reads_every_store_and_refuses_a_non_mapping():
    wrote = parse_wrote({"rollouts": [[0, 2]], "latents": [[4, 5]]})
    assert {k: [list(r) for r in v] for k, v in wrote.items()} == {
        "rollouts": [[0, 1]],
        "latents": [[4]],
    }
    with pytest.raises(ValueError, match="not a mapping"):
        parse_wrote([[0, 2]])
    with pytest.raises(ValueError, match="is not a span"):
        parse_wrote({"rollouts": [[0, 2]], "latents": [["x", 1]]})
