"""Rank statistics for the rankings: ranks per posterior draw, Kendall's tau, Spearman's rho,
list overlap.

Why here and not scipy: scipy is not a dependency, and these are a few lines of numpy each.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules.periods import period_kind

__all__ = [
    "average_ranks",
    "jaccard",
    "kendall_tau",
    "kendall_tau_draws",
    "rank_draws",
    "score_correlation",
    "spearman",
    "stability",
]


def rank_draws(scores: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.int64]:
    """Ranks (1 = highest score) per draw of a (draws, items) array. Ties — estates capped by the
    same veto, sub-scores clipped at 0 or 100 — are broken at random per draw, so two tied estates
    each have half the chance of a place instead of the one with the smaller id taking it."""
    draws, n = scores.shape
    order = np.lexsort((rng.random(scores.shape), -scores), axis=-1)
    ranks = np.empty((draws, n), dtype=np.int64)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1, n + 1), (draws, n)), axis=1)
    return ranks


def _tau(dx: NDArray[np.float64], dy: NDArray[np.float64]) -> NDArray[np.float64]:
    s = np.sum(dx * dy, axis=-1)
    n1 = np.sum(dx != 0, axis=-1)
    n2 = np.sum(dy != 0, axis=-1)
    denom = np.sqrt(n1.astype(np.float64) * n2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, s / np.where(denom > 0, denom, 1.0), np.nan)


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b between two equally long sequences: (concordant − discordant pairs) over
    ``sqrt((pairs untied in x)(pairs untied in y))``. NaN when undefined (fewer than two items, or
    one side all tied), as scipy does."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau needs two 1-d sequences of the same length")
    if len(a) < 2:
        return math.nan
    i, j = np.triu_indices(len(a), 1)
    return float(_tau(np.sign(a[i] - a[j]), np.sign(b[i] - b[j])))


def kendall_tau_draws(x: NDArray[np.float64], y: ArrayLike) -> NDArray[np.float64]:
    """Kendall's tau-b of each row of ``x`` (draws, items) against ``y``."""
    b = np.asarray(y, dtype=np.float64)
    n = x.shape[1]
    if n < 2:
        return np.full(x.shape[0], np.nan)
    i, j = np.triu_indices(n, 1)
    return _tau(np.sign(x[:, i] - x[:, j]), np.sign(b[i] - b[j])[None, :])


def average_ranks(x: ArrayLike) -> NDArray[np.float64]:
    """Ranks 1..n of a 1-d sequence (1 = smallest), tied values sharing their average rank."""
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = np.arange(1, len(a) + 1, dtype=np.float64)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse], dtype=np.float64)


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks (ties share their rank, as
    scipy does). NaN when undefined (fewer than two items, or one side all tied)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("spearman needs two 1-d sequences of the same length")
    if len(a) < 2:
        return math.nan
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else math.nan


def jaccard(a: Collection[str], b: Collection[str]) -> float | None:
    """|a ∩ b| / |a ∪ b|; None when both are empty (nothing to compare, not "stable")."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return None
    return len(sa & sb) / len(sa | sb)


MIN_COMPARED = 3


def _scores(result: Mapping[str, Any]) -> dict[str, float]:
    return {
        str(e["estate"]): float(e["score"])
        for e in result.get("estates", [])
        if e.get("score") is not None
    }


def score_correlation(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> tuple[float | None, int]:
    """Spearman's rho of the scores of the estates scored in both periods, and how many they are;
    None below :data:`MIN_COMPARED` estates or when undefined."""
    a, b = _scores(prev), _scores(cur)
    both = sorted(a.keys() & b.keys())
    if len(both) < MIN_COMPARED:
        return None, len(both)
    rho = spearman([a[e] for e in both], [b[e] for e in both])
    return (round(rho, 4) + 0.0 if math.isfinite(rho) else None), len(both)


def stability(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Between consecutive periods of the same kind, from :func:`rules.rankings.rank_period`
    results (in any order; ids sort chronologically): the overlap of the red and of the black
    lists, and the rank correlation of the estates' scores (estates scored in both)."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        pid = r["period"]["id"]
        by_kind.setdefault(period_kind(pid), []).append(r)
    out: list[dict[str, Any]] = []
    for kind in ("month", "quarter", "half"):
        seq = sorted(by_kind.get(kind, []), key=lambda r: str(r["period"]["id"]))
        for prev, cur in itertools.pairwise(seq):
            lists = {
                which: jaccard(
                    [e["estate"] for e in prev[which]], [e["estate"] for e in cur[which]]
                )
                for which in ("red_list", "black_list")
            }
            rho, compared = score_correlation(prev, cur)
            out.append(
                {
                    "kind": kind,
                    "from": prev["period"]["id"],
                    "to": cur["period"]["id"],
                    "red_jaccard": lists["red_list"],
                    "black_jaccard": lists["black_list"],
                    "score_spearman": rho,
                    "estates_compared": compared,
                }
            )
    return out
