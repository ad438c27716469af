"""Daily and weekly rhythms: when in the day things happen, and which days are weekends.

Each sampler takes the caller's own Generator and returns an hour of the day in [0, 24).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "DAY",
    "TZ",
    "evening_hour",
    "evening_return_hour",
    "is_weekend",
    "start_datetime",
    "uniform_hour",
]

DAY = 86400.0
TZ = ZoneInfo("Asia/Shanghai")


def start_datetime(start: date) -> datetime:
    """Midnight of the scenario's first day, Shanghai time."""
    return datetime.combine(start, time(0, 0), tzinfo=TZ)


def is_weekend(start: date, day: int) -> bool:
    return (start + timedelta(days=day)).weekday() >= 5


def _clip(h: float) -> float:
    return min(max(h, 0.0), 23.999)


def evening_return_hour(rng: np.random.Generator) -> float:
    """E-bike returns: mostly the evening commute, some at lunch, some late."""
    u = rng.random()
    if u < 0.7:
        return _clip(rng.normal(18.6, 1.1))
    if u < 0.85:
        return _clip(rng.normal(12.3, 0.8))
    return _clip(rng.normal(21.5, 0.9))


def evening_hour(rng: np.random.Generator, mean: float = 19.0, sd: float = 3.0) -> float:
    """Household activity (throwing, putting things in the corridor): an evening-heavy day."""
    h = rng.normal(mean, sd)
    while h < 6.0 or h >= 24.0:
        h = rng.normal(mean, sd)
    return float(h)


def uniform_hour(rng: np.random.Generator, lo: float = 0.0, hi: float = 24.0) -> float:
    return float(rng.uniform(lo, hi))
