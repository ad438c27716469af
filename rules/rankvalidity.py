"""How well a period's ranking recovers the truth: the ``validity`` block of ``rankings.json``.

The simulation knows each property company's latent ``diligence``; a housing office does not. The
ranking is made from what the office can observe (:mod:`rules.rankscore`), and only afterwards is
it held against the truth here. Nothing in this module feeds back into a score, a draw or a list:
it reads the finished :class:`~rules.rankscore.Scores`, company scores and black list, and it takes
no random numbers (so the generator the ranking uses is left exactly where it was).

Per period:

- ``kendall_tau``: Kendall's tau-b of the companies' scores against their diligence, with its
  ``interval`` (the central 95%) over the posterior draws of the company scores;
- ``indicators``: each configured indicator's tau alone: the companies ranked on that indicator's
  sub-score only (over the company's pooled counts, as company scores are made), against
  diligence; None where fewer than :data:`MIN_COMPANIES` companies can be measured;
- ``estate_spearman``: Spearman's rho of the estates' scores against their company's diligence;
- ``diligent_black_listed``: the black-listed estates whose company has diligence of at least
  :data:`DILIGENT` (it should be empty);
- ``stability`` (:func:`add_stability`, over all periods): against the previous period of the
  same kind, the Jaccard overlap of the red and of the black lists and the rank correlation of the
  estates' scores; None for the first period of its kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.rankscore import CompanyScores, EstatePeriod, Scores, interval, rnd
from rules.rankstats import kendall_tau, kendall_tau_draws, spearman, stability

__all__ = ["DILIGENT", "MIN_COMPANIES", "add_stability", "period_validity"]

DILIGENT = 0.75  # issue 13: no estate of a company this diligent belongs on a black list
MIN_COMPANIES = 3  # an indicator's tau alone over fewer companies says nothing
MIN_ESTATES = 3


def _finite(x: float) -> float | None:
    return rnd(x, 4) if math.isfinite(x) else None


def _company_tau(comp: CompanyScores, diligence: Mapping[str, float]) -> dict[str, Any]:
    both = [j for j, c in enumerate(comp.ids) if c in diligence]
    dil = np.array([diligence[comp.ids[j]] for j in both], dtype=np.float64)
    tau = kendall_tau(comp.point[both], dil) if len(both) >= 2 else math.nan
    taus = kendall_tau_draws(comp.draws[:, both], dil)
    ok = taus[np.isfinite(taus)]
    return {
        "kendall_tau": _finite(tau),
        "interval": interval(ok) if len(ok) else None,
        "companies": len(both),
        "missing_diligence": [c for c in comp.ids if c not in diligence],
    }


def _indicator_taus(
    comp: CompanyScores, diligence: Mapping[str, float]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fit in comp.fits:
        values: list[float] = []
        truth: list[float] = []
        if fit.sub is not None:
            for j, c in enumerate(comp.ids):
                if c in diligence and fit.obs[j] and math.isfinite(fit.sub[j]):
                    values.append(float(fit.sub[j]))
                    truth.append(diligence[c])
        tau = kendall_tau(values, truth) if len(values) >= MIN_COMPANIES else math.nan
        out[fit.name] = {
            "weight": fit.weight,
            "kendall_tau": _finite(tau),
            "companies": len(values),
        }
    return out


def period_validity(
    rows: list[EstatePeriod],
    scores: Scores,
    comp: CompanyScores,
    black_list: Sequence[Mapping[str, Any]],
    diligence: Mapping[str, float],
) -> dict[str, Any]:
    """The validity block of one period (``stability`` is None until :func:`add_stability`)."""
    est = [
        i for i, r in enumerate(rows) if scores.wsum[i] > 0 and r.company in diligence
    ]  # scored estates whose company's diligence is known
    rho = math.nan
    if len(est) >= MIN_ESTATES:
        rho = spearman(scores.point[est], [diligence[rows[i].company] for i in est])
    return {
        **_company_tau(comp, diligence),
        "what": "Kendall tau-b between the companies' scores and their latent diligence;"
        " interval: the central 95% over posterior draws",
        "indicators": _indicator_taus(comp, diligence),
        "estate_spearman": _finite(rho),
        "estates": len(est),
        "diligent_at": DILIGENT,
        "diligent_black_listed": [
            {
                "estate": e["estate"],
                "name": e.get("name"),
                "company": e["company"],
                "diligence": diligence[e["company"]],
            }
            for e in black_list
            if diligence.get(e["company"], -math.inf) >= DILIGENT
        ],
        "stability": None,
    }


def add_stability(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill each period's ``validity.stability`` from the previous period of its kind (None for
    the first), and return :func:`rules.rankstats.stability`'s list for the whole run."""
    pairs = stability(results)
    by_to = {s["to"]: s for s in pairs}
    for r in results:
        v = r.get("validity")
        if not isinstance(v, dict):
            continue
        s = by_to.get(r["period"]["id"])
        v["stability"] = (
            None
            if s is None
            else {
                "previous": s["from"],
                "red_jaccard": s["red_jaccard"],
                "black_jaccard": s["black_jaccard"],
                "score_spearman": s["score_spearman"],
                "estates_compared": s["estates_compared"],
            }
        )
    return pairs
