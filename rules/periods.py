"""The periods a run is ranked on: the run itself, and the calendar months, quarters and
half-years a housing office publishes on.

Every run is ranked over its whole length (period id ``"run"``, kind ``run``), so a run of any
length has lists. Lists are also published per calendar period ("2026-03", "2026-Q2", "2026-H1"),
but a run starts on any day. One rule decides which calendar periods are ranked: a period is ranked
on the days the run covers when they are at least ``min_coverage`` of the period (default one half),
and marked partial when it is not covered whole. Every estate is measured over the same covered
days, and every indicator is a rate over its exposure, so estates stay comparable within the
period. Periods covered less than that are left out rather than ranked on scraps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Literal, NamedTuple

__all__ = [
    "RUN_ID",
    "CalendarKind",
    "Period",
    "PeriodKind",
    "period_kind",
    "periods",
    "ranked_periods",
    "run_period",
]

CalendarKind = Literal["month", "quarter", "half"]
PeriodKind = Literal["run", "month", "quarter", "half"]
RUN_ID = "run"

_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "half": 6}
_ID = {
    "month": re.compile(r"^\d{4}-\d{2}$"),
    "quarter": re.compile(r"^\d{4}-Q[1-4]$"),
    "half": re.compile(r"^\d{4}-H[12]$"),
}


class Period(NamedTuple):
    """One period: ``start_day`` inclusive and ``end_day`` exclusive, in days from the run's start
    date, clipped to the run; ``length`` is the calendar period's full length in days."""

    id: str
    start_day: int
    end_day: int
    kind: PeriodKind
    length: int

    @property
    def days(self) -> int:
        return self.end_day - self.start_day

    @property
    def coverage(self) -> float:
        return self.days / self.length

    @property
    def partial(self) -> bool:
        return self.days < self.length


def period_kind(period_id: str) -> PeriodKind:
    """``"run"`` -> run, ``"2026-03"`` -> month, ``"2026-Q2"`` -> quarter, ``"2026-H1"`` -> half."""
    if period_id == RUN_ID:
        return "run"
    kind: CalendarKind
    for kind in ("month", "quarter", "half"):
        if _ID[kind].match(period_id):
            return kind
    raise ValueError(f"not a period id: {period_id!r} (expected run, 2026-03, 2026-Q2 or 2026-H1)")


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def _label(kind: str, first: date) -> str:
    if kind == "month":
        return f"{first.year}-{first.month:02d}"
    if kind == "quarter":
        return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    return f"{first.year}-H{(first.month - 1) // 6 + 1}"


def run_period(days: int) -> Period:
    """The whole run as one period: days 0 to ``days``, never partial."""
    if days < 1:
        raise ValueError("a run has at least one day")
    return Period(RUN_ID, 0, days, "run", days)


def periods(
    start: date, days: int, kinds: Iterable[CalendarKind], min_coverage: float = 0.5
) -> list[Period]:
    """The calendar periods of each kind (in the order given, each chronological) that the run of
    ``days`` days from ``start`` covers for at least ``min_coverage`` of their days. This is the one
    rule for calendar periods: there is no separate minimum length."""
    if days < 1:
        raise ValueError("a run has at least one day")
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError("min_coverage is in (0, 1]")
    out: list[Period] = []
    for kind in dict.fromkeys(kinds):
        step = _MONTHS[kind]
        first = date(start.year, (start.month - 1) // step * step + 1, 1)
        while (first - start).days < days:
            nxt = _add_months(first, step)
            lo = max((first - start).days, 0)
            hi = min((nxt - start).days, days)
            length = (nxt - first).days
            if hi - lo >= min_coverage * length:
                out.append(Period(_label(kind, first), lo, hi, kind, length))
            first = nxt
    return out


def ranked_periods(
    start: date, days: int, kinds: Iterable[CalendarKind], min_coverage: float = 0.5
) -> list[Period]:
    """Every period a run is ranked on: the run itself first, then :func:`periods`."""
    return [run_period(days), *periods(start, days, kinds, min_coverage)]
