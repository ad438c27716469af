"""The ground-truth ledger: every true incident, every false trigger, every staff response.

Each record holds a :class:`devices.base.Cause`, onto which devices write the ids of the events the
stimulus caused. Incidents with no event ids are misses. Stimuli that fooled nobody (a stroller the
blocker let pass) are not false triggers and leave no record. Truth is written to ``truth.jsonl``
and never travels with the events.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from devices.base import Cause, Clock

__all__ = ["TruthLedger", "TruthRecord"]


@dataclass(slots=True)
class TruthRecord:
    kind: str  # "incident" | "false_trigger" | "response" | "fault" (injected, sim/world/faults.py)
    type: str
    cause: Cause
    start_s: float
    estate: str
    place: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)
    end_s: float | None = None
    covered_by: str | None = None  # the device that could have seen it (incidents)
    miss_reason: str | None = None

    @property
    def id(self) -> str:
        return self.cause.id

    def to_json(self, clock: Clock) -> str:
        doc: dict[str, Any] = {
            "id": self.cause.id,
            "kind": self.kind,
            "type": self.type,
            "estate": self.estate,
            **self.place,
            "start": clock.at(round(self.start_s, 3)).isoformat(),
            "start_s": round(self.start_s, 3),
            "end": None if self.end_s is None else clock.at(round(self.end_s, 3)).isoformat(),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            **self.detail,
        }
        if self.kind == "incident":
            doc["covered_by"] = self.covered_by
            doc["detected"] = bool(self.cause.event_ids)
            doc["miss_reason"] = None if self.cause.event_ids else (self.miss_reason or "no_device")
        doc["event_ids"] = self.cause.event_ids
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class TruthLedger:
    """Records in creation order (deterministic under SimPy's tie-breaking)."""

    def __init__(self) -> None:
        self._records: list[TruthRecord] = []
        self._next = 0

    def _new_cause(self) -> Cause:
        cid = f"T{self._next:07d}"
        self._next += 1
        return Cause(cid)

    def open(
        self,
        kind: str,
        type_: str,
        now: float,
        estate: str,
        place: dict[str, Any] | None = None,
        **detail: Any,
    ) -> TruthRecord:
        rec = TruthRecord(kind, type_, self._new_cause(), now, estate, place or {}, detail)
        self._records.append(rec)
        return rec

    def discard_if_silent(self, rec: TruthRecord) -> None:
        """Drop a false-trigger candidate that caused no event (it fooled nobody)."""
        if not rec.cause.event_ids and self._records and self._records[-1] is rec:
            self._records.pop()
        elif not rec.cause.event_ids:
            rec.kind = "_dropped"

    def records(self) -> Iterator[TruthRecord]:
        return (r for r in self._records if r.kind != "_dropped")

    def counts(self) -> dict[str, Any]:
        inc: Counter[str] = Counter()
        det: Counter[str] = Counter()
        miss: Counter[str] = Counter()
        false: Counter[str] = Counter()
        resp: Counter[str] = Counter()
        faults: Counter[str] = Counter()
        for r in self.records():
            if r.kind == "incident":
                inc[r.type] += 1
                if r.cause.event_ids:
                    det[r.type] += 1
                elif r.covered_by is not None:
                    miss[r.type] += 1
            elif r.kind == "false_trigger":
                if r.cause.event_ids:
                    false[f"{r.type}:{r.detail.get('cause', '?')}"] += 1
            elif r.kind == "response":
                resp[r.type] += 1
            elif r.kind == "fault":  # delivery faults count events, device faults devices
                faults[r.type] += int(r.detail.get("events", 1))
        return {
            "incidents": dict(sorted(inc.items())),
            "detected": dict(sorted(det.items())),
            "missed_covered": dict(sorted(miss.items())),
            "false_triggers": dict(sorted(false.items())),
            "responses": dict(sorted(resp.items())),
            **({"faults": dict(sorted(faults.items()))} if faults else {}),
        }

    def write(self, fh: IO[str], clock: Clock) -> int:
        n = 0
        for r in self.records():
            if r.kind == "false_trigger" and not r.cause.event_ids:
                continue
            fh.write(r.to_json(clock))
            fh.write("\n")
            n += 1
        return n
