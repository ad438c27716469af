"""The housing office's own checks: which hazards were confirmed, and monthly inspections of work.

Two things a housing office knows that no device tells it:

- **Confirmed incidents.** A falling-object alarm counts once staff confirmed it on the clip
  (``staff_review``, verdict ``confirmed``); birds and laundry dismissed on review do not.
- **Inspections.** Each month the office inspects a sample of the work orders closed in it
  (:data:`INSPECT_SHARE`) that asked the company for work: not an alarm staff dismissed as false on
  the clip, nor a hazard that went away by itself before anyone was due to answer it. Did someone
  really act, and did it fix the problem? The inspector sees
  what happened on site (the truth of the company's response), with an error of its own
  (:data:`INSPECTOR_ERROR`). Which orders are sampled and how the inspector errs follow from the
  order's id and the run's seed alone, so a rerun inspects the same orders the same way.

What the simulation knows beyond this (was the hazard gone, who really threw) stays out of the
rankings: an inspection is a noisy, sampled observation of it, like the office's own.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "INSPECTOR_ERROR",
    "INSPECT_SHARE",
    "asked_for_work",
    "confirmed_reviews",
    "inspect",
    "staff_events",
]

INSPECT_SHARE = 0.6  # of the closed work orders, each month
INSPECTOR_ERROR = 0.05  # the inspector calls a fix wrong (or a failure fixed) this often
_STAFF_TYPES = (b'"type":"staff_review"', b'"type":"staff_done"')


def staff_events(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    """The staff-app reviews and completions among a run's event lines (others are skipped
    without being parsed: heartbeats and detections are most of them)."""
    out = []
    for line in lines:
        if any(t in line[:40] for t in _STAFF_TYPES):
            out.append(json.loads(line))
    return out


def confirmed_reviews(
    staff: Iterable[Mapping[str, Any]], p0: float, p1: float
) -> dict[str, list[str]]:
    """Per estate, the events staff confirmed as real on review within [p0, p1)."""
    out: dict[str, list[str]] = defaultdict(list)
    for e in staff:
        confirms = e.get("type") == "staff_review" and e.get("verdict") == "confirmed"
        if confirms and p0 <= float(e["sim_seconds"]) < p1:
            out[str(e["estate"])].append(str(e["ref_event_id"]))
    return out


def asked_for_work(closed: Mapping[str, Any], acknowledged: bool) -> bool:
    """Whether a closed work order asked the company for work: not a false alarm staff dismissed
    on review, nor a hazard gone before anyone acknowledged it and before the answer was due."""
    reason = closed.get("reason")
    if reason == "staff_false_alarm":
        return False
    vanished = reason == "hazard_gone" and not acknowledged
    return not (vanished and float(closed["sim_seconds"]) <= float(closed.get("ack_due_s", 0.0)))


def _fixed_by(truth: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Trigger event -> whether a company response to it worked (any of them)."""
    out: dict[str, bool] = {}
    for t in truth:
        if t.get("kind") == "response" and t.get("trigger_event"):
            ev = str(t["trigger_event"])
            out[ev] = out.get(ev, False) or bool(t.get("effective"))
    return out


def inspect(
    workorders: Iterable[Mapping[str, Any]],
    alerts: Iterable[Mapping[str, Any]],
    truth: Iterable[Mapping[str, Any]],
    seed: int,
) -> list[dict[str, Any]]:
    """The office's inspections of closed work orders: one record per inspected order, with the
    estate, when it closed and whether the inspector found it fixed."""
    events_of: dict[str, list[str]] = {}
    for a in alerts:
        if a.get("change") == "firing" and a.get("workorder_id"):
            events_of[str(a["alert_id"])] = [str(e) for e in a.get("event_ids", ())]
    fixed = _fixed_by(truth)
    out = []
    seen: set[str] = set()
    acked: set[str] = set()
    for w in workorders:
        if w.get("change") == "acknowledged":
            acked.add(str(w["workorder_id"]))
        if w.get("change") != "closed" or not asked_for_work(w, str(w["workorder_id"]) in acked):
            continue
        wid = str(w["workorder_id"])
        key = f"{wid}@{w['sim_seconds']}"  # a re-opened order closes again: inspected again
        if key in seen:
            continue
        seen.add(key)
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if rng.random() >= INSPECT_SHARE:
            continue
        staff_acted = str(w.get("reason", "")).startswith("staff_")
        works = staff_acted and any(fixed.get(e, False) for e in events_of.get(w["alert_id"], []))
        if rng.random() < INSPECTOR_ERROR:
            works = not works
        out.append(
            {
                "workorder_id": wid,
                "estate": w["estate"],
                "rule_id": w["rule_id"],
                "closed_s": float(w["sim_seconds"]),
                "fixed": works,
            }
        )
    return out
