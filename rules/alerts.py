"""Alert state and the records an alert's life writes: pending -> firing -> (acknowledged) -> resolved.

An alert's identity is its rule and key; each time it starts anew after being resolved it is a new
incarnation with its own ``alert_id`` (``rule/key...#n``). Records are plain dicts with a fixed field
order, so ``alerts.jsonl`` is byte-identical across runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rules.beattrack import Track

__all__ = ["MAX_EVENT_IDS", "AlertState", "KeyState", "alert_record", "identity", "iso"]

MAX_EVENT_IDS = 20


def identity(rule_id: str, key: tuple[Any, ...]) -> str:
    """Rule id and key values: an alert's identity (its incarnations add ``#n``)."""
    return "/".join([rule_id, *(str(v) for v in key)])


def iso(epoch: datetime | None, t: float) -> str | None:
    return None if epoch is None else (epoch + timedelta(seconds=round(t, 3))).isoformat()


@dataclass(slots=True)
class AlertState:
    alert_id: str
    rule_id: str
    labels: dict[str, Any]
    severity: str
    started_s: float
    state: str = "pending"
    fired_s: float | None = None
    last_trigger_s: float = 0.0
    cond_false_s: float | None = None  # sustained conditions: when the condition went false
    hits: int = 1
    event_ids: list[str] = field(default_factory=list)
    workorder_id: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("firing", "acknowledged")

    def add_ids(self, ids: list[str]) -> None:
        room = MAX_EVENT_IDS - len(self.event_ids)
        if room > 0:
            self.event_ids.extend(ids[:room])


@dataclass(slots=True)
class KeyState:
    """Everything one rule remembers about one key."""

    alert: AlertState | None = None
    incarnations: int = 0
    last_resolved_s: float | None = None
    # primitive-specific memory
    times: list[tuple[float, str]] = field(default_factory=list)  # count / repeat windows
    since: float | None = None  # duration start / sequence A / absence last seen
    since_ids: list[str] = field(default_factory=list)
    timer: bool = False  # absence: a check is scheduled
    active: bool = False  # threshold: above the raise level and not yet cleared
    labels: dict[str, Any] = field(default_factory=dict)  # set from the key's first event
    runs: dict[tuple[str, int], Track] | None = None  # absence: heartbeat runs (rules.beattrack)


def alert_record(a: AlertState, change: str, t: float, epoch: datetime | None) -> dict[str, Any]:
    return {
        "record": "alert",
        "alert_id": a.alert_id,
        "rule_id": a.rule_id,
        "change": change,
        "state": a.state,
        "severity": a.severity,
        "time": iso(epoch, t),
        "sim_seconds": round(t, 3),
        "labels": a.labels,
        "started_s": round(a.started_s, 3),
        "hits": a.hits,
        "event_ids": list(a.event_ids),
        "workorder_id": a.workorder_id,
    }
