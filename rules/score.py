"""Every rule scored against the truth: precision, recall, time to detect, and what misses cost.

An alert (an incarnation that reached ``firing``) matches an incident when the incident is of a type
the rule ``detects``, sits at the same place in the hierarchy (every label the alert has - estate,
building, floor, device - agrees with the incident), and the alert fired between the incident's
start and its end plus the rule's ``grace``. Recall counts incidents a device could have seen
(``covered_by`` set); misses split into misses by the device (no event at all) and misses by the
rule (events, but no alert).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.ruleset import RuleSet

__all__ = ["FiredAlert", "fired_alerts", "score_rules"]


@dataclass(slots=True)
class FiredAlert:
    alert_id: str
    rule_id: str
    labels: dict[str, Any]
    fired_s: float
    workorder_id: str | None
    matched: list[str] = field(default_factory=list)


def fired_alerts(records: Iterable[Mapping[str, Any]]) -> list[FiredAlert]:
    out: dict[str, FiredAlert] = {}
    for r in records:
        if r.get("record") == "alert" and r.get("change") == "firing" and r["alert_id"] not in out:
            out[r["alert_id"]] = FiredAlert(
                r["alert_id"],
                r["rule_id"],
                dict(r["labels"]),
                float(r["sim_seconds"]),
                r.get("workorder_id"),
            )
    return list(out.values())


def _same_place(labels: Mapping[str, Any], inc: Mapping[str, Any]) -> bool:
    for name, value in labels.items():
        if name == "device_id":
            if value not in (inc.get("covered_by"), inc.get("device_id")):
                return False
        elif name in ("estate", "building", "floor", "unit") and inc.get(name) not in (None, value):
            return False
    return True


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def score_rules(
    rules: RuleSet,
    alert_records: Iterable[Mapping[str, Any]],
    workorder_records: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    *,
    households: int,
    days: float,
    end_s: float,
) -> dict[str, Any]:
    truth = list(truth)
    incidents = [t for t in truth if t.get("kind") == "incident"]
    lost = {
        eid
        for t in truth
        if t.get("kind") == "fault" and t.get("type") == "loss"
        for eid in t.get("event_ids", ())
    }
    alerts = fired_alerts(alert_records)
    wo_hours = _workorder_hours(workorder_records, end_s)
    household_days = households * days
    out: dict[str, Any] = {}
    for cr in rules.rules:
        rule = cr.rule
        types = set(rule.detects)
        mine = [a for a in alerts if a.rule_id == rule.id]
        pool = [i for i in incidents if i["type"] in types]
        by_estate: dict[str, list[Mapping[str, Any]]] = {}
        for inc in sorted(pool, key=lambda i: (i["start_s"], i["id"])):
            by_estate.setdefault(inc["estate"], []).append(inc)
        starts = {e: [i["start_s"] for i in lst] for e, lst in by_estate.items()}
        first_hit: dict[str, float] = {}
        hits_per_incident: dict[str, int] = {}
        for a in mine:
            estate = a.labels.get("estate")
            lst = by_estate.get(str(estate), [])
            upto = bisect.bisect_right(starts.get(str(estate), []), a.fired_s)
            for inc in lst[:upto]:
                end = inc["end_s"] if inc["end_s"] is not None else end_s
                if a.fired_s <= end + rule.grace and _same_place(a.labels, inc):
                    a.matched.append(inc["id"])
                    hits_per_incident[inc["id"]] = hits_per_incident.get(inc["id"], 0) + 1
                    first_hit[inc["id"]] = min(first_hit.get(inc["id"], a.fired_s), a.fired_s)
        covered = [i for i in pool if i.get("covered_by")]
        caught = [i for i in covered if i["id"] in first_hit]
        missed = [i for i in covered if i["id"] not in first_hit]
        weight_all = sum(float(i.get("severity", 1)) for i in covered)
        weight_hit = sum(float(i.get("severity", 1)) for i in caught)
        ttd = [first_hit[i["id"]] - i["start_s"] for i in caught]
        true_alerts = sum(1 for a in mine if a.matched)
        false_alerts = [a for a in mine if not a.matched]
        out[rule.id] = {
            "detects": sorted(types),
            "alerts": len(mine),
            "true_alerts": true_alerts,
            "false_alerts": len(false_alerts),
            "precision": _r(true_alerts / len(mine)) if mine else None,
            "incidents": len(pool),
            "incidents_covered": len(covered),
            "incidents_matched": len(caught),
            "recall": _r(len(caught) / len(covered)) if covered else None,
            "severity_weighted_recall": _r(weight_hit / weight_all) if weight_all else None,
            "ttd_median_s": _r(_pct(ttd, 0.5), 1),
            "ttd_p90_s": _r(_pct(ttd, 0.9), 1),
            "ttd_total_s": _r(sum(ttd), 1),
            "duplicates_per_incident": _r(
                statistics.fmean(hits_per_incident[i["id"]] - 1 for i in caught) if caught else None
            ),
            "false_alerts_per_1000_household_days": _r(
                1000.0 * len(false_alerts) / household_days if household_days else None
            ),
            "workorder_hours_on_false_alerts": _r(
                sum(wo_hours.get(a.workorder_id, 0.0) for a in false_alerts if a.workorder_id), 2
            ),
            "missed_by_device": sum(1 for i in missed if not i.get("event_ids")),
            "missed_by_rule": sum(1 for i in missed if i.get("event_ids") and not _lost(i, lost)),
            "missed_in_transit": sum(1 for i in missed if i.get("event_ids") and _lost(i, lost)),
        }
    return {
        "households": households,
        "days": days,
        "end_s": end_s,
        "rules": out,
    }


def _lost(incident: Mapping[str, Any], lost: set[str]) -> bool:
    """Some of the events the devices sent about the incident were lost on the way."""
    return any(eid in lost for eid in incident.get("event_ids", ()))


def _workorder_hours(records: Iterable[Mapping[str, Any]], end_s: float) -> dict[str, float]:
    """Hours each work order stood open (every open spell, re-opens included)."""
    opened: dict[str, float] = {}
    hours: dict[str, float] = {}
    for r in records:
        if r.get("record") != "workorder":
            continue
        wid = r["workorder_id"]
        if r["change"] in ("opened", "reopened"):
            opened[wid] = float(r["sim_seconds"])
        elif r["change"] == "closed" and wid in opened:
            hours[wid] = hours.get(wid, 0.0) + (float(r["sim_seconds"]) - opened.pop(wid)) / 3600
    for wid, t in opened.items():
        hours[wid] = hours.get(wid, 0.0) + (end_s - t) / 3600
    return hours
