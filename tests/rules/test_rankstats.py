"""Spearman's rho with ties, and the score correlation between consecutive periods."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rules.rankstats import average_ranks, score_correlation, spearman


def test_average_ranks_share_ties() -> None:
    assert average_ranks([30, 10, 20, 20]).tolist() == [4.0, 1.0, 2.5, 2.5]


def test_spearman_on_known_values() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 35, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5), as scipy gives
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman([1], [2])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_score_correlation_uses_estates_scored_in_both() -> None:
    def period(scores: dict[str, float | None]) -> dict[str, Any]:
        return {"estates": [{"estate": e, "score": s} for e, s in scores.items()]}

    prev = period({"a": 90, "b": 80, "c": 70, "d": 60, "gone": 50})
    cur = period({"a": 60, "b": 70, "c": 80, "d": 90, "new": 99, "unscored": None})
    assert score_correlation(prev, cur) == (-1.0, 4)
    assert score_correlation(prev, period({"a": 1, "b": 2})) == (None, 2)
