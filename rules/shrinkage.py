"""Empirical-Bayes shrinkage toward the district mean, and posterior draws.

Why: a tiny estate with one falling object in a short month has the worst raw rate in the district
and almost no evidence. Each estate's rate is pulled toward the district mean by as much as its own
exposure is thin, with the pull strength estimated from how much estates really differ.

Rates (counts ``y_i`` over exposure ``e_i``): Poisson-gamma. With the pooled mean ``m = Σy/Σe``,
``s² = Σ e_i (y_i/e_i − m)² / Σe`` and the mean exposure ``ē = Σe/n``, the between-estate variance
is estimated by moments (Marshall 1991) as ``v = s² − m/ē``; the prior is ``Gamma(a, b)`` with
``a/b = m`` and ``a/b² = v`` (``b = m/v``, ``a = m²/v``), and the posterior of estate ``i`` is
``Gamma(a + y_i, b + e_i)`` (rate parameter), posterior mean ``(a + y_i)/(b + e_i)``.

Proportions (successes ``y_i`` of ``n_i``): beta-binomial. With ``p = Σy/Σn``,
``s² = Σ n_i (y_i/n_i − p)² / Σn`` and ``n̄ = Σn/n``: ``v = s² − p(1 − p)/n̄``; the prior is
``Beta(pM, (1 − p)M)`` with ``M = p(1 − p)/v − 1``; posterior ``Beta(α + y_i, β + n_i − y_i)``.

Fallback: when ``v ≤ 0`` (the spread is no more than chance would give) or fewer than 3 estates
observe the indicator, the moments say nothing useful, and a prior of fixed strength is used: worth
``fallback_strength`` times the mean exposure of an observing estate, at the pooled mean
(``b = S``, ``a = mS``; ``M = S``, with ``S = fallback_strength · ē``). With the default 1.0 an
average estate's estimate is half its own rate and half the district's. The prior says which.

A district with no events at all has ``m = 0``: the mean is floored at half an event over the
district's exposure (``0.5/Σe``; proportions are kept ``0.5/(Σn + 1)`` away from 0 and 1), so every
posterior stays proper.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rules.rankconfig import Family

__all__ = ["Prior", "draw", "fit_prior", "posterior_mean", "stable_hash"]

Floats = NDArray[np.float64]
MIN_ESTATES = 3


@dataclass(frozen=True)
class Prior:
    """A fitted prior: ``Gamma(alpha, beta)`` (shape, rate) for rates, ``Beta(alpha, beta)`` for
    proportions. ``fallback`` is None when the moment estimate was used, else why it was not."""

    family: Family
    alpha: float
    beta: float
    mean: float
    between_var: float
    observed_by: int
    fallback: str | None

    @property
    def strength(self) -> float:
        """The prior's worth in exposure units (``b``; ``α + β``)."""
        return self.beta if self.family == "rate" else self.alpha + self.beta


def fit_prior(family: Family, y: Floats, e: Floats, fallback_strength: float) -> Prior:
    """Fit the district prior by moments over the estates that observe the indicator (``e > 0``)."""
    y = np.asarray(y, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    if y.shape != e.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("fit_prior needs equal, non-empty 1-d counts and exposures")
    if np.any(e <= 0) or np.any(y < 0):
        raise ValueError("fit_prior takes observing estates only: exposure > 0, counts >= 0")
    n = len(y)
    total_y, total_e = float(y.sum()), float(e.sum())
    raw = total_y / total_e
    mean_e = total_e / n
    s2 = float(np.sum(e * (y / e - raw) ** 2) / total_e)
    if family == "rate":
        mean = max(raw, 0.5 / total_e)
        v = s2 - raw / mean_e
    else:
        eps = 0.5 / (total_e + 1.0)
        mean = min(max(raw, eps), 1.0 - eps)
        v = s2 - raw * (1.0 - raw) / mean_e
    reason: str | None = None
    if n < MIN_ESTATES:
        reason = f"only {n} estate(s) observe it; the moment estimate needs {MIN_ESTATES}"
    elif v <= 0:
        reason = f"between-estate variance estimate not positive ({v:.3g})"
    if reason is not None:
        strength = fallback_strength * mean_e
        if family == "rate":
            return Prior(family, mean * strength, strength, mean, v, n, reason)
        return Prior(family, mean * strength, (1.0 - mean) * strength, mean, v, n, reason)
    if family == "rate":
        b = mean / v
        return Prior(family, mean * b, b, mean, v, n, None)
    m_strength = max(mean * (1.0 - mean) / v - 1.0, 1e-6)
    return Prior(family, mean * m_strength, (1.0 - mean) * m_strength, mean, v, n, None)


def _posterior(prior: Prior, y: Floats, e: Floats) -> tuple[Floats, Floats]:
    if prior.family == "rate":
        return prior.alpha + y, prior.beta + e
    return prior.alpha + y, prior.beta + (e - y)


def posterior_mean(prior: Prior, y: Floats, e: Floats) -> Floats:
    """Each estate's shrunk rate (per exposure unit) or proportion."""
    a, b = _posterior(prior, np.asarray(y, np.float64), np.asarray(e, np.float64))
    return a / b if prior.family == "rate" else a / (a + b)


def draw(prior: Prior, y: Floats, e: Floats, rng: np.random.Generator, size: int) -> Floats:
    """``size`` posterior draws per estate: an array of shape (size, estates)."""
    a, b = _posterior(prior, np.asarray(y, np.float64), np.asarray(e, np.float64))
    shape = (size, len(a))
    if prior.family == "rate":
        return rng.gamma(a, 1.0 / b, size=shape)
    return rng.beta(a, b, size=shape)


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
