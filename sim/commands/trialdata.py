"""One seed's recorded events held in memory for ``pmsim tune``: read once per worker process,
filtered to the event types the trials' rules can read, replayed from memory for every trial.

A fresh :class:`~rules.engine.Engine` hands an event to a rule only through its index by event
type (every rule's ``watch`` and ``second`` matchers), and every staff check-in to whatever alert
its event fed (any rule's): :func:`read_types`. An event of another type changes no rule's output;
it only moves the engine's clock (``max_seen``, and with it the watermark that makes later events
late). So the trace keeps, in file order:

- every event of the kept types (late ones and duplicates too: the engine drops them as before);
- the first event of the file, which sets the engine's epoch (alert and work-order times);
- a *carrier* for a run of skipped lines that moved the clock on: the line that set the latest
  time in the run, unless the next kept event is at least as late (it moves the clock there
  itself). With it, every kept event meets the clock of the full replay: it is late, a
  duplicate or accepted exactly as there, and the engine works through the same events and
  timers in the same order (timers fire by deadline, events by time). The last run's carrier
  gives ``finish`` the same end. Only the engine's statistics differ (counts of events, and
  when it forgets old event ids: ids so old that a repeat would be late anyway).

Skipped lines are not parsed: their type, time and id are read off pmsim's own JSON (any line not
in that shape is validated in full). Every event kept is validated, and a carrier is checked
against what was read off. An event id seen with two times or types makes the whole file
unfilterable (the trace is then the file, replayed in full); so does a carrier that fails.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devices.events import (
    EVENT_TYPES,
    DeviceEvent,
    StaffArrived,
    StaffDone,
    StaffReview,
    parse_event,
)
from rules.engine import Engine, Record
from rules.model import RuleFile
from rules.ruleset import RuleSet
from rules.space import focus
from sim.files.beatstream import materialise
from sim.files.eventlog import DELIVERED, HEARTBEATS
from sim.files.records import read_jsonl
from sim.replay import run_start

__all__ = [
    "STAFF_TYPES",
    "SeedData",
    "Trace",
    "load_trace",
    "read_types",
    "replay",
    "seed_data",
    "trial_rules",
    "union_types",
]

STAFF_TYPES: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag) for cls in (StaffArrived, StaffDone, StaffReview)
)
_KNOWN = frozenset(t.encode() for t in EVENT_TYPES)
_TYPE, _TIME, _ID = b'"type":"', b'"sim_seconds":', b'"event_id":"'
_CACHE_SIZE = 8  # seeds a worker keeps (a tune has a few; a long-lived Dask worker sees more)


def read_types(rules: RuleSet) -> frozenset[str]:
    """The event types a fresh engine over ``rules`` hands to anything: those its index holds
    (every rule's ``watch`` and ``second`` matchers) and the staff check-ins."""
    types = {m.type for cr in rules.rules for m in (*cr.watch, *cr.second)}
    return frozenset(types) | STAFF_TYPES


def trial_rules(doc: dict[str, Any], only: list[str] | None = None) -> RuleSet:
    """A trial's rule file (as a dict), compiled; with ``only``, just those rules and what they
    depend on."""
    spec = RuleFile.model_validate(doc)
    return RuleSet(focus(spec, only) if only is not None else spec)


def union_types(docs: Iterable[dict[str, Any]], only: list[str] | None = None) -> list[str]:
    """Every event type any of these rule files reads (sorted: it travels with the tasks)."""
    out: set[str] = set(STAFF_TYPES)
    for doc in docs:
        out |= read_types(trial_rules(doc, only))
    return sorted(out)


@dataclass(frozen=True)
class Trace:
    """What a trial replays: ``events`` (validated, in file order) when ``types`` is set; the
    whole file at ``path`` when it is ``None`` (nothing could safely be left out)."""

    path: str
    types: frozenset[str] | None
    events: tuple[DeviceEvent, ...]
    lines: int
    start: datetime | None = None  # dates the heartbeat runs beside ``path``, if any

    def covers(self, types: frozenset[str]) -> bool:
        return self.types is None or types <= self.types


def _scan(line: bytes) -> tuple[bytes, float, bytes] | None:
    """(type, time, id) read off pmsim's own JSON (no key occurs inside a JSON string, and the
    last of a repeated key wins, as in a parser); ``None`` when the line is not in that shape."""
    i, k, a = line.rfind(_TYPE), line.rfind(_TIME), line.rfind(_ID)
    if i < 0 or k < 0 or a < 0:
        return None
    j = line.find(b'"', i + len(_TYPE))
    m = line.find(b",", k + len(_TIME))
    b = line.find(b'"', a + len(_ID))
    if j < 0 or m < 0 or b < 0:
        return None
    kind, eid = line[i + len(_TYPE) : j], line[a + len(_ID) : b]
    if kind not in _KNOWN or b"\\" in eid:
        return None
    try:
        return kind, float(line[k + len(_TIME) : m]), eid
    except ValueError:
        return None


def _parse(line: bytes) -> DeviceEvent | None:
    """The event, or ``None`` where the engine's ``consume_payload`` would refuse the line."""
    try:
        return parse_event(line)
    except ValueError:  # msgspec's ValidationError and DecodeError
        return None


def _fields(event: DeviceEvent) -> tuple[bytes, float, bytes]:
    return event.type.encode(), event.sim_seconds, event.event_id.encode()


class _Unsafe(Exception):
    """The file breaks an assumption of the filter: replay it whole."""


def _carrier(line: bytes, read: tuple[bytes, float, bytes]) -> DeviceEvent:
    """A skipped line that must be replayed after all: it must be the event it was read as."""
    event = _parse(line)
    if event is None or _fields(event) != read:
        raise _Unsafe
    return event


def _filter(source: Iterable[bytes], keep: frozenset[str]) -> tuple[list[DeviceEvent], int]:
    """The events a replay of rules reading ``keep`` needs, from the lines as delivered."""
    wanted = {t.encode() for t in keep}
    events: list[DeviceEvent] = []
    ids: dict[bytes, tuple[float, bytes]] = {}  # every event id's one time and type
    top = float("-inf")  # the latest time so far: the engine's max_seen in the full replay
    # the skipped line that set ``top`` since the last event kept, and what was read off it
    gap: tuple[bytes, tuple[bytes, float, bytes]] | None = None
    gap_top = top
    first = True
    lines = 0
    for line in source:
        if not line.strip():
            continue
        lines += 1
        read = None if first else _scan(line)
        event = None
        if read is None:
            event = _parse(line)
            if event is None:
                continue  # refused by the engine too: no clock, no id
            read = _fields(event)
        kind, t, eid = read
        if ids.setdefault(eid, (t, kind)) != (t, kind):
            raise _Unsafe
        if first or kind in wanted:
            if event is None:
                event = _parse(line)
                if event is None:
                    continue
                if _fields(event) != read:
                    raise _Unsafe
            if gap is not None and not t >= gap_top:
                events.append(_carrier(*gap))
            gap, first = None, False
            events.append(event)
            top = max(top, t)
        elif t > top:
            top = gap_top = t
            gap = line, read
    if gap is not None:
        events.append(_carrier(*gap))
    return events, lines


def load_trace(path: Path, types: Iterable[str], start: datetime | None = None) -> Trace:
    """Read ``path`` once, keeping what a replay of rules reading ``types`` needs (module
    docstring); the staff check-ins are always kept. With ``start``, the heartbeat runs beside
    ``path`` are built again in their places (:func:`sim.files.beatstream.materialise`), so the
    trace holds every event the run sent."""
    keep = frozenset(types) | STAFF_TYPES
    try:
        events, lines = _filter(materialise(path, start), keep)
    except _Unsafe:
        lines = sum(1 for _ in materialise(path, start))
        return Trace(str(path), None, (), lines, start)
    return Trace(str(path), keep, tuple(events), lines, start)


def replay(rules: RuleSet, trace: Trace, end_s: float) -> list[Record]:
    """A fresh engine over the trace, then ``finish(end_s)``: the records a replay of the whole
    file gives, in the same order."""
    needs = read_types(rules)
    if not trace.covers(needs):
        missing = sorted(needs - (trace.types or frozenset()))
        raise ValueError(f"{trace.path}: the trace leaves out event types {missing}")
    # the run's own events, only those the rules read: hours apart, nothing to guard against
    engine = Engine(rules, max_skew=math.inf)
    out: list[Record] = []
    if trace.types is None:
        for line in materialise(Path(trace.path), trace.start):
            out.extend(engine.consume_payload(line))
    else:
        consume = engine.consume
        for event in trace.events:
            records = consume(event)
            if records:
                out.extend(records)
    out.extend(engine.finish(end_s))
    return out


@dataclass(frozen=True)
class SeedData:
    """One simulated seed as the trials score it: its households, its truth and its trace."""

    folder: str
    signature: tuple[int, ...]
    households: int
    truth: tuple[dict[str, Any], ...]
    trace: Trace


_CACHE: OrderedDict[str, SeedData] = OrderedDict()
_LOCK = threading.Lock()  # a Dask worker may run tasks on several threads


def _signature(folder: Path) -> tuple[int, ...]:
    """Size, modification time and inode of the files read: a re-simulated seed differs."""
    out: list[int] = []
    for name in ("events.jsonl", "truth.jsonl", "run.json", HEARTBEATS, DELIVERED):
        if name in (HEARTBEATS, DELIVERED) and not (folder / name).exists():
            continue  # a folder from before heartbeat runs
        st = os.stat(folder / name)
        out.extend((st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def seed_data(folder: Path, types: Iterable[str]) -> SeedData:
    """The seed in ``folder`` with a trace that holds at least ``types``: from this process's
    cache while its files are unchanged, else read (the cached types widened)."""
    key = str(folder.resolve())
    want = frozenset(types) | STAFF_TYPES
    for _ in range(3):
        sig = _signature(folder)
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None and hit.signature == sig:
                if hit.trace.covers(want):
                    _CACHE.move_to_end(key)
                    return hit
                want |= hit.trace.types or frozenset()
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        data = SeedData(
            key,
            sig,
            int(info["counts"]["households"]),
            tuple(read_jsonl(folder / "truth.jsonl")),
            load_trace(
                folder / "events.jsonl",
                want,
                run_start(folder) if (folder / HEARTBEATS).exists() else None,
            ),
        )
        if _signature(folder) != sig:
            continue  # rewritten while being read: read it again
        with _LOCK:
            _CACHE[key] = data
            _CACHE.move_to_end(key)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        return data
    raise OSError(f"{folder}: its files keep changing while being read")
