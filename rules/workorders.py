"""Work orders: what an alert asks of a property team, and how the team answered.

A firing alert with a ``workorder`` action opens one (or re-opens the last one of the same rule and
key if it closed less than ``reopen_within`` ago). Staff check-ins on the property app
(``staff_arrived``, referring to an alarm event of the alert) acknowledge it; ``staff_done`` closes
it, and so does the hazard itself going away (a sustained alert resolving). Missing an SLA writes
an ``ack_overdue`` / ``close_overdue`` record.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.alerts import AlertState, iso
from rules.model import WorkOrderSpec

__all__ = ["WorkOrder", "WorkOrderBook", "workorder_figures", "workorder_prefix"]


@dataclass(slots=True)
class WorkOrder:
    workorder_id: str
    alert_id: str
    rule_id: str
    identity: str  # rule + key: what re-opens it
    estate: str
    team: str
    spec: WorkOrderSpec
    opened_s: float
    state: str = "opened"
    acked_s: float | None = None
    closed_s: float | None = None
    reopens: int = 0

    @property
    def ack_due_s(self) -> float:
        return self.opened_s + self.spec.ack_sla

    @property
    def close_due_s(self) -> float:
        return self.opened_s + self.spec.close_sla


class WorkOrderBook:
    """All work orders of an engine; the engine schedules the SLA timers it asks for."""

    def __init__(self) -> None:
        self.orders: dict[str, WorkOrder] = {}
        self.last_by_identity: dict[str, str] = {}
        self._next = 1
        # Work-order ids are ``{prefix}{n:06d}``: ``WO000001`` for a single engine; engines that
        # split a district (``rules serve --partition K/N``) each number with a prefix of their
        # own (:func:`workorder_prefix`), so their ids never collide.
        self.prefix = "WO"

    def record(
        self, wo: WorkOrder, change: str, t: float, epoch: datetime | None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "record": "workorder",
            "workorder_id": wo.workorder_id,
            "alert_id": wo.alert_id,
            "rule_id": wo.rule_id,
            "estate": wo.estate,
            "team": wo.team,
            "change": change,
            "state": wo.state,
            "time": iso(epoch, t),
            "sim_seconds": round(t, 3),
            "ack_due_s": round(wo.ack_due_s, 3),
            "close_due_s": round(wo.close_due_s, 3),
            "reopens": wo.reopens,
            **extra,
        }

    def open_for(
        self,
        alert: AlertState,
        identity: str,
        spec: WorkOrderSpec,
        t: float,
        epoch: datetime | None,
    ) -> tuple[WorkOrder, dict[str, Any]]:
        last_id = self.last_by_identity.get(identity)
        last = self.orders.get(last_id) if last_id else None
        if (
            last is not None
            and last.closed_s is not None
            and t - last.closed_s <= spec.reopen_within
        ):
            last.state = "reopened"
            last.reopens += 1
            last.alert_id = alert.alert_id
            last.opened_s = t
            last.acked_s = None
            last.closed_s = None
            alert.workorder_id = last.workorder_id
            return last, self.record(last, "reopened", t, epoch)
        wid = f"{getattr(self, 'prefix', 'WO')}{self._next:06d}"
        self._next += 1
        wo = WorkOrder(
            wid,
            alert.alert_id,
            alert.rule_id,
            identity,
            str(alert.labels.get("estate", "")),
            spec.team,
            spec,
            t,
        )
        self.orders[wid] = wo
        self.last_by_identity[identity] = wid
        alert.workorder_id = wid
        return wo, self.record(wo, "opened", t, epoch)

    def acknowledge(self, wid: str, t: float, epoch: datetime | None) -> dict[str, Any] | None:
        wo = self.orders.get(wid)
        if wo is None or wo.acked_s is not None or wo.closed_s is not None:
            return None
        wo.acked_s = t
        wo.state = "acknowledged"
        return self.record(wo, "acknowledged", t, epoch, within_sla=t <= wo.ack_due_s)

    def close(
        self, wid: str, t: float, epoch: datetime | None, reason: str
    ) -> dict[str, Any] | None:
        wo = self.orders.get(wid)
        if wo is None or wo.closed_s is not None:
            return None
        wo.closed_s = t
        wo.state = "closed"
        return self.record(wo, "closed", t, epoch, reason=reason, on_time=t <= wo.close_due_s)

    def check_sla(
        self, wid: str, which: str, due: float, epoch: datetime | None
    ) -> dict[str, Any] | None:
        """An SLA timer fired: an overdue record if that SLA (still the current one) was missed."""
        wo = self.orders.get(wid)
        if wo is None:
            return None
        if which == "ack" and wo.acked_s is None and wo.closed_s is None and due == wo.ack_due_s:
            return self.record(wo, "ack_overdue", due, epoch)
        if which == "close" and wo.closed_s is None and due == wo.close_due_s:
            return self.record(wo, "close_overdue", due, epoch)
        return None


def workorder_prefix(partition: tuple[int, int] | None) -> str:
    """The prefix of work-order ids: ``WO`` alone, ``WO-p1of2-`` for partition 1 of 2."""
    if partition is None:
        return "WO"
    k, n = partition
    return f"WO-p{k}of{n}-"


def workorder_figures(orders: list[WorkOrder], end_s: float) -> dict[str, Any]:
    """Response figures: acknowledged within SLA, closed on time, re-opens, median times."""
    n = len(orders)
    acked = [w for w in orders if w.acked_s is not None]
    closed = [w for w in orders if w.closed_s is not None]
    ack_in = sum(1 for w in acked if w.acked_s is not None and w.acked_s <= w.ack_due_s)
    on_time = sum(1 for w in closed if w.closed_s is not None and w.closed_s <= w.close_due_s)
    ack_min = [(w.acked_s - w.opened_s) / 60 for w in acked if w.acked_s is not None]
    close_h = [(w.closed_s - w.opened_s) / 3600 for w in closed if w.closed_s is not None]
    return {
        "opened": n,
        "acknowledged": len(acked),
        "ack_within_sla": round(ack_in / n, 4) if n else None,
        "closed": len(closed),
        "closed_on_time": round(on_time / n, 4) if n else None,
        "reopened": sum(w.reopens for w in orders),
        "still_open": sum(1 for w in orders if w.closed_s is None),
        "median_ack_minutes": round(statistics.median(ack_min), 2) if ack_min else None,
        "median_close_hours": round(statistics.median(close_h), 3) if close_h else None,
        "end_s": round(end_s, 3),
    }
