"""Event-time safety (rules.eventtime): no single event, whatever its clock says, moves the
engine's time; what is set aside is reported with its reason; a restored snapshot never carries
a poisoned clock; and, driven by hypothesis, every valid event in a hostile stream is consumed."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.events import DeviceEvent, EbikeDetected, Heartbeat, event_bytes
from rules.engine import Engine, Record
from rules.ruleset import RuleSet
from sim.files.rulefiles import load_rules

RULES = load_rules(Path(__file__).resolve().parents[2] / "seeds" / "rules" / "default.yaml")
START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))
T0 = 100_000.0
YEAR = 365 * 86400.0
DEVICES = [f"d{i}" for i in range(6)]


def event(cls: type, t: float, device: str, seq: int, **kw: Any) -> DeviceEvent:
    if cls is EbikeDetected:
        kw = {"confidence": 0.9, "object_class": "ebike", **kw}
    return cls(  # type: ignore[no-any-return]
        event_id=f"{device}:{seq}",
        device_id=device,
        device_kind="ebike_blocker",
        estate="e1",
        building="b01",
        floor=3,
        time=START + timedelta(seconds=t),
        sim_seconds=t,
        seq=seq,
        **kw,
    )


def stream(hours: float = 6.0, seed: int = 0, silent: str | None = "d5") -> list[DeviceEvent]:
    """Heartbeats every 15 minutes from six devices (``silent`` stops after an hour: a real
    device-silent alert), an e-bike now and then, delivered with up to 30 s of jitter."""
    rng = random.Random(seed)
    out: list[tuple[float, DeviceEvent]] = []
    for i, d in enumerate(DEVICES):
        seq = 0
        t = T0 + 150.0 * i
        while t < T0 + hours * 3600:
            if d != silent or t < T0 + 3600:
                seq += 1
                out.append((t + rng.uniform(0, 30), event(Heartbeat, t, d, seq)))
            if rng.random() < 0.15:
                seq += 1
                u = t + rng.uniform(0, 800)
                out.append((u + rng.uniform(0, 30), event(EbikeDetected, u, d, seq)))
            t += 900.0
    out.sort(key=lambda x: x[0])
    return [e for _, e in out]


def forged(e: DeviceEvent, shift: float, n: int) -> DeviceEvent:
    return event(type(e), e.sim_seconds + shift, e.device_id, 1_000_000 + n)


class Run:
    def __init__(self, rules: RuleSet = RULES, **kw: Any) -> None:
        self.engine = Engine(rules, **kw)
        self.records: list[Record] = []
        self.aside: list[tuple[str, str]] = []
        self.engine.clock.on_aside = lambda e, reason, _d: self.aside.append((e.event_id, reason))

    def feed(self, items: list[DeviceEvent | bytes]) -> Run:
        for x in items:
            if isinstance(x, bytes):
                self.records.extend(self.engine.consume_payload(x))
            else:
                self.records.extend(self.engine.consume(x))
        return self

    def end(self, end_s: float) -> Run:
        self.records.extend(self.engine.finish(end_s))
        return self

    def changes(self) -> list[tuple[str, str, float]]:
        return [
            (r.get("rule_id", "WO"), r["change"], r["sim_seconds"])
            for r in self.records
            if r["record"] == "alert"
        ]


END = T0 + 7 * 3600


def clean() -> Run:
    return Run().feed(list(stream())).end(END)


def test_one_event_a_year_ahead_is_set_aside_and_every_real_alert_still_fires() -> None:
    events: list[Any] = list(stream())
    q = len(events) // 4
    poison = forged(events[q], YEAR, 0)
    got = Run().feed([*events[:q], poison, *events[q:]]).end(END)
    want = clean()
    assert got.changes() == want.changes()
    assert ("device-silent", "firing") in {(r, c) for r, c, _ in want.changes()}
    assert got.aside == [(poison.event_id, "clock_skew")]
    assert got.engine.stats["consumed"] == len(events)


def test_a_far_future_first_event_cannot_poison_a_fresh_engine() -> None:
    events: list[Any] = list(stream())
    poison = forged(events[0], YEAR, 0)
    got = Run().feed([poison, *events]).end(END)
    assert got.changes() == clean().changes()
    assert (poison.event_id, "clock_skew") in got.aside
    assert got.engine.stats["consumed"] == len(events)


def test_late_events_are_reported_not_only_counted() -> None:
    events: list[Any] = list(stream())
    late = forged(events[59], -300.0, 0)  # behind the watermark, within the skew bound
    got = Run().feed([*events[:60], late, *events[60:]]).end(END)
    assert got.aside == [(late.event_id, "late")]
    assert got.engine.s.late_ids == [late.event_id]


def test_a_real_jump_is_taken_once_most_devices_agree() -> None:
    before = [e for e in stream() if e.sim_seconds < T0 + 3600]
    after = [forged(e, 5 * 3600.0, i) for i, e in enumerate(stream(silent=None))]
    got = Run().feed([*before, *after]).end(END + 6 * 3600)
    assert got.engine.stats["consumed"] == len(before) + len(after)
    assert got.engine.stats["clock_skew"] == 0
    assert got.engine.stats["readmitted"] > 0


def test_under_the_wall_clock_an_event_dated_far_from_it_moves_nothing() -> None:
    events: list[Any] = list(stream())
    run = Run()
    run.engine.clock.wall = lambda: START + timedelta(seconds=T0 + 1800)
    old = event(Heartbeat, 5.0, "d9", 1)  # dated 2026-03-02 00:00:05, a day before the rest
    old = type(old)(**{**{f: getattr(old, f) for f in old.__struct_fields__}, "time": START})
    run.feed([old, *events[:10]])
    assert run.aside == [(old.event_id, "clock_skew")]
    assert run.engine.stats["consumed"] == 10
    assert run.engine.s.epoch == START


def test_a_restored_snapshot_never_carries_a_poisoned_clock() -> None:
    events: list[Any] = list(stream())
    q = len(events) // 4
    old = Run(max_skew=math.inf).feed([*events[:q], forged(events[q], YEAR, 0)])  # as before
    assert old.engine.s.max_seen > T0 + YEAR
    restored = Engine.restore(RULES, old.engine.snapshot())
    assert restored.s.max_seen < T0 + 86400
    later = Run()
    later.engine = restored
    later.feed(events[q:])
    assert restored.stats["late"] == 0
    assert restored.stats["consumed"] == len(events)


def test_a_snapshot_with_a_clock_that_is_not_a_number_is_refused() -> None:
    run = Run().feed(list(stream())[:20])
    run.engine.s.watermark = float("nan")
    with pytest.raises(ValueError, match="watermark"):
        Engine.restore(RULES, run.engine.snapshot())


# -- hypothesis: random interleavings of hostile messages with a valid stream -------------------

VALID = stream(hours=4.0, seed=7)
CLEAN = Run().feed(list(VALID)).end(T0 + 5 * 3600)
GARBAGE = [
    b"\xff\xfe",
    b"not json",
    b"[" * 5000,
    b"x" * 20000,
    json.dumps({"type": "heartbeat", "sim_seconds": 1e308}).encode(),
]


def _time(e: DeviceEvent) -> float:
    return e.sim_seconds


def _valid(e: DeviceEvent) -> bool:
    return e.seq < 1_000_000  # not forged


@st.composite
def hostile(draw: st.DrawFn) -> list[DeviceEvent | bytes]:
    """The valid stream with up to 20 hostile messages at random places (none in its first 12
    events: a fresh engine with no majority yet can be out-voted, see rules.eventtime); skewed
    ones are dated two hours or more from the latest valid event (beyond the one-hour bound;
    300 s behind is merely late)."""
    out: list[DeviceEvent | bytes] = list(VALID)
    for n in range(draw(st.integers(0, 20))):
        at = draw(st.integers(12, len(out)))
        kind = draw(st.sampled_from(["future", "past", "duplicate", "huge", "garbage"]))
        base = out[draw(st.integers(0, at - 1))]
        if isinstance(base, bytes) or not _valid(base):
            continue
        if kind in ("future", "past"):  # from now on, not from any earlier time
            base = max((x for x in out[:at] if isinstance(x, DeviceEvent) and _valid(x)), key=_time)
        if kind == "future":
            x: DeviceEvent | bytes = forged(base, draw(st.sampled_from([YEAR, 7200.0, 4e5])), n)
        elif kind == "past":
            x = forged(base, -draw(st.sampled_from([7200.0, 86400.0, 300.0])), n)
        elif kind == "duplicate":
            x = event_bytes(base)
        elif kind == "huge":
            x = event_bytes(forged(base, 0.0, n)).replace(
                f'"sim_seconds":{base.sim_seconds}'.encode(), b'"sim_seconds":1e308'
            )
        else:
            x = draw(st.sampled_from(GARBAGE))
        out.insert(at, x)
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_every_valid_event_is_consumed_whatever_is_mixed_in(
    items: list[DeviceEvent | bytes],
) -> None:
    got = Run().feed(items).end(T0 + 5 * 3600)
    assert got.engine.stats["consumed"] == len(VALID)
    assert got.records == CLEAN.records
