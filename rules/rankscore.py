"""Scoring for the rankings: shrunk indicators -> 0-100 sub-scores -> weighted scores, per draw.

See :mod:`rules.rankings` for the model as a whole; this module holds the arithmetic so that one
stays readable. Everything here works on estates sorted by id, as arrays over estates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rules.rankconfig import INDICATOR_NAMES, INDICATORS, RankConfig
from rules.rankstats import rank_draws
from rules.shrinkage import Prior, draw, fit_prior, posterior_mean

__all__ = [
    "CompanyScores",
    "EstatePeriod",
    "IndicatorFit",
    "Scores",
    "apply_vetoes",
    "company_rows",
    "company_scores",
    "interval",
    "rank_interval",
    "reasons",
    "rnd",
    "score_estates",
    "sub_score",
]

Floats = NDArray[np.float64]
REASONS = 3


@dataclass(frozen=True)
class EstatePeriod:
    """What the caller measured for one estate in one period: ``counts`` maps an indicator to
    (numerator, exposure); exposure 0 (or a missing indicator) means not observable."""

    estate: str
    name: str
    company: str
    households: int
    period_id: str
    days: int
    counts: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class IndicatorFit:
    """One indicator across the period's estates; ``shrunk`` and ``sub`` are NaN where unobserved,
    ``prior`` is None when no estate observes it."""

    name: str
    weight: float
    y: Floats
    e: Floats
    obs: NDArray[np.bool_]
    prior: Prior | None = None
    shrunk: Floats | None = None
    sub: Floats | None = None

    def display(self, value: float) -> float | None:
        """A rate per exposure unit in the indicator's unit (per 1,000 household-days...)."""
        return rnd(value * INDICATORS[self.name].scale, 4)


@dataclass
class Scores:
    """Weighted scores: ``point`` from posterior means, ``draws`` (draws, estates) from posterior
    draws; ``wsum`` is each estate's observable weight (0: not scored)."""

    fits: list[IndicatorFit]
    wsum: Floats
    point: Floats
    draws: Floats


def rnd(x: float | np.floating[Any] | None, nd: int = 2) -> float | None:
    """Round for the JSON output; None for a missing or non-finite value."""
    if x is None or not math.isfinite(float(x)):
        return None
    return round(float(x), nd) + 0.0  # + 0.0: no "-0.0" in the output


def interval(a: Floats) -> list[float | None]:
    """The central 95% of draws."""
    lo, hi = np.quantile(a, [0.025, 0.975])
    return [rnd(lo), rnd(hi)]


def rank_interval(ranks: NDArray[np.int64]) -> list[int]:
    """The central 95% of rank draws, widened to whole ranks."""
    return [
        int(np.percentile(ranks, 2.5, method="lower")),
        int(np.percentile(ranks, 97.5, method="higher")),
    ]


def sub_score(
    theta: Floats, mean: float, family: str, lower_better: bool, zero_at: float
) -> Floats:
    """Shrunk rates (or draws of them) -> 0-100 by their badness ratio to the district mean."""
    theta = np.asarray(theta, dtype=np.float64)
    if lower_better:
        bad = theta / mean
    elif family == "proportion":
        bad = (1.0 - theta) / (1.0 - mean)
    else:
        bad = mean / np.maximum(theta, 1e-300)
    return np.asarray(100.0 * np.clip(1.0 - bad / zero_at, 0.0, 1.0), dtype=np.float64)


def score_estates(rows: list[EstatePeriod], cfg: RankConfig, rng: np.random.Generator) -> Scores:
    """Fit, shrink and map every configured indicator (in vocabulary order, so the draws come
    from the generator in a fixed order), and combine the weighted ones over what each estate
    observes."""
    n, ndraw = len(rows), cfg.draws
    fits: list[IndicatorFit] = []
    wsum, point, sdraw = np.zeros(n), np.zeros(n), np.zeros((ndraw, n))
    for name in (x for x in INDICATOR_NAMES if x in cfg.indicators):
        d = INDICATORS[name]
        weight = cfg.indicators[name].weight
        y = np.array([r.counts.get(name, (0.0, 0.0))[0] for r in rows], dtype=np.float64)
        e = np.array([r.counts.get(name, (0.0, 0.0))[1] for r in rows], dtype=np.float64)
        fit = IndicatorFit(name, weight, y, e, e > 0)
        fits.append(fit)
        if not fit.obs.any():
            continue
        obs, lower = fit.obs, cfg.direction(name) == "lower_better"
        fit.prior = prior = fit_prior(d.family, y[obs], e[obs], cfg.fallback_strength)
        fit.shrunk = np.full(n, np.nan)
        fit.shrunk[obs] = posterior_mean(prior, y[obs], e[obs])
        fit.sub = np.full(n, np.nan)
        fit.sub[obs] = sub_score(fit.shrunk[obs], prior.mean, d.family, lower, cfg.zero_at)
        if weight > 0:
            wsum[obs] += weight
            point[obs] += weight * fit.sub[obs]
            theta = draw(prior, y[obs], e[obs], rng, ndraw)
            sdraw[:, obs] += weight * sub_score(theta, prior.mean, d.family, lower, cfg.zero_at)
    scored = wsum > 0
    point[scored] /= wsum[scored]
    sdraw[:, scored] /= wsum[scored]
    return Scores(fits, wsum, point, sdraw)


