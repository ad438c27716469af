"""The housing office's monthly site inspection of every estate's common areas.

Once in each calendar month the run covers, an inspector walks :data:`SITE_SAMPLE` corridors of
each estate (all of them in a smaller one), on a working day and hour of the month, and notes each
corridor where something is out of order: an emergency light out, a fire door propped open, an
extinguisher missing (:mod:`sim.world.upkeep`). Devices or none, every estate is inspected, so
every estate has an observable record of its upkeep. The inspector sees what is there (the truth
ledger's ``defect`` records open at that moment) with errors of its own: a defect overlooked
(:data:`SITE_MISS`), a corridor in order written up (:data:`SITE_FALSE`). Which corridors, when and
how the inspector errs follow from the estate, the month and the run's seed alone.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np

from rules.periods import periods
from sim.world.scenario import Estate, building_ids

__all__ = ["SITE_FALSE", "SITE_MISS", "SITE_SAMPLE", "site_inspections"]

SITE_SAMPLE = 40  # corridors checked per estate and visit
SITE_MISS = 0.1  # a defect the inspector overlooks
SITE_FALSE = 0.01  # a corridor in order written up anyway
DAY = 86400.0
_HOURS = (9.0, 17.0)  # the inspector's working day


def _corridors(estate: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    est = Estate.model_validate(estate)
    ids = iter(building_ids(est))
    out = []
    for group in est.buildings:
        for _ in range(group.count):
            bid = next(ids)
            out += [
                (bid, u, f) for u in range(1, group.units + 1) for f in range(1, group.floors + 1)
            ]
    return out


def site_inspections(
    scenario: Mapping[str, Any], truth: Iterable[Mapping[str, Any]], seed: int, days: int
) -> list[dict[str, Any]]:
    """One record per estate and calendar month the run covers (any part of): when the inspector
    came, how many corridors were checked and in how many something was found out of order."""
    open_at: dict[tuple[str, str, int, int], list[tuple[float, float]]] = defaultdict(list)
    for t in truth:
        if t.get("kind") == "defect":
            end = t.get("end_s")
            key = (str(t["estate"]), str(t["building"]), int(t["unit"]), int(t["floor"]))
            open_at[key].append((float(t["start_s"]), float("inf") if end is None else end))
    start = date.fromisoformat(str(scenario["start"]))
    months = periods(start, days, ["month"], min_coverage=1e-9)
    out = []
    for grid in scenario["grids"]:
        for estate in grid["estates"]:
            eid = str(estate["id"])
            places = _corridors(estate)
            for month in months:
                rng = np.random.default_rng([seed, zlib.crc32(f"site:{eid}@{month.id}".encode())])
                day = month.start_day + int(rng.integers(month.days))
                when = day * DAY + float(rng.uniform(*_HOURS)) * 3600.0
                k = min(SITE_SAMPLE, len(places))
                picked = sorted(int(i) for i in rng.choice(len(places), size=k, replace=False))
                found = 0
                for i in picked:
                    bid, unit, floor = places[i]
                    spans = open_at.get((eid, bid, unit, floor), ())
                    broken = any(a <= when < b for a, b in spans)
                    if rng.random() < (1.0 - SITE_MISS if broken else SITE_FALSE):
                        found += 1
                out.append({"estate": eid, "visit_s": round(when, 3), "checked": k, "found": found})
    return out
