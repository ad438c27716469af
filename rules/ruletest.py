"""Rule tests in the style of ``promtool test rules``, checking every state, not only firing.

A test lists input events compactly (a time offset, a type, the fields that matter; ``defaults``
fill in the rest) and, at given times, the exact set of open alerts (pending, firing,
acknowledged) and of work orders with their states. The engine runs over the events and its
records are read back at each time; any difference is reported, expected next to got.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from devices.events import DeviceEvent, event_from_python, event_id, explain
from rules.engine import Engine, Record
from rules.model import Duration, format_duration
from rules.ruleset import RuleSet

__all__ = [
    "AlertExpect",
    "CaseResult",
    "RuleTestCase",
    "RuleTestFile",
    "build_events",
    "run_case",
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertExpect(_Strict):
    rule: str
    state: str
    severity: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)  # a subset of the alert's labels


class AlertCheck(_Strict):
    at: Duration
    expect: list[AlertExpect]


class WorkOrderExpect(_Strict):
    rule: str
    state: str


class WorkOrderCheck(_Strict):
    at: Duration
    expect: list[WorkOrderExpect]


class RuleTestCase(_Strict):
    name: str = Field(min_length=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)
    end: Duration | None = None
    alerts: list[AlertCheck] = Field(default_factory=list)
    workorders: list[WorkOrderCheck] = Field(default_factory=list)


class RuleTestFile(_Strict):
    rule_files: list[str] = Field(min_length=1)
    start: AwareDatetime = datetime.fromisoformat("2026-03-02T00:00:00+08:00")
    tests: list[RuleTestCase] = Field(min_length=1)


class CaseResult:
    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.failures


def build_events(case: RuleTestCase, start: datetime) -> list[DeviceEvent]:
    """Expand the compact events: ids and sequence numbers per device, times from offsets.

    Raises ``ValueError`` naming the event index and field when one does not validate."""
    from rules.model import parse_duration

    seqs: dict[str, int] = {}
    out: list[DeviceEvent] = []
    for i, raw in enumerate(case.events):
        doc = {**case.defaults, **raw}
        try:
            at = float(parse_duration(doc.pop("at")))
        except KeyError:
            raise ValueError(f"events[{i}]: missing 'at'") from None
        device = str(doc.get("device_id", "dev"))
        seq = seqs.get(device, 0)
        seqs[device] = seq + 1
        doc.setdefault("device_id", device)
        doc.setdefault("seq", seq)
        doc.setdefault("event_id", event_id(device, int(doc["seq"])))
        doc.setdefault("building", "-")
        doc["sim_seconds"] = at
        doc["time"] = start + timedelta(seconds=at)
        try:
            out.append(event_from_python(doc))
        except ValueError as exc:  # msgspec.ValidationError, reported as one line
            where, message = explain(exc)
            raise ValueError(f"events[{i}]{'.' + where if where else ''}: {message}") from None
    return out


def _alerts_at(records: Iterable[Record], t: float) -> list[Mapping[str, Any]]:
    last: dict[str, Mapping[str, Any]] = {}
    for r in records:
        if r["record"] == "alert" and r["sim_seconds"] <= t:
            last[r["alert_id"]] = r
    return [r for r in last.values() if r["state"] != "resolved"]


def _orders_at(records: Iterable[Record], t: float) -> list[Mapping[str, Any]]:
    last: dict[str, Mapping[str, Any]] = {}
    for r in records:
        if r["record"] == "workorder" and r["sim_seconds"] <= t:
            last[r["workorder_id"]] = r
    return list(last.values())


def _fmt_alert(r: Mapping[str, Any]) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in r["labels"].items())
    return f"{r['rule_id']} {r['state']} {r['severity']} {{{labels}}}"


def _fmt_expect(e: AlertExpect) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in e.labels.items())
    sev = f" {e.severity}" if e.severity else ""
    return f"{e.rule} {e.state}{sev} {{{labels}}}"


def _match_alerts(expect: list[AlertExpect], got: list[Mapping[str, Any]]) -> bool:
    free = list(got)
    for e in expect:
        for r in free:
            if (
                r["rule_id"] == e.rule
                and r["state"] == e.state
                and (e.severity is None or r["severity"] == e.severity)
                and all(r["labels"].get(k) == v for k, v in e.labels.items())
            ):
                free.remove(r)
                break
        else:
            return False
    return not free


def run_case(rules: RuleSet, case: RuleTestCase, start: datetime) -> CaseResult:
    result = CaseResult(case.name)
    events = build_events(case, start)
    checks = [c.at for c in case.alerts] + [c.at for c in case.workorders]
    horizon = max([*checks, *(e.sim_seconds for e in events), 0.0])
    end = case.end if case.end is not None else horizon
    # authored events, often hours apart from several devices: no clock to guard against
    engine = Engine(rules, max_skew=rules.spec.max_skew or math.inf)
    records: list[Record] = []
    for e in sorted(events, key=lambda e: e.sim_seconds):
        records.extend(engine.consume(e))
    records.extend(engine.finish(end))
    for check in case.alerts:
        got = _alerts_at(records, check.at)
        if not _match_alerts(check.expect, got):
            result.failures.append(
                f"alerts at {format_duration(check.at)}:\n"
                f"    expected: {'; '.join(_fmt_expect(e) for e in check.expect) or '(none)'}\n"
                f"    got:      {'; '.join(_fmt_alert(r) for r in got) or '(none)'}"
            )
    for wcheck in case.workorders:
        got_wo = sorted((r["rule_id"], r["state"]) for r in _orders_at(records, wcheck.at))
        want = sorted((e.rule, e.state) for e in wcheck.expect)
        if got_wo != want:
            result.failures.append(
                f"work orders at {format_duration(wcheck.at)}:\n"
                f"    expected: {'; '.join(f'{r} {s}' for r, s in want) or '(none)'}\n"
                f"    got:      {'; '.join(f'{r} {s}' for r, s in got_wo) or '(none)'}"
            )
    return result