def apply_vetoes(cfg: RankConfig, scores: Scores) -> list[list[dict[str, Any]]]:
    """Cap the scores (point and every draw) of estates that trip a veto; the trips per estate."""
    n = len(scores.point)
    caps = np.full(n, np.inf)
    hits: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    by_name = {f.name: f for f in scores.fits}
    for veto in cfg.vetoes:
        fit = by_name[veto.indicator]
        scale = INDICATORS[fit.name].scale
        for i in np.flatnonzero(fit.obs):
            value = float(fit.y[i] if veto.on == "count" else fit.y[i] / fit.e[i] * scale)
            above = veto.above is not None and value > veto.above
            if not (above or (veto.below is not None and value < veto.below)):
                continue
            caps[i] = min(caps[i], veto.cap)
            side = "above" if above else "below"
            level = veto.above if above else veto.below
            hits[i].append(
                {
                    "indicator": veto.indicator,
                    "on": veto.on,
                    "value": rnd(value, 4),
                    side: level,
                    "cap": veto.cap,
                    "reason": veto.reason,
                    "text": f"veto: {veto.indicator} {veto.on} {value:.4g} {side} {level:g}"
                    f" (score capped at {veto.cap:g})",
                }
            )
    scores.point = np.minimum(scores.point, caps)
    scores.draws = np.minimum(scores.draws, caps)
    return hits


def reasons(i: int, scores: Scores, ref: float, worst: bool) -> list[dict[str, Any]]:
    """The indicators that moved estate ``i``'s score most away from an average estate's score
    (``ref``): each one's weight share times its sub-score's distance from ``ref``, in points."""
    found: list[tuple[float, str, dict[str, Any]]] = []
    for fit in scores.fits:
        if fit.weight <= 0 or not fit.obs[i] or fit.sub is None or fit.prior is None:
            continue
        assert fit.shrunk is not None
        points = fit.weight / scores.wsum[i] * (float(fit.sub[i]) - ref)
        if not ((points < 0) if worst else (points > 0)):
            continue
        d = INDICATORS[fit.name]
        shrunk, mean = fit.shrunk[i] * d.scale, fit.prior.mean * d.scale
        item = {
            "indicator": fit.name,
            "points": rnd(points),
            "observed": fit.display(fit.y[i] / fit.e[i]),
            "shrunk": rnd(shrunk, 4),
            "district": rnd(mean, 4),
            "unit": d.unit,
            "text": f"{fit.name}: {shrunk:.4g} {d.unit} (district {mean:.4g}), {points:+.1f} points",
        }
        found.append((points if worst else -points, fit.name, item))
    return [f[2] for f in sorted(found, key=lambda f: (f[0], f[1]))[:REASONS]]


@dataclass
class CompanyScores:
    """The scored companies (``ids``, sorted), their point scores and draws (draws, companies),
    and each indicator's fit over the companies' pooled counts (in ``ids`` order)."""

    ids: list[str]
    point: Floats
    draws: Floats
    fits: list[IndicatorFit] = field(default_factory=list)


def company_rows(rows: list[EstatePeriod], members: dict[str, list[int]]) -> list[EstatePeriod]:
    """One row per company with scored estates: every indicator's counts and exposures summed over
    them, so a company is measured on all its work at once (an estate with five orders a month says
    little alone, and the company's larger estates do not drown its smaller ones' evidence)."""
    out = []
    for c, idx in members.items():
        if not idx:
            continue
        counts: dict[str, tuple[float, float]] = {}
        for name in INDICATOR_NAMES:
            y = sum(rows[i].counts.get(name, (0.0, 0.0))[0] for i in idx)
            e = sum(rows[i].counts.get(name, (0.0, 0.0))[1] for i in idx)
            counts[name] = (y, e)
        out.append(
            EstatePeriod(
                estate=c,
                name=c,
                company=c,
                households=sum(rows[i].households for i in idx),
                period_id=rows[idx[0]].period_id,
                days=rows[idx[0]].days,
                counts=counts,
            )
        )
    return out


def company_scores(
    rows: list[EstatePeriod], scores: Scores, cfg: RankConfig, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], CompanyScores]:
    """Companies scored as estates are, on their estates' pooled counts (:func:`company_rows`),
    with vetoes. No truth here: how well this recovers the companies' diligence is
    :mod:`rules.rankvalidity`'s."""
    scored = scores.wsum > 0
    ids = sorted({r.company for r in rows})
    members = {c: [i for i, r in enumerate(rows) if r.company == c and scored[i]] for c in ids}
    ranked = [c for c in ids if members[c]]
    pooled = company_rows(rows, members)
    cs = score_estates(pooled, cfg, rng)
    apply_vetoes(cfg, cs)
    cpoint, cdraw = cs.point, cs.draws
    ranks = rank_draws(cdraw, rng)
    order = sorted(range(len(ranked)), key=lambda j: (-round(float(cpoint[j]), 9), ranked[j]))
    out: list[dict[str, Any]] = []
    for c in [*(ranked[j] for j in order), *(c for c in ids if not members[c])]:
        j = ranked.index(c) if members[c] else -1
        out.append(
            {
                "company": c,
                "estates": [rows[i].estate for i in members[c]],
                "households": sum(rows[i].households for i in members[c]),
                "unscored_estates": [
                    r.estate for i, r in enumerate(rows) if r.company == c and not scored[i]
                ],
                "score": rnd(cpoint[j]) if j >= 0 else None,
                "interval": interval(cdraw[:, j]) if j >= 0 else None,
                "rank": order.index(j) + 1 if j >= 0 else None,
                "rank_interval": rank_interval(ranks[:, j]) if j >= 0 else None,
            }
        )
    return out, CompanyScores(ranked, cpoint, cdraw, cs.fits)
