"""Red and black lists (红黑榜) of estates and property companies, for one period, with the evidence.

A list that names an estate on thin evidence is unfair, so every step carries its uncertainty:

1. Each indicator's rate is shrunk toward the district mean (:mod:`rules.shrinkage`: Poisson-gamma
   for counts per exposure, beta-binomial for proportions, a stated fallback prior when the
   between-estate variance estimate is not positive). An indicator an estate cannot be measured on
   (exposure 0: no devices, no work orders) is left out of its score — the weights renormalise over
   what is observable — and, when it carries weight, listed as unobservable, never guessed.
2. Each shrunk rate becomes a 0-100 sub-score by its ratio to the district mean ``m``: with the
   "badness" ``q = θ/m`` when lower is better, ``(1 − θ)/(1 − m)`` for a proportion where higher is
   better and ``m/θ`` for a rate where higher is better, ``sub = 100 · clip(1 − q/zero_at, 0, 1)``.
   No problems scores 100, an estate at the district mean ``100(1 − 1/zero_at)`` (80 with the
   default ``zero_at`` 5), ``zero_at`` times the mean 0. Why not percentiles or the district
   min/max: both re-stretch whatever differences shrinkage left, so estates the evidence cannot
   tell apart would still land at 0 and 100; a ratio keeps small differences small, and the default
   bands read "A: at most half the district's problems, B: at most the district's, C: at most 1.5
   times, D: more".
3. The score is the weighted mean of the observable sub-scores; a veto caps it and bars the estate
   from the red list. Point scores use posterior means, so they do not depend on the seed.
4. ``draws`` posterior draws (a numpy Generator seeded from the config seed and a stable hash of the
   period id, never global state) give each estate's score interval (2.5-97.5%), rank interval and
   probabilities of being among the best and the worst ``k`` (ties in a draw broken at random;
   ``k`` is :meth:`RankConfig.list_length`: ``list_size``, but at most a quarter of the scored
   estates and at least one when two or more are scored, so small districts get shorter lists,
   never none). An estate is named only when that probability reaches ``evidence``, at most
   ``k`` a list (highest probability first), with the reason: the indicators that moved its score
   most from an average estate's (weight share × (sub-score − average sub-score), in points), and
   any veto.
5. Companies are scored as estates are, each on the counts and exposures of all its scored estates
   pooled (:func:`rules.rankscore.company_rows`): a company is judged on all its work at once, and
   an estate with five orders a month weighs in by its evidence, not by its households.
6. Given the companies' latent diligence (the simulation's truth), :mod:`rules.rankvalidity` says
   how well the finished ranking recovers it (Kendall's tau with an interval, each indicator's tau
   alone, estate scores against diligence, diligent companies' estates on the black list). It
   runs last and draws nothing, so diligence never changes a score, a draw or a list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.periods import Period, period_kind, periods, ranked_periods, run_period
from rules.rankconfig import INDICATORS, LIST_SHARE, RankConfig
from rules.rankscore import (
    EstatePeriod,
    Floats,
    Scores,
    apply_vetoes,
    company_scores,
    interval,
    rank_interval,
    reasons,
    rnd,
    score_estates,
    sub_score,
)
from rules.rankstats import jaccard, kendall_tau, rank_draws, stability
from rules.rankvalidity import add_stability, period_validity
from rules.shrinkage import stable_hash

__all__ = [
    "EstatePeriod",
    "Period",
    "add_stability",
    "jaccard",
    "kendall_tau",
    "period_kind",
    "periods",
    "rank_period",
    "ranked_periods",
    "run_period",
    "stability",
    "sub_score",
]


def _check_rows(estates: Sequence[EstatePeriod]) -> list[EstatePeriod]:
    if not estates:
        raise ValueError("rank_period needs at least one estate")
    rows = sorted(estates, key=lambda r: r.estate)
    ids = [r.estate for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate estate ids in one period")
    if len({r.period_id for r in rows}) != 1 or len({r.days for r in rows}) != 1:
        raise ValueError("every estate of one ranking must share the period id and its days")
    for r in rows:
        if r.households <= 0:
            raise ValueError(f"estate {r.estate}: households must be positive")
        for name, (y, e) in r.counts.items():
            if name not in INDICATORS:
                raise ValueError(f"estate {r.estate}: unknown indicator {name!r}")
            if not (math.isfinite(y) and math.isfinite(e)) or y < 0 or e < 0:
                raise ValueError(f"estate {r.estate}: {name} needs finite, non-negative values")
            if INDICATORS[name].family == "proportion" and y > e:
                raise ValueError(f"estate {r.estate}: {name} has {y} successes of {e}")
    return rows


class _Lists:
    """Who may be named: probabilities per scored estate (columns of ``ranks``)."""

    def __init__(self, rows: list[EstatePeriod], scores: Scores, cfg: RankConfig) -> None:
        self.rows, self.scores, self.cfg = rows, scores, cfg
        self.idx = [int(i) for i in np.flatnonzero(scores.wsum > 0)]
        self.col = {i: c for c, i in enumerate(self.idx)}
        m = len(self.idx)
        self.k = k = cfg.list_length(m)
        self.ok = k >= 1
        self.notes: list[str] = []
        if not self.ok:
            scored = f"{m} estate{'' if m == 1 else 's'} scored"
            self.notes.append(f"{scored}: nothing to compare with, so no lists")
        elif k < cfg.list_size:
            self.notes.append(
                f"{m} estates scored: lists of at most {k} (list_size {cfg.list_size}, and at most"
                f" {LIST_SHARE:.0%} of the scored estates, at least one)"
            )
        nan = np.full(m, np.nan)
        self.ranks = np.zeros((cfg.draws, m), dtype=np.int64)
        self.p_best: Floats = nan
        self.p_worst: Floats = nan

    def draw_ranks(self, rng: np.random.Generator) -> None:
        m, k = len(self.idx), self.k
        self.ranks = rank_draws(self.scores.draws[:, self.idx], rng)
        if self.ok:
            self.p_best = (self.ranks <= k).mean(axis=0)
            self.p_worst = (self.ranks > m - k).mean(axis=0)

    def named(self, hits: list[list[dict[str, Any]]], ref: float, worst: bool) -> list[Any]:
        if not self.ok:
            return []
        cfg, point, k = self.cfg, self.scores.point, self.k
        prob = self.p_worst if worst else self.p_best
        need = cfg.evidence * cfg.draws - 1e-9
        cand = [i for i in self.idx if prob[self.col[i]] * cfg.draws >= need]
        if not worst:
            for i in (i for i in cand if hits[i]):
                self.notes.append(f"{self.rows[i].estate}: barred from the red list by a veto")
            cand = [i for i in cand if not hits[i]]
        cand.sort(
            key=lambda i: (
                -prob[self.col[i]],
                point[i] if worst else -point[i],
                self.rows[i].estate,
            )
        )
        if len(cand) > k:
            which = "black" if worst else "red"
            self.notes.append(
                f"{len(cand)} estates reach the evidence for the {which} list; {k} named"
            )
        return [
            {
                "estate": self.rows[i].estate,
                "name": self.rows[i].name,
                "company": self.rows[i].company,
                "probability": rnd(prob[self.col[i]], 4),
                "score": rnd(point[i]),
                "interval": interval(self.scores.draws[:, i]),
                "rank_interval": rank_interval(self.ranks[:, self.col[i]]),
                "reasons": [*(hits[i] if worst else []), *reasons(i, self.scores, ref, worst)],
            }
            for i in cand[:k]
        ]


def _estate(
    i: int, rows: list[EstatePeriod], scores: Scores, lists: _Lists, hits: Any, cfg: RankConfig
) -> dict[str, Any]:
    r, ref = rows[i], 100.0 * (1.0 - 1.0 / cfg.zero_at)
    detail: dict[str, Any] = {}
    for fit in scores.fits:
        if fit.obs[i] and fit.shrunk is not None and fit.sub is not None:
            w = fit.weight / scores.wsum[i] if fit.weight > 0 else 0.0
            detail[fit.name] = {
                "count": rnd(fit.y[i], 4),
                "exposure": rnd(fit.e[i], 4),
                "observed": fit.display(fit.y[i] / fit.e[i]),
                "shrunk": fit.display(fit.shrunk[i]),
                "sub_score": rnd(fit.sub[i]),
                "weight": rnd(w, 4),
                "points": rnd(w * (fit.sub[i] - ref)) if w else None,
            }
    c = lists.col.get(i)
    point = float(scores.point[i])
    return {
        "estate": r.estate,
        "name": r.name,
        "company": r.company,
        "households": r.households,
        "scored": c is not None,
        "score": rnd(point) if c is not None else None,
        "interval": interval(scores.draws[:, i]) if c is not None else None,
        "band": cfg.band(point) if c is not None else None,
        "rank": None,
        "rank_interval": rank_interval(lists.ranks[:, c]) if c is not None else None,
        "p_best_k": rnd(lists.p_best[c], 4) if c is not None else None,
        "p_worst_k": rnd(lists.p_worst[c], 4) if c is not None else None,
        "vetoes": hits[i],
        "unobservable": [f.name for f in scores.fits if not f.obs[i] and f.weight > 0],
        "indicators": detail,
    }


def rank_period(
    estates: Sequence[EstatePeriod],
    cfg: RankConfig,
    *,
    period: Period | None = None,
    diligence: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Scores, bands, intervals, lists and the company ranking of one period, as a JSON-able dict.
    Deterministic given the inputs (in any order) and ``cfg``. ``period`` adds its calendar span
    to the output; ``diligence`` (company id -> latent diligence) adds the validity block
    (:func:`rules.rankvalidity.period_validity`) and changes nothing else."""
    rows = _check_rows(estates)
    pid = rows[0].period_id
    if period is not None and (period.id != pid or period.days != rows[0].days):
        raise ValueError(f"period {period.id} ({period.days} days) does not match the estates")
    rng = np.random.default_rng([cfg.seed, stable_hash(pid)])
    ref = 100.0 * (1.0 - 1.0 / cfg.zero_at)

    scores = score_estates(rows, cfg, rng)
    hits = apply_vetoes(cfg, scores)
    lists = _Lists(rows, scores, cfg)
    lists.draw_ranks(rng)
    companies, comp = company_scores(rows, scores, cfg, rng)
    red, black = lists.named(hits, ref, worst=False), lists.named(hits, ref, worst=True)
    validity = None
    if diligence is not None:  # the truth, held against the finished ranking only
        validity = period_validity(rows, scores, comp, black, diligence)

    point = scores.point
    order = sorted(lists.idx, key=lambda i: (-round(float(point[i]), 9), rows[i].estate))
    out_estates = [_estate(i, rows, scores, lists, hits, cfg) for i in order]
    for rank, entry in enumerate(out_estates, start=1):
        entry["rank"] = rank
    notes = [f"{f.name}: no estate can be measured on it this period" for f in scores.fits
             if f.prior is None]  # fmt: skip
    for i in (i for i in range(len(rows)) if i not in lists.col):
        out_estates.append(_estate(i, rows, scores, lists, hits, cfg))
        notes.append(
            f"{rows[i].estate}: no observable indicator with a positive weight; not scored"
        )
    notes += lists.notes

    indicators: dict[str, Any] = {}
    for fit in scores.fits:
        d, p = INDICATORS[fit.name], fit.prior
        indicators[fit.name] = {
            "family": d.family,
            "unit": d.unit,
            "exposure": d.exposure,
            "direction": cfg.direction(fit.name),
            "weight": fit.weight,
            "observed_by": int(fit.obs.sum()),
            "district_mean": fit.display(p.mean) if p else None,
            "prior": None
            if p is None
            else {
                "alpha": rnd(p.alpha, 6),
                "beta": rnd(p.beta, 6),
                "strength": rnd(p.strength, 4),
                "between_var": rnd(p.between_var * d.scale**2, 6),
                "fallback": p.fallback,
            },
        }
    period_out: dict[str, Any] = {"id": pid, "kind": period_kind(pid), "days": rows[0].days}
    if period is not None:
        period_out.update(
            start_day=period.start_day,
            end_day=period.end_day,
            length=period.length,
            coverage=rnd(period.coverage, 4),
            partial=period.partial,
        )
    return {
        "period": period_out,
        "config": {
            "list_size": cfg.list_size,
            "list_length": lists.k,
            "evidence": cfg.evidence,
            "draws": cfg.draws,
            "seed": cfg.seed,
            "zero_at": cfg.zero_at,
            "average_sub_score": rnd(ref),
            "fallback_strength": cfg.fallback_strength,
        },
        "indicators": indicators,
        "fallbacks": [
            {
                "indicator": f.name,
                "reason": f.prior.fallback,
                "prior_strength": rnd(f.prior.strength, 4),
                "exposure": INDICATORS[f.name].exposure,
            }
            for f in scores.fits
            if f.prior is not None and f.prior.fallback is not None
        ],
        "estates": out_estates,
        "companies": companies,
        "red_list": red,
        "black_list": black,
        "validity": validity,
        "notes": notes,
    }
