"""The rules engine: device events in, alert and work-order records out, on the events' own clock.

Events wait in a small reorder buffer and are processed in event-time order once the watermark
(latest event time seen minus the allowed lateness) passes them, so duplicates (dropped by event
id) and reordering within the lateness bound change nothing. Events older than the watermark are
late: counted and set aside. Timers (``for``, absence, duration, sequence, escalation, SLAs) fire
as the watermark passes them. The same engine is fed by a list in a test, by ``events.jsonl`` or by
MQTT, identically. ``snapshot()``/``restore()`` carry the whole state across a restart.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from devices.events import (
    DeviceEvent,
    Heartbeat,
    StaffArrived,
    StaffDone,
    StaffReview,
    parse_event,
    unknown_type,
)
from devices.liveness import BeatRun
from rules.alerts import AlertState, KeyState, alert_record, identity
from rules.beattrack import Track
from rules.conditions import on_event, on_timer
from rules.enginetypes import Key, Record
from rules.eventtime import Clock, default_max_skew, sanitize
from rules.ruleset import CompiledRule, RuleSet
from rules.snapshot import dump_state, load_state
from rules.workorders import WorkOrderBook

__all__ = ["Engine", "Record"]

_DEDUPE_HORIZON = 6 * 3600.0  # event ids remembered this long below the watermark


class _State:
    """Everything that changes while the engine runs (what a snapshot holds)."""

    def __init__(self) -> None:
        self.watermark = float("-inf")
        self.max_seen = float("-inf")
        self.epoch: datetime | None = None
        self.buffer: list[tuple[float, str, int, str, DeviceEvent]] = []
        self.seen: dict[str, float] = {}
        # (deadline, tie order, seq, kind, rule index, key, data); see schedule()
        self.timers: list[tuple[float, tuple[int, int, str], int, str, int, Key, Any]] = []
        self.timer_seq = 0
        self.keys: dict[tuple[int, Key], KeyState] = {}
        self.active_by_rule: dict[str, dict[str, AlertState]] = {}
        self.alert_of_event: dict[str, list[tuple[int, Key]]] = {}  # an event can feed several
        self.workorders = WorkOrderBook()
        self.stats: Counter[str] = Counter()
        self.late_ids: list[str] = []
        self.since_purge = 0
        self.tracks: dict[str, Track | None] = {}  # device -> its current heartbeat run


def _runs_suffice(readers: list[tuple[CompiledRule, str]], period: float) -> bool:
    """Can these readers of heartbeats beating every ``period`` take them as a run? Only if each
    is an absence rule watching them whose ``after`` outlasts the period: then no beat but the
    first can change an alert."""
    for cr, role in readers:
        cond = cr.rule.condition
        if role != "watch" or cond.kind != "absence" or cond.after <= period:
            return False
    return True


class Engine:
    """``consume(event)`` returns the records it causes; ``finish(end)`` flushes the rest."""

    def __init__(
        self, rules: RuleSet, allowed_lateness: float | None = None, max_skew: float | None = None
    ) -> None:
        self.rules = rules
        self.lateness = rules.allowed_lateness if allowed_lateness is None else allowed_lateness
        skew = rules.spec.max_skew if max_skew is None else max_skew
        self.clock = Clock(default_max_skew(self.lateness) if skew is None else skew)
        self.s = _State()
        self._index: dict[str, list[tuple[CompiledRule, str, Any]]] = {}
        for cr in rules.rules:
            for m in cr.watch:
                self._index.setdefault(m.type, []).append((cr, "watch", m))
            for m in cr.second:
                self._index.setdefault(m.type, []).append((cr, "second", m))
        self.quiet_skew: float | None = None  # see quiet_beats()
        self.repeat_listeners: dict[str, list[CompiledRule]] = {}
        for cr in rules.rules:
            if cr.rule.condition.kind == "repeat":
                self.repeat_listeners.setdefault(cr.rule.condition.rule, []).append(cr)

    # -- intake -----------------------------------------------------------------------------

    @property
    def stats(self) -> Counter[str]:
        return self.s.stats

    def consume_payload(self, payload: bytes | str, now: float | None = None) -> list[Record]:
        """Validate a JSON payload first: a bad or unknown one is counted and skipped."""
        try:
            event = parse_event(payload)
        except ValueError as exc:  # msgspec's ValidationError and DecodeError
            self.s.stats["unknown_type" if unknown_type(exc) else "invalid"] += 1
            return []
        return self.consume(event, now)

    def quiet_beats(self, max_skew: float) -> bool:
        """The feeder says no device clock is off by more than ``max_skew`` seconds: runs may be
        quiet (no beat but the first reaches the engine) when that is within half the allowed
        lateness, so no beat of a run could be late; returns whether they are."""
        self.quiet_skew = max_skew if 2.0 * abs(max_skew) <= self.lateness else None
        return self.quiet_skew is not None

    def consume(self, event: DeviceEvent, now: float | None = None) -> list[Record]:
        """``now``: when the event was delivered, on the simulation's clock (quiet runs: the beats
        sent before it may have made it late)."""
        s = self.s
        out: list[Record] = []
        t = event.sim_seconds
        if (
            now is not None
            and self.quiet_skew is not None
            and t < now + self.quiet_skew - self.lateness
        ):
            latest = self._latest_beat(now)
            if latest > s.max_seen:
                s.max_seen = latest
                self._release(latest - self.lateness, out)
        if event.event_id in s.seen:
            s.stats["duplicates"] += 1
            return out
        for e in self.clock.admit(self, event, now):  # see rules.eventtime
            self._accept(e, out)
        return out

    def _accept(self, event: DeviceEvent, out: list[Record]) -> None:
        s = self.s
        t = event.sim_seconds
        if t < s.watermark:
            self._late(event)
            return
        if s.epoch is None:
            s.epoch = event.time - timedelta(seconds=t)
        s.seen[event.event_id] = t
        s.stats["consumed"] += 1
        heapq.heappush(s.buffer, (t, event.device_id, event.seq, event.event_id, event))
        if t > s.max_seen:
            s.max_seen = t
        self._release(s.max_seen - self.lateness, out)

    def start_run(self, event: Heartbeat, run: BeatRun) -> list[Record]:
        """The first beat of a heartbeat run, as the event it is; the run's later beats may then
        come by :meth:`note_beat` (see :mod:`rules.beattrack`)."""
        s = self.s
        fresh = event.event_id not in s.seen and event.sim_seconds >= s.watermark
        out = self.consume(event)
        fresh = fresh and event.event_id in s.seen  # not set aside for its clock
        old = s.tracks.get(run.device_id)
        if old is not None:
            old.closed = True
        track = self._attach(event, run) if fresh else None
        s.tracks[run.device_id] = track
        run.quiet = track is not None and track.noted is None
        return out

    def takes_quiet_runs(self, period: float) -> bool:
        """Would every heartbeat run of a period up to ``period`` be kept quiet, whatever its
        device (no rule reads a beat after the first; event time needs none)?"""
        readers = [(cr, role) for cr, role, _ in self._index.get("heartbeat", ())]
        return self.quiet_skew is not None and _runs_suffice(readers, period)

    def close_run(self, run: BeatRun) -> None:
        """A run ended after ``run.count`` beats (what a quiet run's track needs to know)."""
        track = self.s.tracks.get(run.device_id)
        if track is not None and track.first_seq == run.first_seq and track.noted is None:
            track.count = run.count
            self.s.stats["consumed"] += run.count - 1  # the first came as an event
            last = track.stamp(run.count - 1)
            for index, key in track.waiters:  # absence checks parked while the run went on
                cr = self.rules.rules[index]
                ks = self.key_state(cr, key)
                cond = cr.rule.condition
                if not ks.timer and cond.kind == "absence":
                    ks.timer = True
                    self.schedule(last + cond.after, "absence", cr, key)
            track.waiters.clear()

    def _latest_beat(self, now: float) -> float:
        """The latest stamp among the beats of quiet runs sent by ``now``."""
        latest = float("-inf")
        for track in self.s.tracks.values():
            if track is not None and track.noted is None:
                j = track.due_by(now)
                if j >= 0:
                    latest = max(latest, track.stamp(j))
        return latest

    def note_beat(self, run: BeatRun, j: int) -> list[Record]:
        """Beat ``j`` of a run begun with :meth:`start_run`: event time moves on as the event
        would move it; the absence rules read it when they look (built as an event and consumed
        when no rule can take the run whole)."""
        s = self.s
        track = s.tracks.get(run.device_id)
        if track is None or track.first_seq != run.first_seq:
            return self.consume(run.event(j))
        t = run.stamp(j)
        track.noted = j + 1
        if t < s.watermark:
            self._late(run.event(j))
            track.late.add(j)
            return []
        s.stats["consumed"] += 1
        out: list[Record] = []
        if t > s.max_seen:
            s.max_seen = t
        self._release(s.max_seen - self.lateness, out)
        return out

    def _attach(self, event: Heartbeat, run: BeatRun) -> Track | None:
        """A track for the run if every rule that reads these heartbeats is an absence rule whose
        ``after`` outlasts the period (so no beat but the first can change an alert)."""
        readers = [
            (cr, role) for cr, role, m in self._index.get("heartbeat", ()) if m.matches(event)
        ]
        if not _runs_suffice(readers, run.period):
            return None
        track = Track(run.device_id, run.first_seq, run.first_k, run.t0, run.period, run.skew)
        if self.quiet_skew is not None:
            track.noted = None
        for cr, _ in readers:
            ks = self.key_state(cr, tuple(getattr(event, k) for k in cr.rule.key))
            if ks.runs is None:
                ks.runs = {}
            ks.runs[(run.device_id, run.first_seq)] = track
        return track

    def _late(self, event: DeviceEvent) -> None:
        """An event older than the watermark: counted and set aside (the first 1,000 ids kept)."""
        behind = self.s.watermark - event.sim_seconds
        self.clock.aside(self, event, "late", f"{behind:.0f} s behind the watermark")
        if len(self.s.late_ids) < 1000:
            self.s.late_ids.append(event.event_id)

    def consume_all(
        self, events: Iterable[DeviceEvent], end_s: float | None = None
    ) -> list[Record]:
        out: list[Record] = []
        for e in events:
            out.extend(self.consume(e))
        out.extend(self.finish(end_s))
        return out

    def advance(self, t: float) -> list[Record]:
        """Move event time on without an event (idle periods): timers due before ``t - lateness``."""
        out: list[Record] = []
        if t > self.s.max_seen:
            self.s.max_seen = t
        self._release(self.s.max_seen - self.lateness, out)
        return out

    def finish(self, end_s: float | None = None) -> list[Record]:
        """End of input: process everything buffered, then timers up to ``end_s``."""
        s = self.s
        out: list[Record] = []
        end = s.max_seen if end_s is None else max(end_s, s.max_seen)
        self._release(end, out, final=True)
        return out

    # -- time -------------------------------------------------------------------------------

    def _release(self, upto: float, out: list[Record], final: bool = False) -> None:
        """Process buffered events up to ``upto`` in event-time order, with the timers due before
        each; timers due exactly at ``upto`` wait (an event at ``upto`` may still come), unless
        this is the end of input."""
        s = self.s
        while s.buffer and s.buffer[0][0] <= upto:
            t, _, _, _, event = heapq.heappop(s.buffer)
            self._fire_timers(t, out, inclusive=False)
            self._process(event, out)
        if upto > s.watermark:
            s.watermark = upto
        self._fire_timers(upto, out, inclusive=final)
        s.since_purge += 1
        if s.since_purge >= 10000:
            s.since_purge = 0
            horizon = s.watermark - _DEDUPE_HORIZON
            s.seen = {k: v for k, v in s.seen.items() if v >= horizon}

    def schedule(
        self, deadline: float, kind: str, cr: CompiledRule, key: Key, data: Any = None
    ) -> None:
        s = self.s
        s.timer_seq += 1
        # At one deadline, timers go in the order they were set, and absence checks after them,
        # by rule and key: a quiet run's parked check (rules.beattrack) is set at another time
        # than a stepped run's, and must still fire in the same place.
        order = (1, cr.index, repr(key)) if kind == "absence" else (0, s.timer_seq, "")
        heapq.heappush(s.timers, (deadline, order, s.timer_seq, kind, cr.index, key, data))

    def _fire_timers(self, t: float, out: list[Record], inclusive: bool) -> None:
        s = self.s
        while s.timers and (s.timers[0][0] < t or (inclusive and s.timers[0][0] == t)):
            deadline, _, _, kind, index, key, data = heapq.heappop(s.timers)
            cr = self.rules.rules[index]
            if kind == "wo_ack" or kind == "wo_close":
                rec = s.workorders.check_sla(data, kind[3:], deadline, s.epoch)
                if rec is not None:
                    out.append(rec)
                continue
            on_timer(self, cr, key, kind, deadline, data, out)

    # -- events -----------------------------------------------------------------------------

    def _process(self, event: DeviceEvent, out: list[Record]) -> None:
        if isinstance(event, StaffArrived | StaffDone | StaffReview):
            self._staff(event, out)
        for cr, role, m in self._index.get(event.type, ()):
            if not m.matches(event):
                continue
            key = tuple(getattr(event, k) for k in cr.rule.key)
            on_event(self, cr, role, key, event, out)

    def _staff(self, event: StaffArrived | StaffDone | StaffReview, out: list[Record]) -> None:
        for ref in self.s.alert_of_event.get(event.ref_event_id, ()):
            self._staff_on(ref, event, out)

    def _staff_on(
        self, ref: tuple[int, Key], event: StaffArrived | StaffDone | StaffReview, out: list[Record]
    ) -> None:
        """Staff on the app: arriving (or confirming a clip) acknowledges the alert and its work
        order; finishing (or finding the clip a false alarm) closes the order."""
        s = self.s
        ks = s.keys.get(ref)
        t = event.sim_seconds
        if isinstance(event, StaffArrived | StaffReview):
            a = ks.alert if ks is not None else None
            if a is not None and a.state == "firing":
                a.state = "acknowledged"
                out.append(alert_record(a, "acknowledged", t, s.epoch))
            wid = self._wo_of(ref)
            if wid is not None:
                rec = s.workorders.acknowledge(wid, t, s.epoch)
                if rec is not None:
                    out.append(rec)
        if isinstance(event, StaffDone):
            reason = f"staff_{event.outcome}"
        elif isinstance(event, StaffReview) and event.verdict == "false_alarm":
            reason = "staff_false_alarm"
        else:
            return
        wid = self._wo_of(ref)
        if wid is not None:
            rec = s.workorders.close(wid, t, s.epoch, reason=reason)
            if rec is not None:
                out.append(rec)

    def _wo_of(self, ref: tuple[int, Key]) -> str | None:
        cr = self.rules.rules[ref[0]]
        return self.s.workorders.last_by_identity.get(identity(cr.id, ref[1]))

    # -- state ------------------------------------------------------------------------------

    def key_state(self, cr: CompiledRule, key: Key) -> KeyState:
        ks = self.s.keys.get((cr.index, key))
        if ks is None:
            ks = self.s.keys[(cr.index, key)] = KeyState()
        return ks

    def snapshot(self) -> bytes:
        """The whole mutable state (:mod:`rules.snapshot`); ``restore`` with the same rules resumes
        exactly here."""
        return dump_state(self.s, self.rules)

    @classmethod
    def restore(cls, rules: RuleSet, blob: bytes, allowed_lateness: float | None = None) -> Engine:
        """An engine resumed from a snapshot; raises :class:`rules.snapshot.SnapshotError` (a
        ``ValueError``) for anything else, never running what a file holds."""
        engine = cls(rules, allowed_lateness)
        load_state(blob, rules, engine.s)
        sanitize(engine)
        return engine

    def open_alerts(self) -> list[AlertState]:
        return [a for group in self.s.active_by_rule.values() for a in group.values()]
