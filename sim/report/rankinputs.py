"""From a run folder to the rankings' inputs: per estate and period, each indicator's count and
its exposure, from what the housing office observes: alerts, work orders, the staff app's reviews
and reports, device health, and its own inspections (:mod:`sim.report.inspections`).

Indicators measure the company, not the hardware: hazards per unit of device exposure (camera-day,
elevator-day, corridor-day), falling objects only once staff confirmed them on the clip; a work
order counts as on time only when staff closed it (not when the hazard went away by itself), a
re-open only when staff had reported it done; whether work really fixed anything comes from the
office's inspections of a sample of closed orders; the repeat veto counts only confirmed repeat
throws left without a visit. An indicator an estate cannot be measured on gets exposure 0 (no
camera: no falling-object rate; no work orders: no timeliness), and the ranking leaves it out
rather than guessing.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.model import Rule
from rules.periods import Period
from rules.rankings import EstatePeriod
from sim.report.inspections import asked_for_work, confirmed_reviews

__all__ = ["RunRecords", "estate_periods"]

DAY = 86400.0


@dataclass
class RunRecords:
    estates: list[dict[str, Any]]  # estates.json
    rules: list[Rule]
    alerts: list[dict[str, Any]]
    workorders: list[dict[str, Any]]
    staff: list[dict[str, Any]]  # staff-app reviews and reports (events.jsonl)
    inspections: list[dict[str, Any]]  # the office's (sim.report.inspections.inspect)
    sites: list[dict[str, Any]]  # its site inspections (sim.report.siteinspections)
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


def estate_periods(run: RunRecords, period: Period) -> list[EstatePeriod]:
    p0, p1 = period.start_day * DAY, min(period.end_day * DAY, run.end_s)
    days = (p1 - p0) / DAY
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

    confirmed = confirmed_reviews(run.staff, p0, p1)
    inspected: dict[str, list[bool]] = defaultdict(list)
    for i in run.inspections:
        if p0 <= i["closed_s"] < p1:
            inspected[i["estate"]].append(bool(i["fixed"]))
    sites: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for v in run.sites:
        if p0 <= v["visit_s"] < p1:
            sites[v["estate"]][0] += v["found"]
            sites[v["estate"]][1] += v["checked"]
    orders = _orders(run, p0, p1)
    unhandled = _unhandled_repeats(run, p0, p1)
    late_ack = _standardised(
        [(w["estate"], w["rule"], not w["ack_in_sla"]) for ws in orders.values() for w in ws]
    )
    late_settle = _standardised(
        [(w["estate"], w["rule"], not w["on_time"]) for ws in orders.values() for w in ws]
    )
    ack_speed = _speed([(w["estate"], w["rule"], w["ack_s"]) for ws in orders.values() for w in ws])
    settle_speed = _speed(
        [(w["estate"], w["rule"], w["settled_s"]) for ws in orders.values() for w in ws]
    )
    failed = _standardised(
        [
            (i["estate"], i["rule_id"], not i["fixed"])
            for i in run.inspections
            if p0 <= i["closed_s"] < p1
        ]
    )
    rows = []
    for est in run.estates:
        eid = est["id"]
        cam_days = _installed_seconds(est, "falling_object_camera", p0, p1) / DAY
        blk_days = _installed_seconds(est, "ebike_blocker", p0, p1) / DAY
        corridor_days = _installed_seconds(est, "clutter_sensor", p0, p1) / DAY
        device_h = _installed_seconds(est, None, p0, p1) / 3600.0
        mine = orders.get(eid, [])
        checks = inspected.get(eid, [])
        done = [w for w in mine if w["done"]]
        counts = {
            "falling_objects": (float(len(confirmed.get(eid, ()))), cam_days),
            "ebike_entries": (float(firings[(eid, eb)]) if eb else 0.0, blk_days if eb else 0.0),
            "clutter_hours": (clutter_s[eid] / 3600.0, corridor_days if cl else 0.0),
            "device_uptime": (max(0.0, device_h - down_s[eid] / 3600.0), device_h),
            "ack_within_sla": (float(sum(w["ack_in_sla"] for w in mine)), float(len(mine))),
            "closed_on_time": (float(sum(w["on_time"] for w in mine)), float(len(mine))),
            "inspection_pass": (float(sum(checks)), float(len(checks))),
            "ack_speed": ack_speed.get(eid, (0.0, 0.0)),
            "settle_speed": settle_speed.get(eid, (0.0, 0.0)),
            "late_acks": late_ack.get(eid, (0.0, 0.0)),
            "late_settlements": late_settle.get(eid, (0.0, 0.0)),
            "failed_inspections": failed.get(eid, (0.0, 0.0)),
            "site_defects": (sites[eid][0], sites[eid][1]) if eid in sites else (0.0, 0.0),
            "reopens": (float(sum(w["reopens"] for w in done)), float(len(done))),
            # per estate-month, so that a quarter is not judged by a month's yardstick
            "repeat_unhandled": (float(unhandled[eid]), days / 30.0 if cam_days > 0 else 0.0),
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


def _standardised(
    outcomes: list[tuple[str, str, bool]],
) -> dict[str, tuple[float, float]]:
    """(estate, kind of order, failed) -> per estate (failures, expected failures), the expected
    ones at the district's failure rate for each kind (indirect standardisation): an estate whose
    orders are mostly of a kind everybody answers late is not worse for it."""
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, kind, bad in outcomes:
        per_kind[kind][0] += int(bad)
        per_kind[kind][1] += 1
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for estate, kind, bad in outcomes:
        fails, n = per_kind[kind]
        out[estate][0] += float(bad)
        out[estate][1] += fails / n
    return {e: (v[0], v[1]) for e, v in out.items()}


def _speed(orders: list[tuple[str, str, float | None]]) -> dict[str, tuple[float, float]]:
    """(estate, kind of order, seconds taken or None if never) -> per estate (sum of the orders'
    speed, orders). An order's speed is the share of the district's other orders of the same kind
    in the period that took longer (ties count half; never counts as slowest): 0.5 is the
    district's middle whatever the mix, and hours of delay at night weigh no more than minutes.
    Both sums are tripled: the rankings treat the indicator as a share of trials, and a share of
    others (spread like a uniform, variance 1/12) varies a third as much as a yes-or-no (1/4 at
    one half), so one order is worth three trials of evidence, not one."""
    per_kind: dict[str, list[float]] = defaultdict(list)
    for _, kind, took in orders:
        per_kind[kind].append(math.inf if took is None else took)
    ranked = {k: sorted(v) for k, v in per_kind.items()}
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for estate, kind, took in orders:
        times = ranked[kind]
        t = math.inf if took is None else took
        others = len(times) - 1
        if others:
            slower = len(times) - bisect.bisect_right(times, t)
            ties = bisect.bisect_right(times, t) - bisect.bisect_left(times, t) - 1
            out[estate][0] += (slower + 0.5 * ties) / others
        else:
            out[estate][0] += 0.5
        out[estate][1] += 1.0
    return {e: (3.0 * v[0], 3.0 * v[1]) for e, v in out.items()}


def _unhandled_repeats(
    run: RunRecords, p0: float, p1: float, after: float = 3 * DAY
) -> dict[str, int]:
    """Repeat-throw work orders opened in the period on throws staff confirmed (at least two of
    the repeat alert's events confirmed on review) that no staff member closed within ``after``:
    a confirmed repeat offender left alone. False alarms of a camera repeat too, but staff dismiss
    them on review, so they never count here; e-bike repeats are left to the e-bike rate."""
    by_id = {r.id: r for r in run.rules}
    confirmed = set().union(*confirmed_reviews(run.staff, 0.0, float("inf")).values())
    staff_closed: dict[str, float] = {}
    for w in run.workorders:
        if w["change"] == "closed" and str(w.get("reason", "")).startswith("staff_"):
            staff_closed.setdefault(w["workorder_id"], float(w["sim_seconds"]))
    out: dict[str, int] = defaultdict(int)
    for a in run.alerts:
        rule = by_id.get(a["rule_id"])
        if rule is None or rule.condition.kind != "repeat" or a["change"] != "firing":
            continue
        source_rule = by_id.get(rule.condition.rule)
        if source_rule is None or "throw" not in source_rule.detects:
            continue
        t = float(a["sim_seconds"])
        if not p0 <= t < p1 or sum(e in confirmed for e in a.get("event_ids", ())) < 2:
            continue
        closed = staff_closed.get(str(a.get("workorder_id")))
        if closed is None or closed > t + after:
            out[a["labels"].get("estate", "")] += 1
    return out


def _orders(run: RunRecords, p0: float, p1: float) -> dict[str, list[dict[str, Any]]]:
    """Work orders opened in the period, per estate, with what became of them: acknowledged in
    time, settled by staff in time (done, or dismissed as a false alarm), re-opened after staff
    reported them done."""
    state: dict[str, dict[str, Any]] = {}
    for w in run.workorders:
        wid = w["workorder_id"]
        if w["change"] in ("opened", "reopened"):
            if w["change"] == "opened" and not p0 <= w["sim_seconds"] < p1:
                continue
            if wid not in state and w["change"] == "reopened":
                continue  # opened before the period
            rec = state.setdefault(
                wid, {"estate": w["estate"], "rule": w["rule_id"], "reopens": 0, "done": False}
            )
            if w["change"] == "reopened":
                rec["reopens"] += int(rec["done"])  # the hazard persisted after "done"
            rec.update(ack_in_sla=False, on_time=False, done=False, acked=False, counts=True)
            rec.update(opened_s=float(w["sim_seconds"]), ack_s=None, settled_s=None)
        elif wid in state:
            rec = state[wid]
            if w["change"] == "acknowledged":
                rec["ack_in_sla"] = bool(w.get("within_sla"))
                rec["acked"] = True
                rec["ack_s"] = float(w["sim_seconds"]) - rec["opened_s"]
            elif w["change"] == "closed":
                # done by staff, or a false alarm dismissed: "not found" leaves the hazard
                settled = w.get("reason") in ("staff_done", "staff_false_alarm")
                rec["on_time"] = settled and bool(w.get("on_time"))
                rec["done"] = w.get("reason") == "staff_done"
                if settled:
                    rec["settled_s"] = float(w["sim_seconds"]) - rec["opened_s"]
                # a hazard gone before anyone was due to answer it asked nothing of the company
                rec["counts"] = w.get("reason") != "hazard_gone" or asked_for_work(w, rec["acked"])
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in state.values():
        if rec["counts"]:
            out[rec["estate"]].append(rec)
    return out
