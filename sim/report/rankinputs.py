"""From a run folder to the rankings' inputs: per estate and period, each indicator's count and
its exposure — from what the housing office observes (alerts, work orders, device health), plus
the truth only where the issue asks for it (was the hazard really gone when the order closed).

An indicator an estate cannot be measured on gets exposure 0 (no camera: no falling-object rate;
no work orders: no timeliness), and the ranking leaves it out rather than guessing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.model import Rule
from rules.periods import Period
from rules.rankings import EstatePeriod

__all__ = ["RunRecords", "estate_periods"]

DAY = 86400.0
KIND_OF = {
    "throw": "falling_object_camera",
    "ebike_entry": "ebike_blocker",
    "clutter": "clutter_sensor",
}


@dataclass
class RunRecords:
    estates: list[dict[str, Any]]  # estates.json
    rules: list[Rule]
    alerts: list[dict[str, Any]]
    workorders: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    end_s: float


def _source_rule(rules: list[Rule], incident: str, kind: str | None = None) -> str | None:
    """The first non-repeat rule that detects ``incident`` (and has condition ``kind``)."""
    for r in rules:
        kind_ok = kind is None or r.condition.kind == kind
        if incident in r.detects and r.condition.kind != "repeat" and kind_ok:
            return r.id
    return None


def _spans(
    alerts: Iterable[Mapping[str, Any]], rule_ids: set[str], end_s: float
) -> dict[str, list[tuple[float, float, Mapping[str, Any]]]]:
    """Firing spans (start, end, firing record) per alert id of the given rules."""
    start: dict[str, tuple[float, Mapping[str, Any]]] = {}
    out: dict[str, list[tuple[float, float, Mapping[str, Any]]]] = defaultdict(list)
    for a in alerts:
        if a["rule_id"] not in rule_ids:
            continue
        if a["change"] == "firing":
            start[a["alert_id"]] = (a["sim_seconds"], a)
        elif a["change"] == "resolved" and a["alert_id"] in start:
            t0, rec = start.pop(a["alert_id"])
            out[a["alert_id"]].append((t0, a["sim_seconds"], rec))
    for aid, (t0, rec) in start.items():
        out[aid].append((t0, end_s, rec))
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _installed_seconds(est: Mapping[str, Any], kind: str | None, p0: float, p1: float) -> float:
    """Device-seconds of the given kind (all kinds when None) installed within [p0, p1)."""
    total = 0.0
    for d in est["devices"]:
        if (kind is None or d["kind"] == kind) and d["installed_s"] is not None:
            total += _overlap(d["installed_s"], float("inf"), p0, p1)
    return total


def _covered_days(est: Mapping[str, Any], kind: str, p0: float, p1: float) -> float:
    """Days of the period on which at least one device of this kind watched the estate."""
    first = min(
        (
            d["installed_s"]
            for d in est["devices"]
            if d["kind"] == kind and d["installed_s"] is not None
        ),
        default=None,
    )
    return 0.0 if first is None else _overlap(first, float("inf"), p0, p1) / DAY


def estate_periods(run: RunRecords, period: Period) -> list[EstatePeriod]:
    p0, p1 = period.start_day * DAY, min(period.end_day * DAY, run.end_s)
    days = (p1 - p0) / DAY
    fo = _source_rule(run.rules, "throw")
    eb = _source_rule(run.rules, "ebike_entry")
    cl = _source_rule(run.rules, "clutter", "duration")
    health = {r.id for r in run.rules if {"device_silent", "device_fault"} & set(r.detects)}

    firings: dict[tuple[str, str], int] = defaultdict(int)  # (estate, rule) -> firings in period
    for a in run.alerts:
        if a["change"] == "firing" and p0 <= a["sim_seconds"] < p1:
            firings[(a["labels"].get("estate", ""), a["rule_id"])] += 1
    clutter_s: dict[str, float] = defaultdict(float)
    for spans in _spans(run.alerts, {cl} if cl else set(), run.end_s).values():
        for t0, t1, rec in spans:
            clutter_s[rec["labels"].get("estate", "")] += _overlap(t0, t1, p0, p1)
    down_s: dict[str, float] = defaultdict(float)
    for spans in _spans(run.alerts, health, run.end_s).values():
        for t0, t1, rec in spans:
            down_s[rec["labels"].get("estate", "")] += _overlap(t0, t1, p0, p1)

    orders = _orders(run, p0, p1)
    unstopped = _unstopped_repeats(run, p0, p1)
    rows = []
    for est in run.estates:
        eid = est["id"]
        cam_days = _covered_days(est, "falling_object_camera", p0, p1)
        blk_days = _covered_days(est, "ebike_blocker", p0, p1)
        corridor_days = _installed_seconds(est, "clutter_sensor", p0, p1) / DAY
        device_h = _installed_seconds(est, None, p0, p1) / 3600.0
        mine = orders.get(eid, [])
        closed = [w for w in mine if w["closed"]]
        judged = [w for w in closed if w["resolved"] is not None]
        can_repeat = cam_days > 0 or blk_days > 0
        counts = {
            "falling_objects": (
                float(firings[(eid, fo)]) if fo else 0.0,
                est["households"] * cam_days if fo else 0.0,
            ),
            "ebike_entries": (
                float(firings[(eid, eb)]) if eb else 0.0,
                est["households"] * blk_days if eb else 0.0,
            ),
            "clutter_hours": (clutter_s[eid] / 3600.0, corridor_days if cl else 0.0),
            "device_uptime": (max(0.0, device_h - down_s[eid] / 3600.0), device_h),
            "ack_within_sla": (float(sum(w["ack_in_sla"] for w in mine)), float(len(mine))),
            "closed_on_time": (float(sum(w["on_time"] for w in mine)), float(len(mine))),
            "true_resolution": (float(sum(w["resolved"] for w in judged)), float(len(judged))),
            "reopens": (float(sum(w["reopens"] for w in mine)), float(len(mine))),
            # per estate-month, so that a quarter is not judged by a month's yardstick
            "repeat_unhandled": (float(unstopped[eid]), days / 30.0 if can_repeat else 0.0),
        }
        rows.append(
            EstatePeriod(
                estate=eid,
                name=est["name"],
                company=est["company"],
                households=est["households"],
                period_id=period.id,
                days=round(days),
                counts=counts,
            )
        )
    return rows


def _unstopped_repeats(
    run: RunRecords, p0: float, p1: float, after: float = 7 * DAY
) -> dict[str, int]:
    """Falling-object repeat-offender alerts in the period after which the thrower carried on: the
    source rule fired again for the same facade within ``after`` (the joint visit with the police
    did not stop it). E-bike repeats are left to the e-bike rate: they are common, and not a veto."""
    by_id = {r.id: r for r in run.rules}
    fires: dict[tuple[str, tuple[Any, ...]], list[float]] = defaultdict(list)
    for a in run.alerts:
        if a["change"] == "firing":
            fires[(a["rule_id"], tuple(sorted(a["labels"].items())))].append(a["sim_seconds"])
    out: dict[str, int] = defaultdict(int)
    for a in run.alerts:
        rule = by_id.get(a["rule_id"])
        if rule is None or rule.condition.kind != "repeat" or a["change"] != "firing":
            continue
        source_rule = by_id.get(rule.condition.rule)
        if source_rule is None or "throw" not in source_rule.detects:
            continue
        t = a["sim_seconds"]
        if not p0 <= t < p1:
            continue
        source = (rule.condition.rule, tuple(sorted(a["labels"].items())))
        if any(t < s <= t + after for s in fires.get(source, ())):
            out[a["labels"].get("estate", "")] += 1
    return out


def _orders(run: RunRecords, p0: float, p1: float) -> dict[str, list[dict[str, Any]]]:
    """Work orders opened in the period, per estate, with what became of them."""
    repeat_rules = {r.id for r in run.rules if r.condition.kind == "repeat"}
    incident_of: dict[str, Mapping[str, Any]] = {}
    for t in run.truth:
        if t.get("kind") == "incident":
            for eid in t.get("event_ids", ()):
                incident_of[eid] = t
    trigger: dict[str, list[str]] = {}
    for a in run.alerts:
        if a["change"] == "firing" and a.get("workorder_id"):
            trigger[a["alert_id"]] = list(a.get("event_ids", ()))
    state: dict[str, dict[str, Any]] = {}
    for w in run.workorders:
        wid = w["workorder_id"]
        if w["change"] in ("opened", "reopened"):
            if w["change"] == "opened" and not p0 <= w["sim_seconds"] < p1:
                continue
            rec = state.setdefault(
                wid, {"estate": w["estate"], "reopens": 0, "repeat": w["rule_id"] in repeat_rules}
            )
            rec.update(
                alert=w["alert_id"],
                opened=w["sim_seconds"],
                ack_in_sla=False,
                on_time=False,
                closed=None,
            )
            if w["change"] == "reopened":
                rec["reopens"] += 1
        elif wid in state:
            rec = state[wid]
            if w["change"] == "acknowledged":
                rec["ack_in_sla"] = bool(w.get("within_sla"))
            elif w["change"] == "closed":
                rec["closed"] = w["sim_seconds"]
                rec["on_time"] = bool(w.get("on_time"))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in state.values():
        rec["resolved"] = None
        if rec["closed"] is not None:
            incidents = [incident_of[e] for e in trigger.get(rec["alert"], []) if e in incident_of]
            if incidents:  # a real hazard: was it gone when the order closed?
                rec["resolved"] = all(
                    i["end_s"] is not None and i["end_s"] <= rec["closed"] + 60.0 for i in incidents
                )
        out[rec["estate"]].append(rec)
    return out
