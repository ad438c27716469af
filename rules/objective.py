"""What a tuning trial scored: metrics pooled over the scored rules, the objective, intervals
across seeds, and the Pareto front of recall, false alerts and time to detect."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rules.space import Objective

__all__ = ["bootstrap", "objective_value", "pareto_front", "pooled_metrics"]


def pooled_metrics(score: Mapping[str, Any], rule_ids: Sequence[str]) -> dict[str, float]:
    """One seed's figures over the scored rules (sums, then ratios: rules weigh by their counts)."""
    rs = [score["rules"][r] for r in rule_ids]
    covered = sum(r["incidents_covered"] for r in rs)
    matched = sum(r["incidents_matched"] for r in rs)
    alerts = sum(r["alerts"] for r in rs)
    true = sum(r["true_alerts"] for r in rs)
    false = sum(r["false_alerts"] for r in rs)
    sev = [(r["severity_weighted_recall"] or 0.0) * r["incidents_covered"] for r in rs]
    ttd_total = sum(r.get("ttd_total_s") or 0.0 for r in rs)
    household_days = float(score["households"]) * float(score["days"])
    return {
        "recall": matched / covered if covered else 0.0,
        "precision": true / alerts if alerts else 0.0,
        "severity_weighted_recall": sum(sev) / covered if covered else 0.0,
        "false_alerts_per_1000_household_days": 1000.0 * false / household_days
        if household_days
        else 0.0,
        "ttd_median_s": ttd_total / matched if matched else 0.0,  # mean over matched incidents
        "misses": float(covered - matched),
        "false_alerts": float(false),
        "delay_hours": ttd_total / 3600.0,
    }


def objective_value(m: Mapping[str, float], objective: Objective) -> float:
    """Lower is better. Cost: weighted misses, false alerts and delay. Constraint: minus the
    maximised metric when the limit holds, +inf when it does not."""
    if objective.kind == "cost":
        w = objective.cost
        return (
            w.miss * m["misses"]
            + w.false_alert * m["false_alerts"]
            + w.delay_hour * m["delay_hours"]
        )
    c = objective.constraint
    assert c is not None
    return -m[c.maximise] if m[c.metric] <= c.at_most else float("inf")


def bootstrap(values: Sequence[float], seed: int, draws: int = 2000) -> tuple[float, float, float]:
    """Mean and a 95% percentile interval of the mean, resampling seeds with replacement."""
    arr = np.asarray(values, dtype=float)
    mean = float(statistics.fmean(arr)) if len(arr) else float("nan")
    if len(arr) < 2 or not np.all(np.isfinite(arr)):
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(draws, len(arr)))
    means = arr[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return mean, float(lo), float(hi)


def pareto_front(points: Sequence[Mapping[str, float]]) -> list[int]:
    """Indices of trials no other trial beats on recall (up), false alerts and delay (down)."""

    def key(p: Mapping[str, float]) -> tuple[float, float, float]:
        return (-p["recall"], p["false_alerts_per_1000_household_days"], p["ttd_median_s"])

    keys = [key(p) for p in points]
    front = []
    for i, a in enumerate(keys):
        dominated = any(
            all(x <= y for x, y in zip(b, a, strict=True)) and b != a
            for j, b in enumerate(keys)
            if j != i
        )
        if not dominated:
            front.append(i)
    return front
